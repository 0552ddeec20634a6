"""Answer latency of `qa ask` as a user meets it, on RealTimeQA dev questions over the whole pool.

    .venv/bin/python bench/answer.py [--limit 20] [--follow-ups 10] [--before DIR] [--peer] [--llm local]

Everything is measured in one run, on the same questions, on the same machine:
- cold: the background engine stopped, then one `qa ask --json` (engine start and model load included)
  on a question outside the measured ones (the engine's prompt cache would serve it again);
- warm: each question as a whole `qa ask --json` command in a child process (interpreter start,
  imports, retrieval, generation, grounding): its wall time, when the passages were ready to show
  (`sources_ms`, from the process's start), its prompt tokens and the context tokens it sent;
- floor: the bare engine reading a fresh 1,000-token prompt (max_tokens 1) over its HTTP API, taken
  between the questions, so every command is also a ratio to the floor of the same minutes (the
  machine's load moves both);
- follow-ups: one chat session (`qa.chat.turns.ask_turn` on the warm engine): a question, then a
  follow-up about the same articles; the follow-up turn's time (rewrite, retrieval, answer, checks);
- before (`--before DIR`, a checkout of the code to compare): the same questions through that code's
  `qa ask --json` in a home of its own, which it ingests itself;
- peer (`--peer`): the LlamaIndex query engine (bench/peer_query.py, its own venv, network cut) on the
  same questions, its LLM pointed at the same warm engine, three calls per question as in qa's eval;
  its answer call alone is what compares with one `qa ask`.
Also the peak RSS of one `qa ask` process and of the engine, and of one `qa ask` with
QA_ENGINE=in-process (the command loads the model itself). Figures go to bench/results/answer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FOLLOW_UPS = ("When did that happen?", "Who else was involved?", "What happened next?")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def questions(data: Path, limit: int) -> list[tuple[str, str]]:
    """(id, question) of the first `limit` dev questions, in file order."""
    rows = [json.loads(line) for f in sorted(data.glob("*_qa.jsonl")) for line in f.read_text().splitlines() if line]
    return [(r["question_id"], r["question_sentence"]) for r in rows][:limit]


def qa_command(code: Path, home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "qa", "--home", str(home), "--collection", "rtqa", *args]


def run_qa(code: Path, home: Path, *args: str, env: dict | None = None) -> tuple[float, str, int]:
    """(wall seconds, stdout, peak RSS MiB of this one process: ru_maxrss from wait4) of one qa
    command run from `code`."""
    full = {**os.environ, "PYTHONPATH": str(code), **(env or {})}
    with tempfile.TemporaryFile() as errors:
        t0 = time.perf_counter()
        child = subprocess.Popen(qa_command(code, home, *args), stdout=subprocess.PIPE, stderr=errors,
                                 cwd=code, env=full)  # fmt: skip
        assert child.stdout is not None
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-2000:]
            sys.exit(f"{tail}\nqa {' '.join(args[:2])} failed (exit {child.returncode})")
    return wall, out.decode(), int(usage.ru_maxrss / 1024)


def ensure_pool(code: Path, home: Path, data: Path) -> None:
    files = [str(p) for p in sorted(data.glob("*_gcs.jsonl"))]
    stats = run_qa(code, home, "stats", "--json")[1]
    if json.loads(stats).get("chunks", 0) == 0:
        print(f"ingesting the pool into {home} with {code}", flush=True)
        run_qa(code, home, "ingest", *files)


def engine_state(home: Path):
    from qa.llm.engine import engines

    running = [state for state, alive in engines(home / "engine") if alive]
    return running[0] if running else None


def floor_seconds(state, text: str, rng: random.Random, tokens: int = 1000) -> tuple[float, int]:
    """The bare engine reading `tokens` fresh prompt tokens: a random slice of real article text."""
    import httpx

    headers = {"Authorization": f"Bearer {state.key}"}
    with httpx.Client(base_url=state.url, headers=headers, timeout=600, trust_env=False) as client:
        start = rng.randrange(0, max(1, len(text) - 12000))
        ids = client.post("/tokenize", json={"content": text[start : start + 12000]}).json()["tokens"][:tokens]
        piece = client.post("/detokenize", json={"tokens": ids}).json()["content"]
        t0 = time.perf_counter()
        reply = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": piece}],
                                                          "max_tokens": 1, "temperature": 0})  # fmt: skip
        wall = time.perf_counter() - t0
        reply.raise_for_status()
        return wall, int(reply.json()["usage"]["prompt_tokens"])


def follow_up_turns(home: Path, llm_spec: str, items: list[str]) -> list[dict]:
    """A chat session: each question, then a follow-up on the same articles; the follow-up's seconds."""
    from qa.chat.session import new_session
    from qa.chat.turns import ask_turn
    from qa.library import ask_options, make_llm, open_library
    from qa.settings import load_settings, prepare_environment

    settings = load_settings({"home": str(home), "collection": "rtqa", "llm": llm_spec})
    prepare_environment(settings)
    library, llm, options = open_library(settings), make_llm(settings), ask_options(settings)
    rows = []
    for i, question in enumerate(items):
        session = new_session("rtqa")
        first = ask_turn(session, question, library=library, llm=llm, options=options)
        follow = FOLLOW_UPS[i % len(FOLLOW_UPS)]
        turn = ask_turn(session, follow, library=library, llm=llm, options=options)
        t = turn.answer.timings if turn.answer else None
        rows.append({"question": question, "follow_up": follow, "searched": turn.searched,
                     "first_s": round(first.seconds, 2), "follow_up_s": round(turn.seconds, 2),
                     "rewrite_ms": round(turn.rewrite_ms, 1), "prompt_tokens": t.prompt_tokens if t else 0,
                     "refused": bool(turn.answer and turn.answer.refused)})  # fmt: skip
        print(f"follow-up {i + 1}/{len(items)}: {turn.seconds:.1f} s ({t.prompt_tokens if t else 0} prompt tokens)",
              flush=True)  # fmt: skip
    return rows


