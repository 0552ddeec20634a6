"""A team on one Chroma server: two users (two QA_HOMEs) and a real `chroma run` on loopback. The
server holds the whole archive; each user's QA_HOME holds a cache of it, brought up to date before
every command: what one ingests the other lists, searches and may remove; a removal is seen by
both; concurrent ingests of different articles both land; a deleted cache is rebuilt; `qa doctor
--check` passes for both after every step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli import app
from tests.conftest import REPO, SAMPLE
from tests.test_store_backends import chroma_server  # noqa: F401  (the session's `chroma run`)

QUESTION = "What pay rise did Korvane's Brakemoor workers accept to end their strike?"


def _story(folder: Path, name: str, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{name}{i}.txt").write_text(
            f"{name.title()} story {i}\nSource: {name.title()} Wire\nDate: 2026-03-{i + 1:02d}\n\n"
            f"The {name} desk filed story number {i} about the {name} harbour. "
            f"Dock workers in {name} town voted on pay offer {i} on Tuesday. "
            f"The {name} council said talks would resume.",
            encoding="utf-8",
        )


class User:
    """One member of the team: a QA_HOME of their own, the shared server and collection."""

    def __init__(self, home: Path, url: str, collection: str):
        self.home = home
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("QA_") or k == "QA_PLUGINS"},
            "QA_HOME": str(home),
            "QA_CHROMA_URL": url,
            "QA_COLLECTION": collection,
            "QA_EMBEDDER": "fake",
            "QA_LLM": "extractive",
        }

    def run(self, *args: object):
        result = CliRunner().invoke(app, [str(a) for a in args], env=self.env)
        assert "Traceback" not in result.output, result.output
        return result

    def json(self, *args: object):
        result = self.run(*args, "--json")
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return json.loads(result.stdout)

    def spawn(self, *args: object) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "qa", *map(str, args)],
            env={**self.env, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def titles(self) -> set[str]:
        return {s["title"] for s in self.json("sources")}

    def healthy(self) -> None:
        data = self.json("doctor", "--check")
        bad = [c for c in data["store"] if not c["ok"]]
        assert not bad, bad


@pytest.fixture
def team(chroma_server, tmp_path):  # noqa: F811
    collection = f"team-{uuid.uuid4().hex[:8]}"
    return User(tmp_path / "alice", chroma_server, collection), User(tmp_path / "bob", chroma_server, collection)


def test_two_users_share_one_archive(team, tmp_path):
    alice, bob = team

    # Alice ingests; Bob lists, counts, searches and answers from the same archive
    report = alice.json("ingest", SAMPLE)
    assert report["counts"]["new"] == 12
    sample = alice.titles()
    assert len(sample) == 12 and bob.titles() == sample
    stats = bob.json("stats")
    assert stats["articles"] == 12 and stats["vectors"] == stats["chunks"] > 12
    answer = bob.json("ask", QUESTION)
    assert not answer["refused"] and any("Brakemoor" in c["text"] for c in answer["citations"]), answer
    alice.healthy()
    bob.healthy()

    # Bob removes one: Alice no longer sees it, and no vector of it is left for anyone
    strike = next(s for s in bob.json("sources") if "strike" in s["title"].lower())
    assert bob.run("remove", strike["id"]).exit_code == 0
    assert strike["title"] not in alice.titles() and strike["title"] not in bob.titles()
    alice.healthy()
    bob.healthy()

    # ... and Alice's re-ingest brings it back, for both
    again = alice.json("ingest", SAMPLE)
    assert again["counts"]["new"] == 1 and again["counts"]["unchanged"] == 11
    assert bob.titles() == sample

    # both ingest different articles at the same time: both end up visible to both
    _story(tmp_path / "north", "north", 6)
    _story(tmp_path / "south", "south", 6)
    runs = [alice.spawn("ingest", tmp_path / "north", "--json"), bob.spawn("ingest", tmp_path / "south", "--json")]
    for proc in runs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert json.loads(out)["counts"]["new"] == 6
    everything = alice.titles()
    assert len(everything) == 24 and bob.titles() == everything
    alice.healthy()
    bob.healthy()

    # Bob's cache deleted: rebuilt from the server, nothing lost
    shutil.rmtree(bob.home / "cache")
    assert bob.titles() == everything
    assert any("Brakemoor" in c["text"] for c in bob.json("ask", QUESTION)["citations"])
    bob.healthy()
    alice.healthy()

    # vectors gone behind qa's back: doctor says so, and a re-ingest restores them instead of
    # trusting "unchanged"
    import chromadb

    from qa.store.vectors import connect

    client = connect(alice.env["QA_CHROMA_URL"], "")
    victim = next(s for s in alice.json("sources") if s["title"] in sample)
    client.get_collection(alice.env["QA_COLLECTION"]).delete(where={"article_id": victim["id"]})
    assert bob.run("doctor", "--check").exit_code == 1
    restored = bob.json("ingest", SAMPLE)
    assert restored["counts"]["updated"] == 1 and restored["counts"]["unchanged"] == 11
    alice.healthy()
    bob.healthy()
    assert isinstance(client, chromadb.api.ClientAPI)

    # `remove --all` counts the shared archive, and empties it for both
    removed = alice.run("remove", "--all", "--yes")
    assert removed.exit_code == 0 and "Removed 24 article(s)." in removed.stdout
    assert bob.json("sources") == [] and bob.json("stats")["vectors"] == 0
    alice.healthy()
    bob.healthy()


def test_a_sync_fetches_only_what_changed(team, tmp_path, fake_embedder):
    from qa.ingest.pipeline import ingest
    from qa.library import open_library
    from qa.settings import load_settings

    alice, bob = team

    def library(user: User):
        settings = load_settings(environ=user.env)
        return open_library(settings, ingesting=True)

    a = library(alice)
    ingest([str(SAMPLE)], library=a)
    b = library(bob)  # its first look fetched the 12
    assert len(b.store.articles()) == 12
    assert b.store.sync().fetched == 0  # nothing changed since
    _story(tmp_path / "one", "east", 1)
    ingest([str(tmp_path / "one")], library=a)
    synced = b.store.sync()
    assert (synced.fetched, synced.dropped, synced.full) == (1, 0, False)
    with a.store.write_lock():
        a.store.remove([next(x.article.id for x in a.store.articles() if x.article.source == "East Wire")])
    synced = b.store.sync()
    assert (synced.fetched, synced.dropped) == (0, 1) and len(b.store.articles()) == 12
    a.close()
    b.close()


def test_an_interrupted_removal_on_the_server_is_finished_by_the_next_writer(team):
    alice, bob = team
    alice.json("ingest", SAMPLE)
    from qa.library import open_store
    from qa.settings import load_settings

    store = open_store(load_settings(environ=bob.env))
    victim = store.articles()[0].article.id
    store.archive.set_state([victim], "removing")  # then the process died
    store.close()
    assert len(alice.json("sources")) == 11  # hidden from everyone at once
    report = alice.json("ingest", SAMPLE)
    assert report["recovered"] == 1 and report["counts"]["new"] == 1
    alice.healthy()
    bob.healthy()


def test_doctor_names_the_server_and_fails_when_it_is_down(team, tmp_path):
    alice, _ = team
    ok = alice.json("doctor")
    store = next(c for c in ok["stack"] if c["component"] == "vector store (chromadb)")
    assert store["ok"] and alice.env["QA_CHROMA_URL"] in store["detail"] and "Chroma" in store["detail"]
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    alice.env["QA_CHROMA_URL"] = f"http://editor:s3cret@127.0.0.1:{port}"
    down = alice.run("doctor", "--json")
    assert down.exit_code == 1
    detail = next(c for c in json.loads(down.stdout)["stack"] if c["component"] == "vector store (chromadb)")
    assert not detail["ok"] and "s3cret" not in down.output and f"editor:***@127.0.0.1:{port}" in detail["detail"]
    assert alice.run("doctor", "--check", "--json").exit_code == 1
