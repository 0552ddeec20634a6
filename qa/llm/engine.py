"""The local model in a background engine process that outlives one command (client side).

The first command that needs the local model starts `python -m qa.llm.engine_server`, which
loads the model, warms it up, and only then writes its state file, `$QA_HOME/engine/<model>.json`
(directory 0700, file 0600): pid, loopback url, random API key, and what it runs. Later commands
read that file and talk to the engine over the loopback port with the key, so they neither load
the model nor lose the engine's prompt cache. One engine per (QA_HOME, model).

- Starting happens under an fcntl lock, so two commands starting at once start one engine.
- A stale engine (dead pid, no answer on /health within 2 s, another model, thread count or qa
  version) is stopped (only when /proc shows the pid is our engine) and replaced.
- The engine exits by itself after `engine_idle` seconds with nothing to do (engine_server.py).

`qa.llm.engine_chat` drives it behind the `LLM` protocol, restarting it once when it died.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

from .. import __version__
from ..errors import QAError

SERVER_MODULE = "qa.llm.engine_server"
N_CTX = 4096  # context per slot
N_PARALLEL = 2  # slots: two commands at once are each served with a full context
HEALTH_TIMEOUT = 2.0
START_TIMEOUT = 900.0  # model load and warm-up, on a busy 2-core laptop
STOP_GRACE = 10.0


@dataclass(frozen=True)
class EngineConfig:
    """What an engine runs; two configs that differ in anything but `idle` need two engines."""

    model: str  # the model's name (qa.llm.local.ModelSpec.name)
    file: str  # the verified GGUF file
    sha256: str
    threads: int
    n_ctx: int = N_CTX  # per slot
    n_parallel: int = N_PARALLEL
    idle: float = 600.0  # seconds with nothing to do before the engine exits
    version: str = __version__

    def serves(self, wanted: EngineConfig) -> bool:
        return replace(self, idle=0) == replace(wanted, idle=0)


@dataclass(frozen=True)
class EngineState:
    """A running engine, as its state file tells it."""

    pid: int
    url: str  # http://127.0.0.1:PORT
    key: str
    started: float  # epoch seconds, once the engine answered
    config: EngineConfig

    def to_json(self) -> str:
        data = {k: v for k, v in asdict(self).items() if k != "config"}
        return json.dumps({**data, **asdict(self.config)}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> EngineState:
        data = json.loads(text)
        config = EngineConfig(**{f.name: data[f.name] for f in fields(EngineConfig)})
        return cls(int(data["pid"]), str(data["url"]), str(data["key"]), float(data["started"]), config)


def state_path(engine_dir: Path, model: str) -> Path:
    return engine_dir / f"{model}.json"


def lock_path(state: Path) -> Path:
    return state.with_suffix(".lock")


def log_path(state: Path) -> Path:
    return state.with_suffix(".log")


def private_dir(engine_dir: Path) -> Path:
    """The engine directory, readable by this user only: it holds the keys."""
    engine_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(engine_dir, 0o700)
    return engine_dir


def write_state(path: Path, state: EngineState) -> None:
    """Atomically, 0600 from the first byte: readers see the old file, none, or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(state.to_json())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_state(path: Path) -> EngineState | None:
    try:
        return EngineState.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none yet, or left by an older qa: treated as no engine


def remove_state(path: Path, pid: int) -> None:
    """Remove the state file if it still names `pid` (a newer engine's file is left alone)."""
    state = read_state(path)
    if state is not None and state.pid == pid:
        path.unlink(missing_ok=True)


def is_engine(pid: int, state: Path) -> bool:
    """Whether `pid` is a live engine process serving `state` (its command line says so): the
    proof needed before signalling a pid read from a file, which may have been reused."""
    if not os.path.isdir("/proc/self"):  # no /proc (macOS): ask ps
        found = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)
        line = found.stdout.strip()
        return SERVER_MODULE in line and f"--state {state}" in line
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            args = handle.read().decode(errors="replace").split("\0")
    except OSError:
        return False
    # a zombie has an empty command line: it is dead
    pairs = zip(args, args[1:], strict=False)
    return SERVER_MODULE in args and any(a == "--state" and b == str(state) for a, b in pairs)


