"""What ingest tells a user (issue #19): re-ingesting unchanged input updates nothing and its counts
add up to what is stored; a date that cannot be read is a warning; links out of a folder are not
followed; progress counts articles and, within a huge article, sentences; `qa summarise` finds an
article by a path relative to the current folder; `qa sources` fits 80 columns."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli import app
from qa.ingest import pipeline
from qa.ingest.pipeline import ingest
from qa.search import Library


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setenv("QA_EMBEDDER", "fake")
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args], prog_name="qa")


def report(result) -> dict:
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def story(n: int, words: str = "harbour tram strike union council drought rain ferry bridge port") -> str:
    rng = random.Random(n)
    vocabulary = words.split()
    return " ".join(" ".join(rng.choice(vocabulary) for _ in range(12)).capitalize() + "." for _ in range(8))


def test_reingesting_unchanged_records_updates_nothing_and_counts_add_up(cli, tmp_path):
    """The RealTimeQA `*_gcs.jsonl` shape: one story under two titles, a record repeated, one text
    under two URLs. The first record read stands; the rest are reported as duplicates."""
    x, y = story(1), story(2)
    lines = [
        {"search_result": [{"url": "https://a.test/x", "title": "First title", "text": x}]},
        {"search_result": [{"url": "https://a.test/x", "title": "Second title", "text": x}]},
        {"search_result": [{"url": "https://a.test/y", "title": "Y", "text": y}]},
        {"search_result": [{"url": "https://a.test/y", "title": "Y", "text": y}]},
        {"search_result": [{"url": "https://b.test/x-copy", "title": "Copy", "text": x}]},
    ]
    path = tmp_path / "week_gcs.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    first = report(cli("ingest", path, "--json"))["counts"]
    assert first == {"new": 2, "updated": 0, "unchanged": 0, "duplicate": 3, "failed": 0}
    stored = json.loads(cli("sources", "--json").stdout)
    assert sorted(a["title"] for a in stored) == ["First title", "Y"]
    for _ in range(2):  # settled: nothing flips back and forth
        again = report(cli("ingest", path, "--json"))["counts"]
        assert again == {"new": 0, "updated": 0, "unchanged": 2, "duplicate": 3, "failed": 0}
        assert again["unchanged"] == len(json.loads(cli("sources", "--json").stdout))
    assert sorted(a["title"] for a in json.loads(cli("sources", "--json").stdout)) == ["First title", "Y"]


def test_a_date_that_cannot_be_read_is_a_warning(cli, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.jsonl").write_text(json.dumps({"title": "T", "date": "2026-13-45", "text": story(3)}) + "\n")
    (folder / "front.md").write_text(f"---\ntitle: Front\ndate: yesterday\n---\n{story(4)}\n")
    (folder / "good.md").write_text(f"---\ntitle: Good\ndate: 2026-02-03\n---\n{story(5)}\n")
    result = cli("ingest", folder, "--json")
    assert result.exit_code == 0
    warnings = {Path(w["origin"]).name: w["reason"] for w in report(result)["warnings"]}
    assert warnings == {
        "bad.jsonl:1": "date '2026-13-45' is not a date qa can read (write it as YYYY-MM-DD): stored undated",
        "front.md": "date 'yesterday' is not a date qa can read (write it as YYYY-MM-DD): stored undated",
    }
    assert sorted(a["date"] for a in json.loads(cli("sources", "--json").stdout)) == ["", "", "2026-02-03"]
    plain = cli("ingest", folder / "front.md")
    assert "warning" in plain.stderr and "'yesterday' is not a date" in " ".join(plain.stderr.split())


def test_links_out_of_the_folder_are_not_followed(cli, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"Secret\n\n{story(6)}")
    (outside / "more").mkdir()
    (outside / "more" / "other.md").write_text(f"# Other\n\n{story(7)}")
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "own.txt").write_text(f"Own story\n\n{story(8)}")
    (folder / "secret.txt").symlink_to(outside / "secret.txt")
    (folder / "more").symlink_to(outside / "more")
    (folder / "alias.txt").symlink_to(folder / "sub" / "own.txt")  # inside the folder: fine, one copy
    result = report(cli("ingest", folder, "--json"))
    assert result["counts"]["new"] == 1 and result["counts"]["failed"] == 0
    skipped = {Path(w["origin"]).name: w["reason"] for w in result["warnings"]}
    assert set(skipped) == {"secret.txt", "more"}
    assert skipped["secret.txt"].startswith(f"symbolic link to {outside / 'secret.txt'}, outside the folder")
    # named on the command line, a link is the user's choice
    named = report(cli("ingest", folder / "secret.txt", "--json"))
    assert named["counts"]["new"] == 1


def test_progress_counts_articles_and_sentences_of_a_huge_article(tmp_path, make_store, index_for, fake_embedder):
    small = [tmp_path / f"s{i}.txt" for i in range(3)]
    for i, path in enumerate(small):
        path.write_text(f"Small {i}\n\n{story(10 + i)}")
    records = tmp_path / "many.jsonl"
    records.write_text("".join(json.dumps({"title": f"R{i}", "text": story(20 + i)}) + "\n" for i in range(5)))
    huge = tmp_path / "huge.txt"
    huge.write_text("Huge\n\n" + " ".join(f"Sentence number {n} says the tram ran late." for n in range(2500)))
    seen: list[pipeline.Progress] = []
    store = make_store(fake_embedder)
    ingest(
        [*map(str, small), str(records), str(huge)],
        library=Library(store, fake_embedder, index_for(store)),
        on_progress=seen.append,
    )
    reading = [(p.done, p.total, Path(p.what).name) for p in seen if not p.of_sentences]
    # the total starts at one per input and grows to the articles the JSON lines file holds
    assert reading[:5] == [
        (0, 5, "s0.txt"),
        (1, 5, "s1.txt"),
        (2, 5, "s2.txt"),
        (3, 5, "many.jsonl"),
        (8, 9, "huge.txt"),
    ]
    assert reading[-1] == (9, 9, "done")
    embedding = [(p.sentences, p.of_sentences) for p in seen if p.of_sentences]
    assert embedding[0][0] == 0 and embedding[-1][0] < embedding[-1][1] and embedding[-1][1] >= 2500
    assert [s for s, _ in embedding] == sorted(s for s, _ in embedding) and len(embedding) >= 3


def test_progress_lines_when_not_a_terminal(cli, tmp_path, monkeypatch):
    from qa.cli import _shared

    monkeypatch.setattr(pipeline, "EMBED_SLICE", 200)
    huge = tmp_path / "huge.txt"
    huge.write_text("Huge\n\n" + " ".join(f"Sentence number {n} says the tram ran late." for n in range(1200)))
    monkeypatch.setattr(_shared, "LINE_EVERY", 0.0)  # a line at every report, to see them all
    result = cli("ingest", huge)
    assert result.exit_code == 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("Ingesting: ")]
    assert lines[0].startswith("Ingesting: 0/1 articles · ") and lines[0].endswith("huge.txt")
    assert any("embedding sentences 400/12" in line and "left" in line for line in lines), lines
    assert cli("ingest", huge, "--json").stderr == ""  # scripts reading JSON get no chatter


def test_progress_line_estimates_the_time_left():
    from qa.cli._shared import progress_line

    assert progress_line(pipeline.Progress(10, 40, "a.jsonl"), 20.0, 0) == "10/40 articles · a.jsonl · about 1:00 left"
    line = progress_line(pipeline.Progress(1, 1, "big.txt", 500, 2500), 30.0, 10.0)
    assert line == "1/1 articles · big.txt · embedding sentences 500/2500, about 0:40 left"


def test_summarise_finds_an_article_by_a_path_relative_to_here(cli, sample_dir, monkeypatch):
    assert cli("ingest", sample_dir).exit_code == 0
    monkeypatch.chdir(sample_dir)
    for name in sorted(os.listdir(sample_dir)):
        result = cli("summarise", "--llm", "extractive", "--json", name)
        assert result.exit_code == 0, (name, result.output)
        assert json.loads(result.stdout)["points"], name
    monkeypatch.chdir(sample_dir.parent)
    assert cli("summarise", "--llm", "extractive", "articles/korvane-strike-ends.md").exit_code == 0


def test_sources_fit_80_columns(cli, sample_dir, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert cli("ingest", sample_dir).exit_code == 0
    lines = cli("sources").stdout.rstrip("\n").splitlines()
    assert len(lines) == 2 + 12  # header, rule, one line per article
    assert all(len(line) <= 80 for line in lines)
    assert any("Meridian Business Review" in line for line in lines)  # source names whole
    assert any("Korvane strike" in line and "…" in line for line in lines)  # titles cut, marked
