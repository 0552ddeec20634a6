"""Eval runs as artefacts: run directories, summaries and comparisons.

A run lives in `eval/runs/<time>-<name>/`: `settings.json` (what produced it and its hash),
`results.jsonl` (one row per item, appended and flushed as each item finishes, so a run
killed midway resumes where it stopped) and `summary.json` (aggregates with bootstrap
intervals, versions).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path

from .. import __version__
from ..errors import QAError
from ..prompts import prompts_hash
from . import metrics
from .scoring import LABELS, TIMING, aggregate

ANSWER_PROMPTS = ("answer_system", "answer_user", "passage", "today", "short_user", "choose_user")


def used_prompts_hash(summaries: bool = False) -> str:
    """A hash of the prompt files an eval run uses (answers, follow-ups; summaries when asked),
    so that editing an unrelated prompt (chat, briefs) does not block `--resume`."""
    from .. import prompts

    names = list(ANSWER_PROMPTS)
    if summaries:
        names += sorted(p.stem for p in prompts.PROMPTS_DIR.glob("summarise*.md"))
    digest = hashlib.sha256()
    for name in names:
        path = prompts.PROMPTS_DIR / f"{name}.md"
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b""))
    return digest.hexdigest()[:12]


def settings_hash(settings: dict) -> str:
    """A hash of what produced a run (its creation time and the hash itself left out)."""
    kept = {k: v for k, v in settings.items() if k not in ("hash", "created")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _git_commit() -> str:
    """The source checkout's commit, "+dirty" when it has uncommitted changes ("" outside git)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if head and dirty else "")


def versions(model: str) -> dict[str, str]:
    found = {"qa": __version__, "commit": _git_commit(), "python": platform.python_version(), "model": model}
    for package in ("chromadb", "numpy", "tiktoken", "onnxruntime", "xllamacpp", "openai"):
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            found[package] = importlib_metadata.version(package)
    return found


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "run"


@dataclass
class RunDir:
    path: Path
    settings: dict

    @property
    def results(self) -> Path:
        return self.path / "results.jsonl"

    @classmethod
    def create(cls, runs: Path, name: str, settings: dict) -> RunDir:
        path = runs / f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(name)}"
        n = 1
        while path.exists():
            n += 1
            path = runs / f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(name)}-{n}"
        path.mkdir(parents=True)
        settings = {**settings, "hash": settings_hash(settings)}
        (path / "settings.json").write_text(json.dumps(settings, indent=2, sort_keys=True, default=str) + "\n")
        return cls(path, settings)

    @classmethod
    def latest(cls, runs: Path, name: str) -> RunDir | None:
        pattern = re.compile(r"^\d{8}-\d{6}-" + re.escape(_slug(name)) + r"(-\d+)?$")
        found = sorted(
            (p for p in runs.glob("*") if pattern.match(p.name) and (p / "settings.json").is_file()),
            key=lambda p: p.name,
        )
        return cls.open(found[-1]) if found else None

    @classmethod
    def open(cls, path: Path) -> RunDir:
        if path.is_file():
            path = path.parent
        try:
            settings = json.loads((path / "settings.json").read_text())
        except (OSError, ValueError):
            raise QAError(f"{path} is not an eval run (no readable settings.json); give a folder under eval/runs/.")
        return cls(path, settings)

    def rows(self) -> list[dict]:
        """The finished rows; a line cut off by a kill is dropped (and the file repaired)."""
        if not self.results.is_file():
            return []
        rows, good = [], 0
        raw = self.results.read_bytes()
        for line in raw.splitlines(keepends=True):
            try:
                rows.append(json.loads(line))
            except ValueError:
                break
            good += len(line)
        if good < len(raw):
            with open(self.results, "r+b") as handle:
                handle.truncate(good)
        return rows

    def append(self, row: dict) -> None:
        with open(self.results, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def write_summary(self, rows: Sequence[dict], *, extra: dict | None = None, seed: int = 0) -> dict:
        summary = {
            "name": self.path.name,
            "settings_hash": self.settings["hash"],
            "settings": self.settings,
            "prompts_hash": self.settings.get("prompts_hash"),
            "prompts_hash_all": prompts_hash(),
            "versions": versions(self.settings.get("llm", "")),
            "items": len(rows),
            "cached_items": sum(1 for r in rows if r.get("cached")),
            "metrics": aggregate(rows, seed=seed),
            **(extra or {}),
        }
        tmp = self.path / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
        os.replace(tmp, self.path / "summary.json")
        return summary


def changed_settings(a: dict, b: dict) -> dict[str, tuple]:
    keys = (set(a) | set(b)) - {"hash", "created"}
    return {k: (a.get(k), b.get(k)) for k in sorted(keys) if a.get(k) != b.get(k)}


FLIPPABLE = ("mc", "em", "em_lenient", "refusal", "false_refusal", "misled", "answer_recall", "context_hit", "hit@1")


def compare(a: RunDir, b: RunDir, *, seed: int = 0) -> dict:
    """Per-metric deltas (B - A) over the items both runs have, with paired bootstrap
    intervals, and the items whose pass/fail metrics flipped."""
    rows_a = {r["id"]: r for r in a.rows()}
    rows_b = {r["id"]: r for r in b.rows()}
    common = [i for i in rows_a if i in rows_b]
    if not common:
        raise QAError(f"{a.path.name} and {b.path.name} have no item in common; compare runs of the same gold set.")
    names = {k for i in common for k in rows_a[i]["metrics"]} | {k for i in common for k in rows_b[i]["metrics"]}
    ordered = [n for n in LABELS if n in names] + sorted(names - set(LABELS))
    deltas = []
    for name in ordered:
        pairs = [
            (rows_a[i]["metrics"][name], rows_b[i]["metrics"][name])
            for i in common
            if rows_a[i]["metrics"].get(name) is not None and rows_b[i]["metrics"].get(name) is not None
        ]
        if not pairs:
            continue
        delta = metrics.paired_bootstrap([p[0] for p in pairs], [p[1] for p in pairs], seed=seed)
        assert delta is not None  # pairs is not empty
        deltas.append(
            {
                "metric": name,
                "a": round(sum(p[0] for p in pairs) / len(pairs), 4),
                "b": round(sum(p[1] for p in pairs) / len(pairs), 4),
                "delta": round(delta[0], 4),
                "low": round(delta[1], 4),
                "high": round(delta[2], 4),
                "n": len(pairs),
                "timing": name in TIMING,
            }
        )
    flips = []
    for i in common:
        ma, mb = rows_a[i]["metrics"], rows_b[i]["metrics"]
        for name in FLIPPABLE:
            if name in ma and name in mb and ma[name] != mb[name]:
                flips.append(
                    {
                        "id": i,
                        "metric": name,
                        "a": ma[name],
                        "b": mb[name],
                        "question": rows_a[i]["question"],
                        "answer_a": rows_a[i]["short"] or rows_a[i]["answer"],
                        "answer_b": rows_b[i]["short"] or rows_b[i]["answer"],
                    }
                )
    return {
        "a": a.path.name,
        "b": b.path.name,
        "items": len(common),
        "deltas": deltas,
        "flips": flips,
        "settings_changed": changed_settings(a.settings, b.settings),
    }