def answers(url: str, timeout: float = HEALTH_TIMEOUT) -> bool:
    """Whether the engine at `url` says it is ready on /health (public: no key needed). Plain
    http.client: loopback must never go through an HTTP proxy from the environment."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


@contextlib.contextmanager
def locked(path: Path, wait: bool = True) -> Iterator[bool]:
    """An exclusive fcntl lock on `path`, released when the block ends (or the process dies).
    Yields whether it was taken: always when `wait`, else only if it was free."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    yield False
                    return
                time.sleep(0.05)  # short sleeps rather than a blocking flock: Ctrl-C stays responsive
        yield True
    finally:
        os.close(fd)


def usable(state: EngineState, path: Path) -> bool:
    return is_engine(state.pid, path) and answers(state.url)


def find(engine_dir: Path, config: EngineConfig) -> EngineState | None:
    """The running engine that serves `config`, if there is one that answers."""
    path = state_path(engine_dir, config.model)
    state = read_state(path)
    if state is not None and state.config.serves(config) and usable(state, path):
        return state
    return None


def ensure(config: EngineConfig, engine_dir: Path, on_starting: Callable[[], None] | None = None) -> EngineState:
    """The engine serving `config`: the running one, or a new one started in the background
    (replacing a stale or different one); `on_starting()` is called before a model load."""
    found = find(engine_dir, config)
    if found is not None:
        return found
    path = state_path(private_dir(engine_dir), config.model)
    with locked(lock_path(path)):
        found = find(engine_dir, config)  # another command may have started it while we waited
        if found is not None:
            return found
        stale = read_state(path)
        if stale is not None:
            terminate(stale.pid, path)
            path.unlink(missing_ok=True)
        if on_starting is not None:
            on_starting()
        return _start(config, path)


def _start(config: EngineConfig, path: Path) -> EngineState:
    """Launch the engine (it detaches itself) and wait until it has written its state and answers."""
    import qa

    log = log_path(path)
    command = [sys.executable, "-m", SERVER_MODULE, "--state", str(path)]
    for f in fields(EngineConfig):
        command += [f"--{f.name}", str(getattr(config, f.name))]
    source = str(Path(qa.__file__).resolve().parent.parent)  # this qa, installed or run from a checkout
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    # The log is truncated here, once per start, then appended to by the engine (never unbounded:
    # the engine trims it too).
    with open(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as errors:
        launcher = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            cwd=path.parent,
            env=env,
            start_new_session=True,  # Ctrl-C in the terminal is for the command, not the engine
        )
        try:
            said, _ = launcher.communicate(timeout=60)  # it forks at once and exits
        except subprocess.TimeoutExpired:
            launcher.kill()
            said, _ = launcher.communicate()
    try:
        pid = int(said.decode().strip())
    except ValueError:
        raise QAError(f"The local engine could not start: {_last_line(log)}. See {log}.") from None
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        state = read_state(path)
        if state is not None and state.pid == pid and answers(state.url):
            return state
        if not is_engine(pid, path):
            raise QAError(f"The local engine stopped while loading the model: {_last_line(log)}. See {log}.")
        if time.monotonic() > deadline:
            terminate(pid, path)
            raise QAError(f"The local engine did not start in {START_TIMEOUT:.0f} s; see {log}.")
        time.sleep(0.1)


def _last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip() if lines else "no log"


def terminate(pid: int, path: Path, grace: float = STOP_GRACE) -> bool:
    """Stop the engine `pid` serving `path`: SIGTERM, then SIGKILL after `grace` seconds. False
    when `pid` is not (or no longer) our engine: then nothing is signalled."""
    if not is_engine(pid, path):
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not is_engine(pid, path):
                remove_state(path, pid)  # the engine removes it itself, unless it was killed
                return True
            time.sleep(0.05)
    return True


def engines(engine_dir: Path) -> list[tuple[EngineState, bool]]:
    """Every engine a state file names in `engine_dir`, and whether it is running and answers."""
    found = []
    for path in sorted(engine_dir.glob("*.json")) if engine_dir.is_dir() else []:
        state = read_state(path)
        if state is not None:
            found.append((state, usable(state, path)))
    return found


def stop(engine_dir: Path, grace: float = STOP_GRACE) -> list[EngineState]:
    """Stop every engine of this data directory; the ones that were running."""
    stopped = []
    for path in sorted(engine_dir.glob("*.json")) if engine_dir.is_dir() else []:
        with locked(lock_path(path)):  # not in the middle of a start
            state = read_state(path)
            if state is None:
                continue
            if terminate(state.pid, path, grace):
                stopped.append(state)
            path.unlink(missing_ok=True)
    return stopped