def summary(values: list[float]) -> dict:
    return {"p50": round(percentile(values, 0.5), 2), "p95": round(percentile(values, 0.95), 2),
            "mean": round(statistics.mean(values), 2) if values else None, "n": len(values)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "eval" / "realtimeqa-dev"))
    parser.add_argument("--home", default="/tmp/qa-bench-answer")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--follow-ups", type=int, default=20)
    parser.add_argument("--floor-every", type=int, default=4, help="measure the floor before every Nth question")
    parser.add_argument("--llm", default="local")
    parser.add_argument("--before", default="", help="a checkout of the code to compare (its qa ask, same questions)")
    parser.add_argument("--before-home", default="/tmp/qa-bench-answer-before")
    parser.add_argument("--peer", action="store_true", help="also the LlamaIndex query-engine peer on the same engine")
    args = parser.parse_args()
    data, home = Path(args.data), Path(args.home)
    listed = questions(data, args.limit + 1)
    picked, spare = listed[: args.limit], listed[-1][1]  # the cold start asks a question not measured warm
    items = [q for _, q in picked]
    ensure_pool(REPO, home, data)
    env = {"QA_LLM": args.llm}
    rng = random.Random(0)
    lines = [line for f in sorted(data.glob("*_gcs.jsonl")) for line in f.read_text().splitlines() if line]
    records = [json.loads(line) for line in lines]
    pool_text = " ".join(r["search_result"][0]["text"] for r in records if r["search_result"])

    # cold start: no engine, the first command starts it
    run_qa(REPO, home, "engine", "stop", env=env)
    cold_wall, cold_out, _ = run_qa(REPO, home, "ask", "--json", spare, env=env)
    cold = {"wall_s": round(cold_wall, 2), "sources_ms": json.loads(cold_out)["timings"].get("sources_ms")}
    print(f"cold start (engine start and model load included): {cold_wall:.1f} s", flush=True)
    state = engine_state(home)

    rows, floors = [], []
    for i, question in enumerate(items):
        if i % args.floor_every == 0 and state is not None:
            floors.append(floor_seconds(state, pool_text, rng))
        wall, out, peak = run_qa(REPO, home, "ask", "--json", question, env=env)
        answer = json.loads(out)
        t = answer["timings"]
        rows.append({"question": question, "wall_s": round(wall, 2), "sources_ms": t.get("sources_ms"),
                     "prompt_tokens": t.get("prompt_tokens"), "context_tokens": t.get("context_tokens"),
                     "first_token_ms": t.get("first_token_ms"), "checks_ms": t.get("checks_ms"),
                     "refused": answer["refused"], "peak_rss_mib": peak})  # fmt: skip
        print(f"{i + 1}/{len(items)} {wall:.1f} s  sources {t.get('sources_ms', 0) / 1000:.2f} s  "
              f"prompt {t.get('prompt_tokens')} / context {t.get('context_tokens')}", flush=True)  # fmt: skip
    floor_s = [f for f, _ in floors]
    result: dict = {"llm": args.llm, "questions": len(items), "cores": os.cpu_count(), "cold": cold,
                    "warm_wall_s": summary([r["wall_s"] for r in rows]),
                    "sources_s": summary([r["sources_ms"] / 1000 for r in rows if r["sources_ms"] is not None]),
                    "floor_1000_tokens_s": summary(floor_s), "floor_prompt_tokens": [n for _, n in floors],
                    "prompt_per_context_token": round(sum(r["prompt_tokens"] for r in rows)
                                                      / max(1, sum(r["context_tokens"] or 0 for r in rows)), 3),
                    "rows": rows}  # fmt: skip
    result["ratio_to_floor_p50"] = round(result["warm_wall_s"]["p50"] / result["floor_1000_tokens_s"]["p50"], 3)
    save(result)  # after each phase: a later one that fails keeps what was measured
    if args.follow_ups:
        turns = follow_up_turns(home, args.llm, items[: args.follow_ups])
        result["follow_up_s"] = summary([t["follow_up_s"] for t in turns])
        result["follow_up_rows"] = turns
        save(result)
    if state is not None:
        try:
            status = Path(f"/proc/{state.pid}/status").read_text()
            result["engine_peak_rss_mib"] = next(int(x.split()[1]) // 1024 for x in status.splitlines()
                                                 if x.startswith("VmHWM:"))  # fmt: skip
        except (OSError, StopIteration):
            pass
    if items:  # one command that loads the model itself, for its memory
        _, _, alone = run_qa(REPO, home, "ask", "--json", items[0], env={**env, "QA_ENGINE": "in-process"})
        result["in_process_peak_rss_mib"] = alone
    if args.peer and state is not None:
        from peer_env import run_query_peer  # bench/ is this script's folder

        peer = run_query_peer(
            base_url=state.url + "/v1", api_key=state.key, data=data, questions=[i for i, _ in picked]
        )
        result["peer"] = {k: v for k, v in peer.items() if k != "rows"} | {"rows": peer.get("rows", [])}
        save(result)
    if args.before:
        code = Path(args.before).resolve()
        ensure_pool(code, Path(args.before_home), data)
        before = []
        for i, question in enumerate(items):
            wall, out, _ = run_qa(code, Path(args.before_home), "ask", "--json", question, env={"QA_LLM": args.llm})
            before.append({"question": question, "wall_s": round(wall, 2),
                           "prompt_tokens": json.loads(out)["timings"].get("prompt_tokens")})  # fmt: skip
            print(f"before {i + 1}/{len(items)}: {wall:.1f} s", flush=True)
        result["before"] = {"code": str(code), "wall_s": summary([b["wall_s"] for b in before]), "rows": before}
    save(result)
    report(result)


