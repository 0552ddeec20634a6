"""The real background engine on the smallest packaged model (SmolLM2-135M), through `qa` commands:
reused by a second command, replaced after kill -9, two requests at once, the idle exit, loopback
and key only, two commands starting at once. Every test stops its engine at teardown (and
conftest's session finalizer stops any engine left under the test directories)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from qa.llm import engine
from tests.conftest import REPO, SAMPLE
from tests.test_local_model import needs_model

QA = [sys.executable, "-m", "qa"]
MODEL = "smollm2-135m-instruct-q4_1"
QUESTION = "What pay rise did Korvane's Brakemoor workers accept?"
pytestmark = [pytest.mark.local_model, needs_model]


@pytest.fixture(scope="module")
def library_home(tmp_path_factory) -> Path:
    """The sample articles ingested once for the module (with the fake embedder: the engine is what
    is tested here); the model is assembled into it by the first test."""
    home = tmp_path_factory.mktemp("engine-home")
    env = _env(home)
    subprocess.run(QA + ["ingest", str(SAMPLE)], env=env, check=True, capture_output=True)
    return home


def _env(home: Path, **more: str) -> dict[str, str]:
    # short answers: the machine is shared, and what is tested is the engine, not the answer
    return {
        **os.environ,
        "QA_HOME": str(home),
        "QA_EMBEDDER": "fake",
        "QA_LLM": "local:smollm2",
        "QA_MAX_ANSWER_TOKENS": "12",
        "QA_BUDGET": "200",
        "QA_PLUGINS": "tests.fakes",  # set here too: a module's fixtures run before conftest's per-test ones
        "PYTHONPATH": str(REPO),
        **more,
    }


@pytest.fixture
def home(library_home):
    yield library_home
    engine.stop(library_home / "engine", grace=5)


def _qa(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(QA + list(args), env=_env(home, **env), capture_output=True, text=True, timeout=900)


def _state(home: Path) -> engine.EngineState:
    state = engine.read_state(engine.state_path(home / "engine", MODEL))
    assert state is not None
    return state


def _loads(home: Path) -> int:
    return engine.log_path(engine.state_path(home / "engine", MODEL)).read_text().count(": loading ")


def test_a_second_command_reuses_the_engine_and_no_command_loads_the_model(home):
    first = _qa(home, "ask", "--json", QUESTION)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["model"] == f"local:{MODEL}"  # --json stays clean JSON on stdout
    assert "Starting the local engine" in first.stderr
    pid = _state(home).pid
    second = _qa(home, "ask", "--json", "Who went on strike?")
    assert second.returncode == 0, second.stderr
    assert "Starting the local engine" not in second.stderr
    assert _state(home).pid == pid and _loads(home) == 1
    # the command's own process talks to the engine: the engine library is never even imported there
    probe = (
        "import sys; from qa.library import make_llm; from qa.settings import load_settings;"
        "llm = make_llm(load_settings()); print(llm.complete([{'role': 'user', 'content': 'Hi'}], max_tokens=4));"
        "print('xllamacpp' in sys.modules)"
    )
    # a proxy in the environment must not capture loopback traffic
    run = subprocess.run(
        [sys.executable, "-c", probe],
        env=_env(home, HTTP_PROXY="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "False"
    assert _state(home).pid == pid and _loads(home) == 1


def test_a_killed_engine_is_replaced_by_the_next_command_and_mid_session(home):
    from qa.library import make_llm
    from qa.settings import load_settings

    started = _qa(home, "engine", "start")
    assert started.returncode == 0, started.stderr
    old = _state(home).pid
    os.kill(old, signal.SIGKILL)
    answered = _qa(home, "ask", "--json", QUESTION)
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["answer"]
    new = _state(home).pid
    assert new != old and engine.is_engine(new, engine.state_path(home / "engine", MODEL))

    # a process holding the engine's client: the engine dies between two requests; the next
    # request finds the port closed, restarts the engine once and is answered
    llm = make_llm(load_settings({"home": str(home), "llm": "local:smollm2", "embedder": "fake"}))
    messages = [{"role": "user", "content": "Name a colour."}]
    before = llm.complete(messages, max_tokens=6)
    os.kill(new, signal.SIGKILL)
    assert llm.complete(messages, max_tokens=6) == before
    assert _state(home).pid not in (old, new)


def test_two_requests_at_once_each_get_their_own_answer(home):
    from qa.library import make_llm
    from qa.settings import load_settings

    settings = load_settings({"home": str(home), "llm": "local:smollm2", "embedder": "fake"})
    prompts = [
        [{"role": "user", "content": "Write a short poem about the sea."}],
        [{"role": "user", "content": "List three facts about the planet Mars."}],
    ]
    alone = [make_llm(settings).complete(p, max_tokens=24) for p in prompts]
    assert alone[0] != alone[1]
    together: dict[int, str] = {}
    spans: dict[int, tuple[float, float]] = {}
    clients = [make_llm(settings) for _ in prompts]  # two commands' clients of the one engine

    def ask(i: int) -> None:
        t0 = time.monotonic()
        together[i] = clients[i].complete(prompts[i], max_tokens=24)
        spans[i] = (t0, time.monotonic())

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert [together[0], together[1]] == alone
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1]  # they did run at the same time
    assert _loads(home) == 1


def test_the_engine_exits_after_its_idle_timeout(home):
    started = _qa(home, "engine", "start", QA_ENGINE_IDLE="2")
    assert started.returncode == 0, started.stderr
    path = engine.state_path(home / "engine", MODEL)
    pid = _state(home).pid
    deadline = time.monotonic() + 60
    while engine.is_engine(pid, path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not engine.is_engine(pid, path) and not path.exists()
    assert "idle for" in engine.log_path(path).read_text()
    status = _qa(home, "engine", "status", "--json")
    assert json.loads(status.stdout)["engines"] == []


def _listening(pid: int) -> list[tuple[str, int]]:
    """(hex address, port) of each TCP socket `pid` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                found.append((address, int(port, 16)))
    return found


def test_the_engine_listens_on_loopback_only_and_wants_its_key(home):
    started = _qa(home, "engine", "start")
    assert started.returncode == 0, started.stderr
    state = _state(home)
    listening = _listening(state.pid)
    assert listening and all(address == "0100007F" for address, _ in listening)  # 127.0.0.1 only
    assert int(state.url.rsplit(":", 1)[1]) in {port for _, port in listening}

    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    url = f"{state.url}/v1/chat/completions"
    assert httpx.post(url, json=body, timeout=60).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": "Bearer wrong"}, timeout=60).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": f"Bearer {state.key}"}, timeout=300).status_code == 200

    path = engine.state_path(home / "engine", MODEL)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert state.key not in Path(f"/proc/{state.pid}/cmdline").read_text()
    assert state.key not in engine.log_path(path).read_text()
    shown = _qa(home, "engine", "status")
    assert state.url in shown.stdout and state.key not in shown.stdout


def test_two_commands_starting_at_once_start_one_engine(home):
    env = _env(home)
    starts = [
        subprocess.Popen(QA + ["engine", "start"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=900) for p in starts]
    assert all(p.returncode == 0 for p in starts), outputs
    pid = _state(home).pid
    assert all(f"engine {pid} " in out for out, _ in outputs)
    assert _loads(home) == 1
    path = str(engine.state_path(home / "engine", MODEL))
    running = [
        p.name for p in Path("/proc").iterdir() if p.name.isdigit() and engine.is_engine(int(p.name), Path(path))
    ]
    assert running == [str(pid)]
