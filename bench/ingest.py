"""Ingest throughput on the RealTimeQA dev articles, against the bare embedder and a LlamaIndex peer.

    .venv/bin/python bench/ingest.py [--data ../shared/eval/realtimeqa-dev] [--threads N] [--limit N]
                                     [--no-peer] [--no-peer-floor] [--peer-network]

Runs the real ingest (MiniLM, a real Chroma store, BM25) into a fresh temporary QA_HOME,
then embeds exactly the chunk texts the ingest embedded, in the same calls, with the bare
embedder in the same process. total / embedder is the overhead of everything that is not
the model (target <= 1.25). Because other work can slow one half and not the other, the
script also prints the ratio against the embed time measured inside the ingest, and in CPU
seconds. Then ingests the same files again (nothing should be added).

Then the LlamaIndex peer (bench/peer_llamaindex.py) ingests the same articles in a child
process: SentenceSplitter (300 / 45 cl100k tokens), the same MiniLM embedder wrapped as a
LlamaIndex BaseEmbedding, IngestionPipeline into a ChromaVectorStore on a PersistentClient;
it also re-embeds its own chunks with the bare embedder, giving its own floor. The peer lives
in its own virtual environment, bench/.peer-venv, which this script creates and fills with
pinned versions (PEER_PACKAGES, plus qa itself in editable mode) on first use; the install is
the only network access. The peer runs with the network cut (`unshare -rn`) unless
--peer-network is given, which shows that it downloads nothing at run time.

Peak memory: the peak RSS (ru_maxrss) of this process right after qa's ingest, and of the
peer's process right after its ingest; both include the model and the same warm-up, so the
RSS just before the ingest is reported too.

--limit N ingests only the first N articles (files sorted, records in file order), in both.
Figures go to bench/results/ingest.json. The machine is shared: trust the ratios more than
the absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from peer_env import ensure_peer_venv, peer_requirements, run_peer_script  # noqa: E402  (bench/: this script's folder)
from rss import peak_rss_mib, rss_mib  # noqa: E402

from qa.settings import load_settings, prepare_environment  # noqa: E402

PEER_SCRIPT = REPO / "bench" / "peer_llamaindex.py"


def run_peer(python: Path, files: list[str], *, limit: int, threads: int, floor: bool, network: bool) -> dict:
    command = [str(python), str(PEER_SCRIPT), *files, "--limit", str(limit), "--threads", str(threads)]
    if not floor:
        command.append("--no-floor")
    return run_peer_script(command, network=network)


class RecordingEmbedder:
    """Passes through to the real embedder and remembers every batch of texts it was given."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.embed(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data",
        default=str(REPO.parent / "shared" / "eval" / "realtimeqa-dev"),
        help="folder holding the RealTimeQA *_gcs.jsonl files",
    )
    parser.add_argument("--threads", type=int, default=0, help="embedder threads (0 = all cores)")
    parser.add_argument("--limit", type=int, default=0, help="ingest only the first N articles (0 = all)")
    parser.add_argument("--no-peer", action="store_true", help="skip the LlamaIndex peer")
    parser.add_argument(
        "--no-peer-floor", action="store_true", help="skip the peer's bare-embedder pass on its own chunks"
    )
    parser.add_argument(
        "--peer-network", action="store_true", help="let the peer use the network (default: cut with unshare -rn)"
    )
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "ingest.json"))
    args = parser.parse_args()

    files = sorted(str(p) for p in Path(args.data).glob("*_gcs.jsonl"))
    if not files:
        sys.exit(f"no *_gcs.jsonl files in {args.data}")
    peer_python = None if args.no_peer else ensure_peer_venv()  # before any timing: pip is busy work
    load_start = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        settings = load_settings({"home": tmp, "threads": args.threads})
        prepare_environment(settings)
        from qa.ingest.loaders import Loaded, load_file
        from qa.ingest.pipeline import Source, ingest
        from qa.library import make_embedder, open_library
        from qa.tokens import count_tokens

        inputs: list = files
        if args.limit:
            subset = [a for f in files for a in load_file(Path(f)).articles][: args.limit]
            inputs = [Source(f"first {args.limit} articles", lambda: Loaded(list(subset), []))]

        embedder = make_embedder(settings)
        # warm-up: the VM maps memory lazily and tiktoken loads its BPE file on first use
        warm = [a.text for f in files for a in load_file(Path(f)).articles][:64]
        count_tokens("warm up")
        embedder.embed(warm)

        recorder = RecordingEmbedder(embedder)
        library = open_library(settings, embedder=recorder, ingesting=True)
        store = library.store
        rss_before = rss_mib()
        t0, c0 = time.perf_counter(), time.process_time()
        report = ingest(
            inputs,
            library=library,
            chunk_tokens=settings.chunk_tokens,
            overlap=settings.chunk_overlap,
        )
        total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
        peak = peak_rss_mib()
        chunks_in_store = store.chunk_count()
        store.close()

        texts = [t for call in recorder.calls for t in call]
        t0, c0 = time.perf_counter(), time.process_time()
        for call in recorder.calls:
            embedder.embed(call)
        bare, bare_cpu = time.perf_counter() - t0, time.process_time() - c0

        library = open_library(settings, embedder=embedder, ingesting=True)
        store = library.store
        t0 = time.perf_counter()
        again = ingest(
            inputs,
            library=library,
            chunk_tokens=settings.chunk_tokens,
            overlap=settings.chunk_overlap,
        )
        reingest = time.perf_counter() - t0
        store.close()

    peer = None
    if peer_python is not None:
        print("running the LlamaIndex peer ...", flush=True)
        peer = run_peer(
            peer_python,
            files,
            limit=args.limit,
            threads=args.threads,
            floor=not args.no_peer_floor,
            network=args.peer_network,
        )
        peer["packages"] = peer_requirements()
        p_total = peer["total_s"]
        peer["articles_per_s"] = round(peer["articles"] / p_total, 2)
        peer["chunks_per_s"] = round(peer["chunks"] / p_total, 2)
        peer["ratio_total_to_embed_in_ingest"] = round(p_total / peer["embed_in_ingest_s"], 3)
        peer["non_embed_s"] = round(p_total - peer["embed_in_ingest_s"], 3)
        if peer.get("embedder_s"):
            peer["ratio_total_to_embedder"] = round(p_total / peer["embedder_s"], 3)
            peer["ratio_cpu"] = round(peer["total_cpu_s"] / peer["embedder_cpu_s"], 3)
    load_end = os.getloadavg()

    items = len(report.items)
    figures = {
        "data": Path(args.data).name,
        "files": len(files),
        "articles": items,
        "statuses": {s: report.count(s) for s in ("new", "updated", "unchanged", "duplicate", "failed")},
        "chunks": len(texts),
        "chunks_in_store": chunks_in_store,
        "embed_calls": len(recorder.calls),
        "total_s": round(total, 3),
        "articles_per_s": round(items / total, 2),
        "chunks_per_s": round(len(texts) / total, 2),
        "embed_in_ingest_s": round(report.embed_seconds, 3),
        "embedder_s": round(bare, 3),
        "ratio_total_to_embedder": round(total / bare, 3),
        # the same ratio from the embed time measured inside the ingest itself: both halves ran
        # under the same load, so on a shared machine this is the steadier figure
        "ratio_total_to_embed_in_ingest": round(total / report.embed_seconds, 3) if report.embed_seconds else None,
        "non_embed_s": round(total - report.embed_seconds, 3),
        "total_cpu_s": round(total_cpu, 3),
        "embedder_cpu_s": round(bare_cpu, 3),
        "ratio_cpu": round(total_cpu / bare_cpu, 3),
        "reingest_s": round(reingest, 3),
        "reingest_chunks_added": again.chunks_added,
        "reingest_fraction": round(reingest / total, 4),
        "rss_before_ingest_mib": round(rss_before, 1),
        "peak_rss_mib": round(peak, 1),
        "peer_llamaindex": peer,
        "qa_to_peer_time_ratio": round(total / peer["total_s"], 3) if peer else None,
        # CPU seconds: steadier than wall time when the load changes between the two runs
        "qa_to_peer_cpu_ratio": round(total_cpu / peer["total_cpu_s"], 3) if peer else None,
        "limit": args.limit,
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in load_end],
        "threads": args.threads,
        "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    rows = [
        ("articles", items),
        ("texts embedded", len(texts)),
        ("total s", f"{total:.2f}"),
        ("articles/s", f"{items / total:.1f}"),
        ("texts embedded/s", f"{len(texts) / total:.1f}"),
        ("embedder s", f"{bare:.2f}"),
        ("ratio total/embedder", f"{total / bare:.3f}  (target <= 1.25)"),
        (
            "  same, embed timed inside the ingest",
            f"{total / max(report.embed_seconds, 1e-9):.3f}  ({total - report.embed_seconds:.1f} s not embedding)",
        ),
        ("  same, CPU seconds", f"{total_cpu / bare_cpu:.3f}  ({total_cpu:.1f} / {bare_cpu:.1f})"),
        ("re-ingest s", f"{reingest:.2f}  ({reingest / total:.1%} of the first)"),
        ("re-ingest chunks added", again.chunks_added),
        ("peak RSS MiB", f"{peak:.0f}  ({rss_before:.0f} just before the ingest)"),
    ]
    width = max(len(r[0]) for r in rows)
    print(
        f"ingest of {Path(args.data).name}"
        + (f" (first {args.limit} articles)" if args.limit else "")
        + ": "
        + ", ".join(f"{k} {v}" for k, v in figures["statuses"].items())
    )
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    if peer:
        print_comparison(figures, peer)
    print(f"load average: start {figures['load_average_start']}, end {figures['load_average_end']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")


