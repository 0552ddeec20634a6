"""The background engine's bookkeeping, without a model: the state file, the proof that a pid is our
engine before it is signalled, stale engines found and replaced, one start under the lock, the idle
watch, the settings and the `qa engine` commands when nothing runs.

The engine here is a tiny HTTP server on loopback whose command line has the engine's shape
(tests/test_engine_local.py runs the real one on the packaged SmolLM2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from qa.llm import engine
from qa.llm.engine import EngineConfig, EngineState

FAKE_ENGINE = r"""
import http.server, socket, sys, time
mode = sys.argv[-1]
if mode == "mute":  # accepts connections, never answers: a hung engine
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
    print(s.getsockname()[1], flush=True); time.sleep(120)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404); self.end_headers()
    def log_message(self, *args): pass
server = http.server.HTTPServer(("127.0.0.1", 0), Health)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def _config(**changes) -> EngineConfig:
    return replace(EngineConfig("tiny", "/models/tiny.gguf", "ab" * 32, threads=2), **changes)


class FakeEngine:
    """A loopback HTTP server answering /health whose command line names the engine module and
    `--state PATH`, as the real engine's does."""

    def __init__(self, state: Path, mode: str = "answer"):
        command = [sys.executable, "-c", FAKE_ENGINE, engine.SERVER_MODULE, "--state", str(state), mode]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}"
        self.pid = self.process.pid

    def announce(self, path: Path, config: EngineConfig) -> EngineState:
        state = EngineState(self.pid, self.url, "key-" + str(self.pid), time.time(), config)
        engine.write_state(path, state)
        return state

    def stopped(self, timeout: float = 10.0) -> bool:
        try:
            self.process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def fakes():
    started: list[FakeEngine] = []

    def start(state: Path, mode: str = "answer") -> FakeEngine:
        started.append(FakeEngine(state, mode))
        return started[-1]

    yield start
    for fake in started:
        fake.close()


@pytest.fixture
def engine_dir(tmp_path) -> Path:
    return engine.private_dir(tmp_path / "engine")


def test_the_state_file_is_private_written_whole_and_read_back(engine_dir):
    path = engine.state_path(engine_dir, "tiny")
    state = EngineState(123, "http://127.0.0.1:5", "secret-key", 1.5, _config())
    engine.write_state(path, state)
    assert engine.read_state(path) == state
    assert (path.stat().st_mode & 0o777, engine_dir.stat().st_mode & 0o777) == (0o600, 0o700)
    assert sorted(p.name for p in engine_dir.iterdir()) == ["tiny.json"]  # no temporary file left behind
    path.write_text('{"pid": 1')  # cut short, or written by another qa: no engine, not a crash
    assert engine.read_state(path) is None
    engine.write_state(path, state)
    engine.remove_state(path, 999)  # another engine's file is left alone
    assert path.exists()
    engine.remove_state(path, 123)
    assert not path.exists()


def test_a_pid_is_signalled_only_when_its_command_line_proves_it_is_our_engine(engine_dir, fakes):
    path = engine.state_path(engine_dir, "tiny")
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    other_home = fakes(engine_dir.parent / "elsewhere" / "tiny.json")  # an engine, but of another data directory
    try:
        assert not engine.terminate(stranger.pid, path, grace=1)
        assert not engine.terminate(other_home.pid, path, grace=1)
        assert stranger.poll() is None and other_home.process.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
    ours = fakes(path)
    assert engine.is_engine(ours.pid, path)
    assert engine.terminate(ours.pid, path, grace=5)
    assert ours.stopped() and not engine.is_engine(ours.pid, path)


def test_a_matching_engine_is_found_and_a_dead_hung_or_different_one_is_not(engine_dir, fakes):
    path = engine.state_path(engine_dir, "tiny")
    config = _config()
    running = fakes(path)
    state = running.announce(path, config)
    assert engine.find(engine_dir, config) == state
    assert engine.find(engine_dir, replace(config, idle=5.0)) == state  # the idle timeout is not a reason to restart
    assert engine.find(engine_dir, replace(config, threads=1)) is None
    assert engine.find(engine_dir, replace(config, sha256="cd" * 32)) is None
    assert engine.find(engine_dir, replace(config, version="0.0.1")) is None

    running.close()  # crashed: the state file stays, naming a dead pid
    assert engine.read_state(path) == state and engine.find(engine_dir, config) is None

    hung = fakes(path, "mute")
    hung.announce(path, config)
    t0 = time.monotonic()
    assert engine.find(engine_dir, config) is None
    assert time.monotonic() - t0 < engine.HEALTH_TIMEOUT + 3


def test_ensure_replaces_a_stale_engine_and_reuses_a_good_one(engine_dir, fakes, monkeypatch):
    path = engine.state_path(engine_dir, "tiny")
    old = fakes(path)
    old.announce(path, _config(threads=1))
    started: list[EngineState] = []

    def start(config: EngineConfig, at: Path) -> EngineState:
        assert not at.exists()  # the stale state was removed before the new engine starts
        started.append(fakes(at).announce(at, config))
        return started[-1]

    monkeypatch.setattr(engine, "_start", start)
    said: list[str] = []
    state = engine.ensure(_config(threads=2), engine_dir, on_starting=lambda: said.append("starting"))
    assert old.stopped()  # the engine with other threads was ours: stopped, replaced
    assert state == started[0] and said == ["starting"]
    assert engine.ensure(_config(threads=2), engine_dir, on_starting=lambda: said.append("again")) == state
    assert len(started) == 1 and said == ["starting"]


