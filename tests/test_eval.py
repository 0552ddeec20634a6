"""`qa eval` end to end: the real store, tokenizer and embedder over the sample articles, with the
fake LLM (a queue of replies) or the extractive backend; run folders, resume, cache, compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli import app
from qa.eval.adapters import load_set
from qa.eval.cache import CachedLLM
from qa.eval.corpora import Corpora
from qa.eval.evaluate import evaluate
from qa.eval.gold import EvalItem, EvalSet
from qa.eval.runs import RunDir, compare
from qa.eval.scoring import TIMING
from qa.prompts import REFUSAL
from tests.fakes import FakeLLM

REPO = Path(__file__).resolve().parent.parent
GOLD = REPO / "eval" / "sample" / "gold.jsonl"
SAMPLE = REPO / "eval" / "sample" / "articles"


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> Path:
    """Eval collections shared by the tests of this module: the sample is ingested once."""
    return tmp_path_factory.mktemp("eval-stores")


@pytest.fixture
def sample_set(tmp_path) -> EvalSet:
    return load_set("gold", GOLD, workspace=tmp_path, corpus=[str(SAMPLE)])


def only(evalset: EvalSet, *ids: str) -> EvalSet:
    return EvalSet(evalset.name, evalset.format, [i for i in evalset.items if i.id in ids], evalset.corpora)


def run(evalset: EvalSet, stores: Path, embedder, llm) -> list[dict]:
    corpora = Corpora(evalset, home=stores, embedder=embedder)
    try:
        return list(evaluate(evalset, corpora=corpora, embedder=embedder, llm=llm))
    finally:
        corpora.close()


def test_model_answers_then_gives_a_short_answer_then_chooses(sample_set, stores, embedder):
    said = "The Vantelle Farmers' Union estimated losses of 86 million euros [1]."
    fake = FakeLLM(replies=[said, "86 million euros.", "B"])
    (row,) = run(only(sample_set, "s05"), stores, embedder, fake)
    answer_call, short_call, choose_call = fake.calls
    assert len(answer_call) == 2 and short_call[:2] == answer_call  # follow-ups continue the same conversation
    assert short_call[2]["role"] == "assistant" and short_call[2]["content"].strip() == said
    assert "short answer" in short_call[3]["content"] and "D. 412 million euros" not in json.dumps(short_call)
    assert "B. 86 million euros" in choose_call[-1]["content"] and "D. 412 million euros" in choose_call[-1]["content"]
    assert row["short"] == "86 million euros" and row["choice"] == 1 and row["choice_source"] == "model"
    got = row["metrics"]
    assert got["mc"] == 1.0 and got["em"] == 1.0 and got["f1"] == 1.0 and got["answer_recall"] == 1.0
    assert got["answer_in_corpus"] == 1.0 and got["context_hit"] == 1.0 and got["false_refusal"] == 0.0
    assert got["citation_validity"] == 1.0 and 0.0 <= got["support_rate"] <= 1.0
    assert row["gold_ids"] and row["retrieved"][0] in row["gold_ids"] and got["hit@1"] == 1.0
    assert got["prompt_tokens"] > 0 and got["context_tokens"] <= 1000


def test_refusal_on_an_unanswerable_question_needs_no_follow_up(sample_set, stores, embedder):
    fake = FakeLLM(replies=[REFUSAL])
    (row,) = run(only(sample_set, "s12"), stores, embedder, fake)
    assert len(fake.calls) == 1 and row["refused"]
    assert row["metrics"]["refusal"] == 1.0 and "em" not in row["metrics"]  # no gold answer to match


def test_unparseable_choice_falls_back_to_the_best_supported_choice(sample_set, stores, embedder):
    fake = FakeLLM(replies=["About 1,140 production workers walked out [1].", "1,140", "I cannot tell."])
    (row,) = run(only(sample_set, "s08"), stores, embedder, fake)
    assert row["choice_reply"] == "I cannot tell." and row["choice_source"] == "support"
    assert row["choice"] == 1 and row["metrics"]["mc"] == 1.0


def test_extractive_run_is_deterministic(sample_set, stores, embedder):
    subset = only(sample_set, "s02", "s05", "s08", "s13")
    first = run(subset, stores, embedder, None)
    second = run(subset, stores, embedder, None)
    strip = lambda rows: [
        {**r, "timings": None, "metrics": {k: v for k, v in r["metrics"].items() if k not in TIMING}} for r in rows
    ]
    assert strip(first) == strip(second)
    mc = [r for r in first if r["choices"]]
    assert all(r["choice_source"] == "support" for r in mc) and all(r["metrics"]["mc"] == 1.0 for r in mc)


def test_evidence_never_reaches_the_model(tmp_path, stores, embedder):
    from test_eval_adapters import SECRET, realtimeqa_week

    folder = realtimeqa_week(tmp_path / "rtqa")
    fake = FakeLLM(replies=["Corve signed the striker Ola Brandt on Monday [1].", "Corve", "C"])
    pool = load_set("realtimeqa", folder, workspace=tmp_path / "ws")
    rows = run(pool, stores, embedder, fake)
    assert SECRET not in json.dumps(fake.calls) and rows[0]["metrics"]["mc"] == 1.0
    # the question's date is told (so "this week" is that week) in the answer and in its follow-ups
    assert all("Today's date is 2099-01-01." in call[1]["content"] for call in fake.calls[:3])
    own = load_set("realtimeqa", folder, workspace=tmp_path / "ws", mode="own")
    fake = FakeLLM(replies=["Corve signed the striker Ola Brandt on Monday [1].", "Corve", "C"])
    first, second = run(own, stores, embedder, fake)
    assert first["metrics"]["em"] == 1.0 and second["refused"] and second["metrics"]["refusal"] == 1.0
    assert len(fake.calls) == 3  # the question with no search results made no call


def test_llm_cache_replays_identical_calls(tmp_path):
    fake = FakeLLM(replies=["one", "two"])
    cached = CachedLLM(fake, tmp_path / "cache.sqlite")
    messages = [{"role": "user", "content": "hello"}]
    assert cached.complete(messages) == "one"
    assert "".join(cached.stream(messages)) == "one" and len(fake.calls) == 1 and cached.hits == 1
    assert cached.complete(messages, max_tokens=5) == "two" and len(fake.calls) == 2  # other params: a new call
    cached.close()
    again = CachedLLM(FakeLLM(replies=["never"]), tmp_path / "cache.sqlite")
    assert again.complete(messages) == "one" and again.usage.completion_tokens == 1  # kept on disk, with usage


def test_run_rows_survive_a_line_cut_off_by_a_kill(tmp_path):
    run_dir = RunDir.create(tmp_path, "x", {"a": 1})
    run_dir.append({"id": "1", "metrics": {}})
    with open(run_dir.results, "a") as handle:
        handle.write('{"id": "2", "metr')
    assert [r["id"] for r in run_dir.rows()] == ["1"]
    assert run_dir.results.read_text().count("\n") == 1  # the broken tail is gone
    assert RunDir.latest(tmp_path, "x").path == run_dir.path


def test_compare_reports_deltas_and_flipped_items(tmp_path):
    def make(name: str, mcs: list[float]) -> RunDir:
        run_dir = RunDir.create(tmp_path, name, {"llm": name})
        for i, value in enumerate(mcs):
            run_dir.append({"id": str(i), "question": f"Q{i}?", "short": "", "answer": "", "metrics": {"mc": value}})
        return run_dir

    result = compare(make("a", [0, 0, 1, 1]), make("b", [1, 1, 1, 0]))
    (delta,) = result["deltas"]
    assert delta["metric"] == "mc" and delta["a"] == 0.5 and delta["b"] == 0.75 and delta["delta"] == 0.25
    assert delta["low"] <= 0.25 <= delta["high"]
    assert sorted(f["id"] for f in result["flips"]) == ["0", "1", "3"]
    assert result["settings_changed"] == {"llm": ("a", "b")}


def test_item_with_an_empty_corpus_is_refused_without_retrieval(tmp_path, embedder):
    evalset = EvalSet("t", "gold", [EvalItem("x", "Anything?", unanswerable=True, corpus="x")], {"x": []})
    (row,) = run(evalset, tmp_path, embedder, FakeLLM(replies=["should not be called"]))
    assert row["refused"] and row["metrics"]["refusal"] == 1.0 and row["context"] == []


# ---- the command line ---------------------------------------------------------------------------------


@pytest.fixture
def qa(monkeypatch):
    monkeypatch.setenv("QA_EMBEDDER", "fake")  # fast: this checks the command, not the retrieval
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def test_cli_run_resume_and_compare(qa, tmp_path):
    runs = tmp_path / "runs"
    base = ("eval", GOLD, "--corpus", SAMPLE, "--llm", "extractive", "--runs", runs)
    first = qa(*base, "--limit", "3")
    assert first.exit_code == 0, first.output
    (run_a,) = runs.iterdir()
    assert run_a.name.endswith("-gold-extractive")
    assert len((run_a / "results.jsonl").read_text().splitlines()) == 3
    summary = json.loads((run_a / "summary.json").read_text())
    assert summary["items"] == 3 and {"mean", "low", "high", "n"} <= summary["metrics"]["f1"].keys()
    assert summary["settings_hash"] and summary["prompts_hash"] and summary["versions"]["qa"]
    assert "token F1" in first.stdout

    with open(run_a / "results.jsonl", "a") as handle:  # as if killed while writing item 4
        handle.write('{"id": "s04", "quest')
    resumed = qa(*base, "--resume")
    assert resumed.exit_code == 0, resumed.output
    ids = [json.loads(line)["id"] for line in (run_a / "results.jsonl").read_text().splitlines()]
    assert ids == [f"s{n:02d}" for n in range(1, 34)]  # each item once, in order
    assert len(list(runs.iterdir())) == 1

    refused = qa(*base, "--resume", "--budget", "500")
    assert refused.exit_code == 1 and "settings differ" in " ".join(refused.output.split())

    second = qa(*base, "--budget", "500", "--name", "small")
    assert second.exit_code == 0, second.output
    run_b = next(p for p in runs.iterdir() if p.name.endswith("-small"))
    compared = qa("eval", "compare", run_a, run_b, "--json")
    assert compared.exit_code == 0, compared.output
    result = json.loads(compared.stdout)
    assert result["items"] == 33 and "options" in result["settings_changed"]
    assert {d["metric"] for d in result["deltas"]} >= {"f1", "mc", "refusal"}
    table = qa("eval", "compare", run_a, run_b)
    assert table.exit_code == 0 and "shared items" in table.stdout


def test_cli_usage_errors_are_one_line(qa, tmp_path):
    bad = qa("eval", GOLD, "--format", "nope", "--runs", tmp_path)
    assert bad.exit_code == 2 and "--format must be one of" in bad.output and "Traceback" not in bad.output
    empty = qa("eval", GOLD, "--llm", "extractive", "--runs", tmp_path)
    assert empty.exit_code == 1 and "--corpus" in " ".join(empty.output.split())


def test_html_report_has_charts_and_flips(tmp_path):
    pytest.importorskip("matplotlib")
    from qa.eval.report import write_html

    def make(name: str, mcs: list[float]) -> RunDir:
        run_dir = RunDir.create(tmp_path, name, {"llm": name})
        for i, value in enumerate(mcs):
            run_dir.append(
                {
                    "id": str(i),
                    "question": f"Q{i} <b>?",
                    "short": "",
                    "answer": "x",
                    "metrics": {"mc": value, "latency_s": 1.0},
                }
            )
        return run_dir

    a, b = make("a", [0, 0, 1]), make("b", [1, 1, 1])
    page = tmp_path / "report.html"
    write_html(compare(a, b), a, b, page)
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 2 and "Q0 &lt;b&gt;?" in text and "multiple-choice accuracy" in text


def test_summary_items_are_scored_with_rouge_against_the_best_reference(tmp_path, stores, embedder):
    from qa.eval.scoring import summary_scores

    scores = summary_scores("the cat sat on the mat", "a dog barked\n\nthe cat sat on the mat")
    assert scores["rouge1"] == scores["rouge2"] == scores["rougeL"] == 1.0 and scores["summary_words"] == 6
    summaries = load_set(
        "summaries", REPO / "eval" / "sample" / "summaries.jsonl", workspace=tmp_path, corpus=[str(SAMPLE)]
    )
    evalset = EvalSet("s", "summaries", summaries.items[2:], summaries.corpora)
    (row,) = run(evalset, stores, embedder, None)
    got = row["metrics"]
    assert 0.2 < got["rouge1"] <= 1.0 and got["rouge2"] <= got["rouge1"] and got["support_rate"] == 1.0
    assert "strike" in row["answer"].lower() and row["gold_ids"] == [row["article"]]


def test_a_run_killed_midway_resumes_where_it_stopped(tmp_path, home):
    """A real `qa eval` process, SIGKILLed after a few items, then `--resume`d to the end."""
    import os
    import signal
    import subprocess
    import sys
    import time

    rows = [json.loads(line) for line in GOLD.read_text().splitlines()]
    gold = tmp_path / "gold.jsonl"  # the sample questions four times over: long enough to be caught midway
    gold.write_text("".join(json.dumps({**r, "id": f"{r['id']}-{n}"}) + "\n" for n in range(4) for r in rows))
    runs = tmp_path / "runs"
    env = {**os.environ, "QA_HOME": str(home), "QA_EMBEDDER": "fake"}
    command = [
        str(Path(sys.executable).parent / "qa"),
        "eval",
        str(gold),
        "--corpus",
        str(SAMPLE),
        "--llm",
        "extractive",
        "--runs",
        str(runs),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    results = None
    while time.time() < deadline and process.poll() is None:
        found = list(runs.glob("*/results.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 3:
            results = found[0]
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert results is not None, "the run did not start in time"
    before = len(results.read_text().splitlines())
    assert 3 <= before < 4 * len(rows)
    done = subprocess.run(command + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    ids = [json.loads(line)["id"] for line in results.read_text().splitlines()]
    assert ids == [f"{r['id']}-{n}" for n in range(4) for r in rows]  # every item once, in order
    assert json.loads((results.parent / "summary.json").read_text())["items"] == 4 * len(rows)