def print_comparison(qa: dict, peer: dict) -> None:
    """qa and the peer side by side, as a Markdown table."""

    def f(value, spec: str = ".2f") -> str:
        return "n/a" if value is None else format(value, spec)

    table = [
        ("articles read", qa["articles"], peer["articles"]),
        (
            "articles embedded",
            qa["statuses"]["new"] + qa["statuses"]["updated"],
            f"{peer['documents']} (exact repeats dropped)",
        ),
        ("texts embedded (qa: whatever its ingest embeds; peer: nodes)", qa["chunks"], peer["chunks"]),
        ("chunks stored", qa["chunks_in_store"], peer["chunks_in_store"]),
        ("total s", f(qa["total_s"]), f(peer["total_s"])),
        ("articles/s", f(qa["articles_per_s"]), f(peer["articles_per_s"])),
        ("texts embedded/s", f(qa["chunks_per_s"]), f(peer["chunks_per_s"])),
        ("bare embedder s (own chunks, same calls)", f(qa["embedder_s"]), f(peer.get("embedder_s"))),
        (
            "total / bare embedder",
            f(qa["ratio_total_to_embedder"], ".3f"),
            f(peer.get("ratio_total_to_embedder"), ".3f"),
        ),
        (
            "total / embed time inside the ingest",
            f(qa["ratio_total_to_embed_in_ingest"], ".3f"),
            f(peer["ratio_total_to_embed_in_ingest"], ".3f"),
        ),
        ("total / bare embedder, CPU s", f(qa["ratio_cpu"], ".3f"), f(peer.get("ratio_cpu"), ".3f")),
        ("total CPU s", f(qa["total_cpu_s"], ".1f"), f(peer["total_cpu_s"], ".1f")),
        ("s not embedding", f(qa["non_embed_s"], ".1f"), f(peer["non_embed_s"], ".1f")),
        ("peak RSS MiB", f(qa["peak_rss_mib"], ".0f"), f(peer["peak_rss_mib"], ".0f")),
        (
            "RSS just before the ingest MiB",
            f(qa["rss_before_ingest_mib"], ".0f"),
            f(peer["rss_before_ingest_mib"], ".0f"),
        ),
    ]
    print()
    print(f"| | qa | LlamaIndex {peer['peer'].split()[-1]} |")
    print("|---|---:|---:|")
    for name, a, b in table:
        print(f"| {name} | {a} | {b} |")
    print(
        f"\nqa / peer total time: {qa['qa_to_peer_time_ratio']:.3f} wall, {qa['qa_to_peer_cpu_ratio']:.3f} CPU"
        f"   (peer network: {peer['network']})"
    )


if __name__ == "__main__":
    main()
