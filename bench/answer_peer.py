"""The LlamaIndex query-engine peer alone, on qa's own local engine or on any OpenAI-compatible server.

    .venv/bin/python bench/answer_peer.py [--llm local:smollm2] [--home DIR] [--limit 3] [--questions FILE]
    .venv/bin/python bench/answer_peer.py --base-url http://127.0.0.1:PORT [--api-key KEY] ...

Loads the model the way `qa` does (`make_llm`: the in-process xllamacpp engine on a random loopback
port with a random key; `--llm local` is the Qwen 1.5B default), then runs bench/peer_query.py
through `peer_env.run_query_peer` (its own venv, network cut, the engine reached through a relay
socket) and prints its aggregates; all figures go to bench/results/answer_peer.json. The comparison
with qa in the same run belongs to bench/answer.py, which calls the same `run_query_peer`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from peer_env import API_KEY_VARIABLE, DEFAULT_DATA, run_query_peer  # noqa: E402  (bench/: this script's folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm", default="local:smollm2", help="qa's model to serve (local, local:smollm2)")
    parser.add_argument("--home", help="QA_HOME whose models/ holds (or receives) the assembled model")
    parser.add_argument("--base-url", help="use this OpenAI-compatible engine instead of loading one")
    parser.add_argument("--api-key", default=os.environ.get(API_KEY_VARIABLE, ""), help="its key")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--limit", type=int, default=3, help="first N questions (0 = all)")
    parser.add_argument("--questions", help="file of question ids (JSON list or one per line)")
    parser.add_argument("--threads", type=int, default=0, help="the peer's embedder threads (0 = all cores)")
    parser.add_argument("--peer-network", action="store_true", help="do not cut the peer's network")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "answer_peer.json"))
    args = parser.parse_args()

    engine = None
    if args.base_url:
        base_url, api_key, label = args.base_url, args.api_key, args.base_url
    else:
        from qa.library import make_llm
        from qa.settings import load_settings, prepare_environment

        settings = load_settings({"llm": args.llm, **({"home": args.home} if args.home else {})})
        prepare_environment(settings)
        llm = make_llm(settings)
        engine = getattr(llm, "engine", None)  # kept referenced: the engine lives as long as it does
        if engine is None:
            sys.exit(f"--llm {args.llm} has no local engine to point the peer at; pass --base-url")
        base_url, api_key, label = engine.base_url, engine.api_key, llm.name
    print(f"engine: {label} at {base_url}", file=sys.stderr, flush=True)

    ids = None
    if args.questions:
        text = Path(args.questions).read_text()
        ids = json.loads(text) if text.lstrip().startswith("[") else text.split()
    figures = run_query_peer(
        base_url=base_url,
        api_key=api_key,
        data=Path(args.data),
        limit=args.limit,
        questions=ids,
        threads=args.threads,
        network=args.peer_network,
    )
    figures["engine"]["label"] = label
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    keys = ("questions", "p50_s", "p95_s", "answer_p50_s", "answer_p95_s", "mc", "em", "answer_recall")
    print(f"{figures['peer']} on {label} ({figures['network']}):")
    for key in (*keys, "choice_unparsed", "answer_prompt_tokens_mean"):
        print(f"  {key:<26} {figures.get(key)}")
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")


if __name__ == "__main__":
    main()
