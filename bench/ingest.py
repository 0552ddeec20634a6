"""Ingest throughput on the RealTimeQA dev articles, against the bare embedder on the same chunks.

    .venv/bin/python bench/ingest.py [--data ../shared/eval/realtimeqa-dev] [--threads N]

Runs the real ingest (MiniLM, a real Chroma store, BM25) into a fresh temporary QA_HOME,
then embeds exactly the chunk texts the ingest embedded, in the same calls, with the bare
embedder in the same process. total / embedder is the overhead of everything that is not
the model (target <= 1.25). Because other work can slow one half and not the other, the
script also prints the ratio against the embed time measured inside the ingest, and in CPU
seconds. Then ingests the same files again (nothing should be added).
Figures go to bench/results/ingest.json. The machine is shared: trust the ratio more than
the absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qa.settings import load_settings, prepare_environment  # noqa: E402


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
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "eval" / "realtimeqa-dev"),
                        help="folder holding the RealTimeQA *_gcs.jsonl files")
    parser.add_argument("--threads", type=int, default=0, help="embedder threads (0 = all cores)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "ingest.json"))
    args = parser.parse_args()

    inputs = sorted(str(p) for p in Path(args.data).glob("*_gcs.jsonl"))
    if not inputs:
        sys.exit(f"no *_gcs.jsonl files in {args.data}")

    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        settings = load_settings({"home": tmp, "threads": args.threads})
        prepare_environment(settings)
        from qa.embeddings import MiniLMEmbedder
        from qa.ingest import ingest
        from qa.lexical import LexicalIndex
        from qa.loaders import load_file
        from qa.store import Store
        from qa.tokens import count_tokens

        embedder = MiniLMEmbedder(threads=settings.threads)
        # warm-up: the VM maps memory lazily and tiktoken loads its BPE file on first use
        warm = [a.text for f in inputs for a in load_file(Path(f)).articles][:64]
        count_tokens("warm up")
        embedder.embed(warm)

        def open_store() -> tuple[Store, LexicalIndex]:
            store = Store(settings.home, settings.collection, embedder.name, embedder.dimension)
            index = LexicalIndex(settings.home / "bm25" / store.name)
            index.load()
            return store, index

        recorder = RecordingEmbedder(embedder)
        store, index = open_store()
        t0, c0 = time.perf_counter(), time.process_time()
        report = ingest(inputs, store=store, embedder=recorder, index=index,
                        chunk_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap)
        total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
        chunks_in_store = store.chunk_count()
        store.close()

        texts = [t for call in recorder.calls for t in call]
        t0, c0 = time.perf_counter(), time.process_time()
        for call in recorder.calls:
            embedder.embed(call)
        bare, bare_cpu = time.perf_counter() - t0, time.process_time() - c0

        store, index = open_store()
        t0 = time.perf_counter()
        again = ingest(inputs, store=store, embedder=embedder, index=index,
                       chunk_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap)
        reingest = time.perf_counter() - t0
        store.close()

    items = len(report.items)
    figures = {
        "data": Path(args.data).name,
        "files": len(inputs),
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
        "threads": args.threads,
        "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    rows = [("articles", items), ("chunks", len(texts)), ("total s", f"{total:.2f}"),
            ("articles/s", f"{items / total:.1f}"), ("chunks/s", f"{len(texts) / total:.1f}"),
            ("embedder s", f"{bare:.2f}"), ("ratio total/embedder", f"{total / bare:.3f}  (target <= 1.25)"),
            ("  same, embed timed inside the ingest", f"{total / max(report.embed_seconds, 1e-9):.3f}  "
             f"({total - report.embed_seconds:.1f} s not embedding)"),
            ("  same, CPU seconds", f"{total_cpu / bare_cpu:.3f}  ({total_cpu:.1f} / {bare_cpu:.1f})"),
            ("re-ingest s", f"{reingest:.2f}  ({reingest / total:.1%} of the first)"),
            ("re-ingest chunks added", again.chunks_added)]
    width = max(len(r[0]) for r in rows)
    print(f"ingest of {Path(args.data).name}: " + ", ".join(f"{k} {v}" for k, v in figures["statuses"].items()))
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")


if __name__ == "__main__":
    main()
