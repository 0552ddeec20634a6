"""API keys are never printed or logged, on any output path, success or failure."""

from __future__ import annotations

import socket

from typer.testing import CliRunner

from qa.cli import app

SECRET = "sk-test-DO-NOT-PRINT-4f1c9a"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_keys_never_reach_any_output(monkeypatch, home, sample_dir, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("QA_CHROMA_TOKEN", SECRET)
    monkeypatch.setenv("QA_EMBEDDER", "fake")
    runner = CliRunner()
    outputs = []
    for args in (
        ["ingest", str(sample_dir), "--json"],
        ["doctor"],
        ["doctor", "--json"],
        ["stats", "--json"],
        ["ask", "--llm", "openai:gpt-x", "What pay rise did the workers accept?"],
        ["ask", "--llm", "openai:gpt-x", "--json", "What pay rise?"],
        ["ask", "--llm", "extractive", "--json", "What pay rise did the workers accept?"],
    ):
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")
        result = runner.invoke(app, args)
        outputs.append(result.stdout + result.stderr + repr(result.exception or ""))
    # the failing ask must have failed with a message that says what to set, not the key
    assert any("OPENAI_BASE_URL" in o for o in outputs)
    everything = "\n".join(outputs) + caplog.text
    written = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite" for p in written)  # the store really is here
    for path in written:  # nothing written to disk either (catalogue, caches, logs)
        if path.is_file() and path.stat().st_size < 5_000_000:
            everything += path.read_bytes().decode("utf-8", "replace")
    assert SECRET not in everything


def test_a_password_in_the_chroma_url_is_never_shown(monkeypatch, site):
    """A Chroma URL with a password: no output shows it; a web server that is not Chroma gives one line."""
    site.add("/api/v2/heartbeat", "<!DOCTYPE html><html><body><h1>Welcome to nginx</h1></body></html>", status=404)
    monkeypatch.setenv("QA_EMBEDDER", "fake")
    runner = CliRunner()
    for url in (f"http://alice:{SECRET}@127.0.0.1:{_closed_port()}", site.url("").replace("//", f"//alice:{SECRET}@")):
        monkeypatch.setenv("QA_CHROMA_URL", url)
        for args in (["ingest", "nothing-here"], ["stats"], ["sources"], ["ask", "--llm", "extractive", "Who?"]):
            result = runner.invoke(app, args)
            assert result.exit_code == 1, (args, result.output)
            assert SECRET not in result.output and "alice:***@127.0.0.1" in result.stderr, result.stderr
            assert len(result.stderr.strip().splitlines()) == 1 and "<" not in result.stderr, result.stderr
        doctor = runner.invoke(app, ["doctor", "--json"])
        assert SECRET not in doctor.output
    assert "the server answered with a web page, not as Chroma" in result.stderr
