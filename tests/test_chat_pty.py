"""`qa chat` as a user meets it: driven through a real pseudo-terminal (pexpect), and scripted
through a pipe. Offline: the extractive backend, and for Ctrl-C a fake that streams slowly."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from qa.chat.session import load_last_session, sessions_dir

pexpect = pytest.importorskip("pexpect")

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "eval" / "sample" / "articles"
QA = Path(sys.executable).parent / "qa"
STRIKE = "What pay rise did Korvane's Brakemoor workers accept to end their strike?"
FOLLOW_UP = "How long did it last?"
OPENED = "When did the Riverside tram line open?"
PROMPT = "❯"


def _env(home: Path, **more: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QA_", "OPENAI_")) and k not in ("TIKTOKEN_CACHE_DIR", "COLUMNS", "LINES")
    }
    env.update(QA_HOME=str(home), QA_PLUGINS="tests.fakes", TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1", **more)
    return env


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    """A data directory with the twelve sample articles, made once by `qa ingest`."""
    home = tmp_path_factory.mktemp("chat-home")
    subprocess.run([str(QA), "ingest", str(SAMPLE)], env=_env(home), check=True, capture_output=True, timeout=600)
    return home


@pytest.fixture
def home(ingested, tmp_path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(ingested, copy)
    return copy


class Terminal:
    """A `qa chat` in a pseudo-terminal; Enter is a carriage return, as a keyboard sends it."""

    def __init__(self, home: Path, cwd: Path, *args: str, **env: str):
        self.log = io.StringIO()
        # a terminal's Ctrl-C raises SIGINT; when the tests run in a background job, SIGINT is
        # ignored and the child would inherit that, so give it the default a terminal has
        self.child = pexpect.spawn(
            str(QA),
            ["chat", *args],
            env=_env(home, **env),
            cwd=str(cwd),
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            dimensions=(40, 120),
            encoding="utf-8",
            timeout=60,
        )
        self.child.logfile_read = self.log
        self.expect(PROMPT)

    def expect(self, *patterns: str) -> None:
        for pattern in patterns:
            try:
                self.child.expect_exact(pattern)
            except (pexpect.TIMEOUT, pexpect.EOF):
                raise AssertionError(f"{pattern!r} never appeared; the screen said:\n{self.log.getvalue()[-3000:]}")

    def enter(self, line: str, *expected: str, prompt: bool = True) -> None:
        self.child.send(line + "\r")
        self.expect(*expected)
        if prompt:
            self.expect(PROMPT)


def _valid_citations(turn) -> None:
    numbers = {p.number for p in turn.answer.passages}
    assert turn.answer.sentences and not turn.answer.refused
    for s in turn.answer.sentences:
        assert s.supported and s.citations and set(s.citations) <= numbers
        assert any(s.text in turn.answer.passages[n - 1].text for n in s.citations)  # extractive: quoted


def test_chat_in_a_real_terminal(home, tmp_path):
    slow = json.dumps(
        ["Riverside " + "tram " * 200 + "[1]."]
    )  # 40 s of streaming: time to press Ctrl-C, even under load
    term = Terminal(home, tmp_path, "--llm", "extractive", QA_FAKE_REPLIES=slow, QA_FAKE_DELAY="0.2")

    term.enter(STRIKE, "Korvane", "/open N for the passage", "answered in")
    term.enter(FOLLOW_UP, f"↳ {FOLLOW_UP} (Korvane Brakemoor", "23-day strike", "answered in")
    term.enter("/sources", "Passages given for", "cited:")
    term.enter("/open 1", "Korvane strike ends after 23 days", "Sunniva Holt", "characters")
    term.enter("/nonsense", "Unknown command /nonsense", "/summarise N")

    term.enter("/model fake", "Switching to fake")
    term.enter(OPENED, "Riverside tram tram", prompt=False)  # the answer is streaming in
    term.child.send("\x03")  # Ctrl-C stops the answer, not the session
    term.expect("Stopped", PROMPT)
    term.enter("/model extractive", "Switching to extractive")
    term.child.send("When did the Riverside tram line\x1b\r")  # Alt-Enter: a new line, not a question
    term.enter("open?", "21 February 2026", "answered in")

    term.enter("/save chat.md", "to chat.md")
    term.enter("/quit", prompt=False)
    term.child.expect(pexpect.EOF)
    term.child.close()
    assert term.child.exitstatus == 0, term.log.getvalue()[-2000:]

    session = load_last_session(sessions_dir(home, "articles"))
    first, second, stopped, last = session.turns
    assert [first.question, second.question, stopped.question] == [STRIKE, FOLLOW_UP, OPENED]
    for turn in (first, second, last):
        _valid_citations(turn)
    assert second.rewritten_by == "rule" and "Korvane" in second.searched
    assert all("Korvane" in p.title or "Strike" in p.title for p in second.answer.cited)
    assert stopped.stopped and last.question == "When did the Riverside tram line\nopen?"

    transcript = (tmp_path / "chat.md").read_text()
    assert f"## 2. {FOLLOW_UP}" in transcript and f"*Searched:* {second.searched}" in transcript
    assert second.answer.text in transcript and "Stopped before the answer was finished" in transcript
    for p in second.answer.cited:
        assert f"- [{p.number}] *{p.title}*" in transcript

    # the next session: history from the last one (Up), --resume, Ctrl-C at the prompt, Ctrl-D
    term = Terminal(home, tmp_path, "--llm", "extractive", "--resume")
    assert "Resumed the session" in term.log.getvalue()
    term.child.send("\x1b[A")  # Up: the last line typed in the previous session
    term.expect("/quit")
    term.child.send("\x03")  # clears the line
    term.expect(PROMPT)
    term.enter(
        "How many passengers rode it on its first day?",
        "↳ How many passengers rode it on its first day? (Riverside",
        "38,000 passengers",
        "answered in",
    )
    term.child.sendeof()
    term.child.expect(pexpect.EOF)
    term.child.close()
    assert term.child.exitstatus == 0
    assert len(load_last_session(sessions_dir(home, "articles")).turns) == 5  # the resumed session, continued


def test_chat_reads_one_question_per_line_from_a_pipe(home, tmp_path):
    script = (
        "\n".join(
            [
                STRIKE,
                FOLLOW_UP,
                "/open 2",
                "/summarise 1",
                "/brief the Korvane strike",
                "/filter source=Nowhere",
                "/bogus",
                "When did the Riverside \\",
                "tram line open?",
                "/save out.md",
                "/quit",
                "never asked",
            ]
        )
        + "\n"
    )
    run = subprocess.run(
        [str(QA), "chat", "--llm", "extractive"],
        input=script,
        capture_output=True,
        text=True,
        env=_env(home),
        cwd=tmp_path,
        timeout=600,
    )
    assert run.returncode == 1, run.stderr  # one command failed; everything else ran
    assert "\x1b[" not in run.stdout  # plain text
    assert f"## 1. {STRIKE}" in run.stdout and f"## 2. {FOLLOW_UP}" in run.stdout
    assert "*Searched:* How long did it last? (Korvane" in run.stdout and "23-day strike" in run.stdout
    assert "## 3. When did the Riverside tram line open?" in run.stdout and "21 February 2026" in run.stdout
    assert "Unknown command /bogus" in run.stdout and "never asked" not in run.stdout
    assert "error: No article comes from 'Nowhere'" in run.stderr
    assert "characters" in run.stdout  # /open 2
    assert "# Summary: Korvane strike ends after 23 days" in run.stdout  # the article of passage 1
    assert "# Briefing: the Korvane strike" in run.stdout and "## Timeline" in run.stdout
    assert (tmp_path / "out.md").read_text().count("\n## ") == 3
