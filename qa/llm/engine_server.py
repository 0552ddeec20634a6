"""The background engine process: `python -m qa.llm.engine_server --state PATH --model ... --file ...`.

Started by `qa.llm.engine.ensure`. It detaches (forks, prints the daemon's pid for the starter,
and the starter's child exits), loads the GGUF model with xllamacpp on a random loopback port
behind a random API key, warms the model up, checks that its HTTP server answers, and only then
writes the state file, so a command never finds an engine that is not ready. It polls the
engine's own metrics and exits (removing its state file) after `--idle` seconds in which no
request was processing and no token was read or written; SIGTERM stops it the same way.
Its log ($QA_HOME/engine/<model>.log) gets a few lines per start and is kept under 1 MiB.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from .engine import (
    EngineConfig,
    EngineState,
    answers,
    lock_path,
    locked,
    log_path,
    read_state,
    remove_state,
    write_state,
)

LOG_LIMIT = 1 << 20
CACHE_RAM_MIB = 512  # llama.cpp's host-memory cache of earlier prompts (its default, 8 GiB, is a laptop's RAM)
NUMBERS = {"threads": int, "n_ctx": int, "n_parallel": int, "idle": float}  # the other settings are text
ACTIVITY = ("prompt_tokens_total", "prompt_tokens_cached_total", "tokens_predicted_total", "n_decode_total")


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} engine {os.getpid()}: {message}", flush=True)


def metrics(text: str) -> dict[str, float]:
    """The `llamacpp:` values of a Prometheus text page, by name without the prefix."""
    found = {}
    for line in text.splitlines():
        if line.startswith("llamacpp:"):
            name, _, value = line[len("llamacpp:") :].partition(" ")
            try:
                found[name] = float(value)
            except ValueError:
                continue
    return found


def params(config: EngineConfig, key: str) -> Any:
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = config.file
    p.n_parallel = config.n_parallel
    p.n_ctx = config.n_ctx * config.n_parallel  # llama.cpp splits the context among the slots (kv_unified off)
    p.kv_unified = False
    p.cpuparams.n_threads = config.threads
    p.cpuparams_batch.n_threads = config.threads
    p.hostnames = ["127.0.0.1"]  # loopback only
    p.port = 0  # a free port, chosen by the system
    p.api_keys = [key]
    p.verbosity = -1
    p.cache_prompt = True
    p.cache_ram_mib = CACHE_RAM_MIB
    p.endpoint_metrics = True  # read in-process by the idle watch (over HTTP it needs the key)
    p.warmup = True  # llama.cpp's own empty run on load
    return p


def warm_up(server: Any) -> None:
    """One short real request: this VM maps the model's memory lazily, so the first request after a
    load is much slower than the next; it is paid here, before any command is told the engine is ready."""
    server.handle_chat_completions(
        {"messages": [{"role": "user", "content": "Reply with one word: ready?"}], "max_tokens": 2, "temperature": 0}
    )


def serve(config: EngineConfig, path: Path, stop: threading.Event) -> int:
    """Load, warm up, announce, then watch; the exit code."""
    import xllamacpp

    key = secrets.token_urlsafe(24)
    log(f"loading {config.model} from {config.file} ({config.threads} threads, {config.n_parallel} x {config.n_ctx})")
    t0 = time.monotonic()
    try:
        server = xllamacpp.Server(params(config, key))
    except Exception as exc:
        log(f"error: the model could not be loaded ({exc})")
        return 1
    loaded = time.monotonic() - t0
    warm_up(server)
    url = server.listening_address.rstrip("/")
    if not url.startswith("http://127.0.0.1:") or not answers(url):
        log(f"error: the engine does not answer on {url}")
        return 1
    if stop.is_set():
        return 0
    write_state(path, EngineState(os.getpid(), url, key, time.time(), config))
    log(f"ready on {url}: loaded in {loaded:.1f} s, warm in {time.monotonic() - t0 - loaded:.1f} s")
    watch(server, config, path, stop)
    return 0


def watch(server: Any, config: EngineConfig, path: Path, stop: threading.Event) -> None:
    """Return once the engine should exit: stopped, replaced, or idle for `config.idle` seconds."""
    pid = os.getpid()
    poll = min(5.0, max(0.2, config.idle / 5))
    last: tuple[float, ...] = ()
    active = time.monotonic()
    while not stop.wait(poll):
        now = time.monotonic()
        seen = metrics(server.handle_metrics())
        activity = tuple(seen.get(name, 0.0) for name in ACTIVITY)
        if activity != last or seen.get("requests_processing", 0) or seen.get("requests_deferred", 0):
            last, active = activity, now
        state = read_state(path)
        if state is None or state.pid != pid:
            log("no longer named by the state file: exiting")
            return
        _trim_log(path)
        if now - active >= config.idle:
            with locked(lock_path(path), wait=False) as free:
                if free:  # no command is starting or stopping an engine right now
                    log(f"idle for {now - active:.0f} s: exiting")
                    remove_state(path, pid)
                    return
    log("stopped")


def _trim_log(path: Path) -> None:
    with_log = log_path(path)
    try:
        if with_log.stat().st_size > LOG_LIMIT:
            os.truncate(with_log, 0)  # the log is opened for appending: later lines start again at 0
    except OSError:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m qa.llm.engine_server")
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--foreground", action="store_true", help="do not detach (for debugging)")
    for f in fields(EngineConfig):
        parser.add_argument(f"--{f.name}", required=True, type=NUMBERS.get(f.name, str))
    args = parser.parse_args(argv)
    config = EngineConfig(**{f.name: getattr(args, f.name) for f in fields(EngineConfig)})
    path: Path = args.state
    if not args.foreground:
        daemon = os.fork()
        if daemon:  # the starter reads the daemon's pid, then this process is gone
            print(daemon, flush=True)
            os._exit(0)
        os.setsid()
        fd = os.open(log_path(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    code = 1
    try:
        code = serve(config, path, stop)
    except Exception as exc:  # the log says why; the starter shows its last line
        log(f"error: {exc.__class__.__name__}: {exc}")
    finally:
        remove_state(path, os.getpid())
        sys.stdout.flush()
    # Exit at once: no request is running (idle) or the caller asked to stop; tearing the
    # server down thread by thread would only delay the exit.
    os._exit(code)


if __name__ == "__main__":
    main()
