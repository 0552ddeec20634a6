"""Settings, read once: defaults, then the config file, then environment, then flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from .errors import QAError, UsageError

ENV_PREFIX = "QA_"


def default_home() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("qa", appauthor=False))


@dataclass(frozen=True)
class Settings:
    home: Path
    collection: str = "articles"
    embedder: str = "minilm"  # "minilm" or "openai:MODEL"
    llm: str = ""  # "" = auto: openai when a key or base URL is set, else local
    chunk_tokens: int = 300
    chunk_overlap: int = 45
    budget: int = 1000  # context tokens sent to the model
    k: int = 40  # candidates taken from each retriever before fusion
    per_article: int = 3  # passages at most from one article
    max_answer_tokens: int = 320
    temperature: float = 0.0
    timeout: float = 120.0
    threads: int = 0  # 0 = the cores available
    max_file_mb: int = 20
    chroma_url: str = ""  # a Chroma server (http://host:port) instead of the embedded store
    chroma_token: str = ""  # sent as a bearer token to that server
    fetch_timeout: float = 20.0  # seconds for one web request (qa ingest URL, qa feeds)
    fetch_max_mb: float = 10.0  # largest page, PDF or feed fetched
    fetch_max_redirects: int = 5
    as_of: str = ""  # the date questions are asked on (YYYY-MM-DD), told to the model; "" = none
    near_duplicates: float = 0.7  # word-shingle Jaccard at which a new article is a copy of a stored one; 0 = off
    engine: str = "background"  # the local model: "background" (a warm process shared by commands) or "in-process"
    engine_idle: float = 600.0  # seconds a background engine stays up with nothing to do
    plugins: str = ""  # modules whose register(backends) adds backends (the test suite's fakes); see qa/library.py

    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    @property
    def chroma_dir(self) -> Path:
        return self.home / "chroma"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def engine_dir(self) -> Path:
        return self.home / "engine"

    @property
    def tiktoken_dir(self) -> Path:
        return self.home / "tiktoken"

    def resolved_llm(self) -> str:
        if self.llm:
            return self.llm
        if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
            return "openai:" + os.environ.get("QA_OPENAI_MODEL", "gpt-4o-mini")
        return "local"


def _coerce(name: str, raw: object, template: object) -> object:
    try:
        if isinstance(template, Path):
            return Path(str(raw)).expanduser()
        if isinstance(template, bool):
            return str(raw).lower() in ("1", "true", "yes", "on")
        if isinstance(template, int):
            return int(str(raw))
        if isinstance(template, float):
            return float(str(raw))
    except (TypeError, ValueError):
        raise QAError(f"Setting {name!r} has an invalid value {raw!r}; expected a {type(template).__name__}.")
    return str(raw)


def load_settings(overrides: dict[str, object] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Defaults < config file (QA_HOME/config.toml) < QA_* environment < explicit overrides."""
    env = os.environ if environ is None else environ
    home = Path(env.get("QA_HOME") or default_home()).expanduser()
    if overrides and overrides.get("home"):
        home = Path(str(overrides["home"])).expanduser()
    # a relative QA_HOME means relative to where the command runs; absolute from here on, so the
    # processes qa starts elsewhere (the background engine runs in its own folder) find it too
    settings = Settings(home=home.absolute())
    known = {f.name: getattr(settings, f.name) for f in fields(settings)}
    values: dict[str, object] = {}

    config = settings.config_file
    if config.is_file():
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise QAError(f"Config file {config} is not valid TOML ({exc}); fix or delete it.")
        for key, raw in data.items():
            if key not in known or key == "home":
                raise QAError(f"Unknown setting {key!r} in {config}; known: {', '.join(sorted(known))}.")
            values[key] = _coerce(key, raw, known[key])
    for key, template in known.items():
        raw = env.get(ENV_PREFIX + key.upper())
        if raw not in (None, "") and key != "home":
            values[key] = _coerce(ENV_PREFIX + key.upper(), raw, template)
    for key, raw in (overrides or {}).items():
        if raw is not None and key != "home":
            values[key] = _coerce(key, raw, known[key])
    return replace(settings, **values)  # type: ignore[arg-type]  # each value coerced to its field's type above


def prepare_environment(settings: Settings) -> None:
    """Switch off telemetry and point tiktoken at our seeded cache, before those libraries load."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(settings.tiktoken_dir)


def make_home(home: Path) -> bool:
    """Create the data directory readable by its owner only (700, as ssh and gpg do); True when it
    is private. One that exists is left as its owner set it (`qa doctor` says when others can read it).
    A path that is a file is a usage error."""
    if home.exists() and not home.is_dir():
        raise UsageError(f"The data directory {home} (QA_HOME or --home) is a file; point it at a folder.")
    if not home.exists():
        try:
            home.mkdir(mode=0o700, parents=True)
        except OSError as exc:
            raise QAError(f"Cannot create the data directory {home} ({exc.strerror}); set QA_HOME to a folder you own.")
        home.chmod(0o700)  # mkdir's mode is filtered by the umask
    return home.stat().st_mode & 0o077 == 0


def masked_url(url: str) -> str:
    """A URL fit to print: a password in it (http://user:pw@host) replaced by ***."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
