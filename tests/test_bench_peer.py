"""The LlamaIndex query peer's parts that run in qa's venv: its follow-ups are qa's, it scores with qa's
metrics, and the driver reaches a loopback engine from a cut network through its relay, key in the
environment. (The peer itself needs bench/.peer-venv; bench/answer_peer.py runs it end to end.)"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from qa.eval.gold import EvalItem, EvalOptions
from qa.eval.respond import respond
from qa.prompts import REFUSAL
from qa.records import Passage
from tests.fakes import FakeEmbedder, FakeLLM

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import peer_env  # noqa: E402
import peer_query  # noqa: E402

ITEM = EvalItem(
    "20230106_0",
    "Damar Hamlin is a valued member of which team?",
    ("Buffalo Bills",),
    ("Pittsburgh Steelers", "Cincinnati Bengals", "Buffalo Bills", "Cleveland Browns"),
    2,
)


def test_the_peer_asks_the_follow_ups_qa_eval_asks():
    said = "Damar Hamlin plays for the Buffalo Bills [1]."
    text = "Damar Hamlin plays for the Buffalo Bills. He collapsed on Monday night."
    passages = [Passage(1, "a1", text, 0, len(text), title="Hamlin")]
    fake = FakeLLM(replies=[said, "Buffalo Bills", "C"])
    respond(ITEM, passages, llm=fake, embedder=FakeEmbedder(), options=EvalOptions())
    _, short_call, choose_call = fake.calls
    assert short_call[-1] == {"role": "user", "content": peer_query.short_prompt(ITEM)}
    assert choose_call[-1] == {"role": "user", "content": peer_query.choose_prompt(ITEM)}


def test_peer_replies_are_scored_with_qa_metrics():
    got = peer_query.score(ITEM, short_reply="Buffalo Bills.", choice_reply="C", context="... the Buffalo Bills ...")
    assert got == {"short": "Buffalo Bills", "choice": 2, "em": 1.0, "answer_recall": 1.0, "mc": 1.0}
    got = peer_query.score(ITEM, short_reply=REFUSAL, choice_reply="I cannot tell.", context="the Bengals")
    assert got == {"short": "", "choice": None, "em": 0.0, "answer_recall": 0.0, "mc": 0.0}
    got = peer_query.score(ITEM, short_reply="The Bills", choice_reply="B. Cincinnati Bengals", context="")
    assert got["em"] == 0.0 and got["choice"] == 1 and got["mc"] == 0.0


def test_aggregates_are_percentiles_and_means_over_the_rows():
    cases = [(1, 1.0, 2, 100), (2, 0.0, None, 200), (3, 1.0, 2, 300), (4, 0.0, 0, None), (100, 1.0, 2, 400)]
    rows = [
        {"total_s": s, "answer_s": s / 2, "mc": mc, "em": 0.0, "choice": c, "gold_index": 2, "prompt_tokens": [p, 9]}
        for s, mc, c, p in cases
    ]
    got = peer_query.aggregate(rows)
    assert got["questions"] == 5 and got["p50_s"] == 3 and got["answer_p50_s"] == 1.5
    assert got["p95_s"] == pytest.approx(80.8)  # numpy's linear interpolation, as qa.eval.metrics.percentile
    assert got["mc"] == 0.6 and got["em"] == 0.0 and got["choice_unparsed"] == 1
    assert got["answer_prompt_tokens_mean"] == 250.0 and got["answer_recall"] is None


def test_questions_are_picked_by_id_in_the_order_given(tmp_path):
    items = [EvalItem(f"q{i}", f"Question {i}?") for i in range(5)]
    (tmp_path / "ids.json").write_text('["q3", "q1", "q4"]')
    (tmp_path / "ids.txt").write_text("q3\nq1\n\nq4\n")
    for name in ("ids.json", "ids.txt"):
        ids = peer_query.read_ids(tmp_path / name)
        assert [i.id for i in peer_query.select(items, ids, 0)] == ["q3", "q1", "q4"]
    assert [i.id for i in peer_query.select(items, ["q3", "q1", "q4"], 2)] == ["q3", "q1"]
    assert [i.id for i in peer_query.select(items, None, 2)] == ["q0", "q1"]
    with pytest.raises(SystemExit, match="no such question id in the data: q9"):
        peer_query.select(items, ["q1", "q9"], 0)


class _Engine(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.dumps({"path": self.path, "authorization": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# Stands in for bench/peer_query.py: tries the engine's port directly (the namespace has its own
# loopback, so it must fail), then posts to the engine through the relay socket it was given.
FAKE_PEER = textwrap.dedent(
    """
    import argparse, http.client, json, os, socket, sys
    from urllib.parse import urlsplit
    p = argparse.ArgumentParser()
    for name in ("--data", "--base-url", "--limit", "--threads", "--questions", "--engine-socket"):
        p.add_argument(name)
    args = p.parse_args()
    url = urlsplit(args.base_url)
    try:
        socket.create_connection((url.hostname, url.port), timeout=5).close()
        direct = "reached"
    except OSError:
        direct = "refused"

    class Unix(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(args.engine_socket)

    conn = Unix("127.0.0.1")
    key = os.environ["PEER_API_KEY"]
    conn.request("POST", "/v1/chat/completions", body="{}", headers={"Authorization": "Bearer " + key})
    reply = json.loads(conn.getresponse().read())
    print("some log line")
    print(json.dumps({"direct": direct, "engine": reply, "argv": sys.argv,
                      "questions": json.load(open(args.questions)), "limit": args.limit}))
    """
)


def _can_cut_network() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run([*peer_env.OFFLINE, "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_cut_network(), reason="needs `unshare -rn` (user and network namespaces)")
def test_the_driver_reaches_a_loopback_engine_from_a_cut_network_with_the_key_kept_off_the_command_line(
    tmp_path, monkeypatch
):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Engine)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script = tmp_path / "fake_peer.py"
    script.write_text(FAKE_PEER)
    monkeypatch.setattr(peer_env, "QUERY_SCRIPT", script)
    monkeypatch.setattr(peer_env, "ensure_peer_venv", lambda: Path(sys.executable))
    try:
        figures = peer_env.run_query_peer(
            base_url=f"http://127.0.0.1:{server.server_port}/v1",
            api_key="s3cret-key",
            limit=2,
            questions=["20230106_3", "20230106_1"],
        )
    finally:
        server.shutdown()
        server.server_close()
    assert figures["direct"] == "refused" and figures["network"].startswith("cut")
    assert figures["engine"] == {"path": "/v1/chat/completions", "authorization": "Bearer s3cret-key"}
    assert not any("s3cret" in arg for arg in figures["argv"])
    assert figures["questions"] == ["20230106_3", "20230106_1"] and figures["limit"] == "2"