def test_commands_starting_at_once_start_one_engine(engine_dir, fakes, monkeypatch):
    starts = []

    def slow_start(config: EngineConfig, at: Path) -> EngineState:
        starts.append(config)
        time.sleep(0.5)  # a model load: the others wait on the lock meanwhile
        return fakes(at).announce(at, config)

    monkeypatch.setattr(engine, "_start", slow_start)
    results: list[EngineState] = []
    threads = [threading.Thread(target=lambda: results.append(engine.ensure(_config(), engine_dir))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(starts) == 1
    assert len(results) == 4 and len({r.pid for r in results}) == 1


class Metrics:
    """A server's metrics page whose counters move while `busy_until` has not passed."""

    def __init__(self, busy_for: float, processing_for: float = 0.0):
        self.t0 = time.monotonic()
        self.busy_until = self.t0 + busy_for
        self.processing_until = self.busy_until + processing_for
        self.tokens = 0
        self.last_active = self.t0  # when the engine last saw activity in this page

    def handle_metrics(self) -> str:
        now = time.monotonic()
        if now < self.busy_until:
            self.tokens += 1
        processing = 1 if now < self.processing_until else 0
        if now < self.processing_until:
            self.last_active = now
        return (
            "# HELP llamacpp:tokens_predicted_total Number of generation tokens processed\n"
            f"llamacpp:tokens_predicted_total {self.tokens}\nllamacpp:requests_processing {processing}\n"
        )


def test_the_engine_exits_only_after_idle_seconds_without_tokens_or_requests(engine_dir):
    from qa.llm.engine_server import watch

    path = engine.state_path(engine_dir, "tiny")
    config = _config(idle=1.0)
    engine.write_state(path, EngineState(os.getpid(), "http://127.0.0.1:1", "k", time.time(), config))
    # tokens flow for 1.5 s, then a request is processing (a long prompt read: no new counts) for 1.5 s
    server = Metrics(busy_for=1.5, processing_for=1.5)
    watch(server, config, path, threading.Event())
    assert server.last_active > server.processing_until - 0.5  # it kept watching through the busy time
    assert time.monotonic() - server.last_active >= config.idle
    assert time.monotonic() - server.processing_until < config.idle + 5
    assert not path.exists()  # it removed its state file on the way out


def test_the_engine_exits_when_another_engine_took_its_place(engine_dir):
    from qa.llm.engine_server import watch

    path = engine.state_path(engine_dir, "tiny")
    config = _config(idle=600.0)
    engine.write_state(path, EngineState(os.getpid() + 1, "http://127.0.0.1:1", "k", time.time(), config))
    t0 = time.monotonic()
    watch(Metrics(busy_for=600), config, path, threading.Event())  # busy, but no longer the named engine
    assert time.monotonic() - t0 < 30 and path.exists()


def test_the_engine_setting_is_read_and_checked(monkeypatch):
    from qa.errors import QAError
    from qa.library import background_engine, make_llm
    from qa.settings import load_settings

    assert load_settings().engine == "background" and load_settings().engine_idle == 600.0
    monkeypatch.setenv("QA_ENGINE", "in-process")
    monkeypatch.setenv("QA_ENGINE_IDLE", "30")
    settings = load_settings()
    assert (settings.engine, settings.engine_idle, background_engine(settings)) == ("in-process", 30.0, False)
    monkeypatch.setenv("QA_ENGINE", "daemon")
    with pytest.raises(QAError, match="engine must be 'background' or 'in-process'"):
        make_llm(load_settings({"llm": "local"}))


def test_engine_commands_with_nothing_running(home):
    from typer.testing import CliRunner

    from qa.cli import app
    from qa.doctor import stack_checks
    from qa.settings import load_settings

    runner = CliRunner()
    status = runner.invoke(app, ["engine", "status"])
    assert status.exit_code == 0 and "No engine is running" in status.stdout
    assert json.loads(runner.invoke(app, ["engine", "status", "--json"]).stdout)["engines"] == []
    stop = runner.invoke(app, ["engine", "stop"])
    assert stop.exit_code == 0 and "No engine was running" in stop.stdout
    wrong = runner.invoke(app, ["engine", "start", "--llm", "extractive"])
    assert wrong.exit_code == 2 and "local" in wrong.stderr
    row = next(c for c in stack_checks(load_settings()) if c.component.startswith("engine process"))
    assert row.ok and row.detail.startswith("not running")  # stopped is normal, not a failure


def test_a_relative_data_directory_is_made_absolute(monkeypatch, tmp_path):
    """`make demo` sets QA_HOME=.qa-demo; the engine, started in its own folder, must still find its files."""
    from qa.settings import load_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QA_HOME", ".qa-demo")
    settings = load_settings()
    assert settings.home == tmp_path / ".qa-demo" and settings.engine_dir.is_absolute()
