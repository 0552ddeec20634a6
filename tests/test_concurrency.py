"""Two ingests at once, and reading while another process writes: a lock, a message, no duplicates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

QA = [sys.executable, "-m", "qa"]


def _articles(folder: Path, n: int, prefix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{prefix}{i:03d}.txt").write_text(
            f"Story {prefix} {i}\nSource: Wire {i % 3}\nDate: 2026-01-{i % 28 + 1:02d}\n\n"
            + " ".join(f"Sentence {j} of story {prefix} {i} reports event {i * 7 + j}." for j in range(30))
        )


@pytest.mark.slow
def test_two_ingests_at_once_wait_for_each_other_and_agree(home, tmp_path):
    _articles(tmp_path / "a", 25, "a")
    _articles(tmp_path / "b", 25, "b")
    env = {**os.environ, "QA_HOME": str(home), "QA_EMBEDDER": "fake"}
    # both ingest the shared folder a, and each its own folder
    first = subprocess.Popen(
        QA + ["ingest", str(tmp_path / "a"), str(tmp_path / "b"), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    second = subprocess.Popen(
        QA + ["ingest", str(tmp_path / "b"), str(tmp_path / "a"), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out1, err1 = first.communicate(timeout=600)
    out2, err2 = second.communicate(timeout=600)
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    counts = [json.loads(out1)["counts"], json.loads(out2)["counts"]]
    assert sum(c["new"] for c in counts) == 50  # every article stored exactly once
    assert sum(c["unchanged"] for c in counts) == 50
    check = subprocess.run(QA + ["doctor", "--check", "--json"], env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    store = json.loads(check.stdout)["store"]
    assert store[0]["detail"].startswith("50 articles")


def test_a_writer_waiting_for_the_lock_is_told_so(home, fake_embedder, make_store):
    import fcntl
    import threading

    store = make_store(fake_embedder)
    messages: list[str] = []
    told, done = threading.Event(), threading.Event()

    def on_wait(message: str) -> None:
        messages.append(message)
        told.set()

    def writer():
        with store.write_lock(on_wait=on_wait):
            done.set()

    with open(home / f"{store.name}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        thread = threading.Thread(target=writer)
        thread.start()
        assert told.wait(30), "the waiting writer was never told"
        assert not done.is_set() and "waiting" in messages[0]
        fcntl.flock(held, fcntl.LOCK_UN)
    thread.join(timeout=30)
    assert done.is_set()