def save(result: dict) -> None:
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "answer.json").write_text(json.dumps(result, indent=2) + "\n")


def report(r: dict) -> None:
    print(f"\n{r['questions']} RealTimeQA dev questions, llm {r['llm']}, {r['cores']} cores, load {r['load_average']}")
    print(f"cold start: {r['cold']['wall_s']} s")
    w, s, f = r["warm_wall_s"], r["sources_s"], r["floor_1000_tokens_s"]
    print(
        f"qa ask, engine warm: p50 {w['p50']} s, p95 {w['p95']} s; sources on screen p50 {s['p50']} s, p95 {s['p95']} s"
    )
    print(f"bare engine reading 1,000 prompt tokens: p50 {f['p50']} s -> qa ask / floor {r['ratio_to_floor_p50']}")
    print(f"prompt tokens per context token: {r['prompt_per_context_token']}")
    if "follow_up_s" in r:
        print(f"chat follow-up: p50 {r['follow_up_s']['p50']} s, p95 {r['follow_up_s']['p95']} s")
    if "before" in r:
        print(f"before ({r['before']['code']}): qa ask p50 {r['before']['wall_s']['p50']} s")
    if "in_process_peak_rss_mib" in r:
        print(f"peak RSS: qa ask {max(x['peak_rss_mib'] for x in r['rows'])} MiB with the engine "
              f"({r.get('engine_peak_rss_mib')} MiB), {r['in_process_peak_rss_mib']} MiB in-process")  # fmt: skip
    if "peer" in r:
        p = r["peer"]
        print(f"peer {p.get('peer')}: answer call p50 {p.get('answer_p50_s')} s, p95 {p.get('answer_p95_s')} s; "
              f"three calls per question p50 {p.get('p50_s')} s; MC {p.get('mc')}, EM {p.get('em')}")  # fmt: skip


if __name__ == "__main__":
    main()
