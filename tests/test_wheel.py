"""The wheel a user installs, not the editable checkout: built from this tree, installed with its
declared dependencies into a new virtualenv (no dev extras, no `[local]`), and run from outside the
checkout on the sample articles, HTML included.

pip fetches the dependencies as this machine's pip is set up to (its cache makes it quick); set
QA_WHEELHOUSE=DIR to install from a folder of wheels with no index at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "eval" / "sample" / "articles"


def run(*args: str | Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)


@pytest.fixture
def tmp_path():
    """A folder of this test's own: pytest's numbered temporary folders are pruned by other pytest
    runs on the machine, and this test takes a minute or more."""
    with tempfile.TemporaryDirectory(prefix="qa-wheel-test-") as folder:
        yield Path(folder)


@pytest.mark.slow
def test_the_installed_wheel_ingests_html_and_answers(tmp_path):
    # a user's shell: nothing of the test suite's (no PYTHONPATH to this checkout, where pip would find
    # qa installed already, no fakes)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QA_", "OPENAI_", "PYTHONPATH", "TIKTOKEN"))}
    env["QA_HOME"] = str(tmp_path / "home")
    dist = tmp_path / "dist"
    source = ["--no-index", "--find-links", os.environ["QA_WHEELHOUSE"]] if os.environ.get("QA_WHEELHOUSE") else []
    built = run(sys.executable, "-m", "pip", "wheel", REPO, "--no-deps", *source, "-w", dist, env=env, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("qa-*.whl")
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    installed = run(python, "-m", "pip", "install", "--quiet", *source, wheel, env=env, timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]

    qa = tmp_path / "venv" / "bin" / "qa"
    where = tmp_path / "elsewhere"
    where.mkdir()
    probe = run(python, "-c", "import qa; print(qa.__file__)", cwd=where, env=env, timeout=60)
    assert probe.stdout.startswith(str(tmp_path / "venv")), probe  # the wheel's qa, not the checkout's

    assert run(qa, "--version", cwd=where, env=env, timeout=60).stdout.startswith("qa ")
    ingest = run(qa, "ingest", SAMPLE, "--json", cwd=where, env=env, timeout=600)
    assert ingest.returncode == 0, ingest.stderr
    report = json.loads(ingest.stdout)
    assert report["counts"] == {"new": 12, "updated": 0, "unchanged": 0, "duplicate": 0, "failed": 0}, report
    html = [i for i in report["items"] if i["origin"].endswith(".html")]
    assert len(html) == 3 and all(i["status"] == "new" for i in html)

    answer = run(
        qa, "ask", "--llm", "extractive", "--json", "What pay rise did the Brakemoor workers accept?", cwd=where,
        env=env, timeout=300,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    answered = json.loads(answer.stdout)
    assert not answered["refused"] and "Brakemoor" in answered["answer"] and answered["citations"]

    # without the `[local]` extra, doctor says how to add it to this very wheel, and fails
    doctor = run(qa, "doctor", "--json", cwd=where, env=env, timeout=300)
    assert doctor.returncode == 1
    engine = next(c for c in json.loads(doctor.stdout)["stack"] if c["component"] == "local engine (xllamacpp)")
    assert not engine["ok"] and engine["detail"].endswith(f"{python} -m pip install '{wheel}[local]'"), engine
