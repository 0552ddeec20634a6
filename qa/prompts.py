"""Prompt templates are files in `prompts/`; rendering with a missing or unknown variable is an error."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from string import Template

from .errors import QAError
from .records import Passage

# In a checkout (and an editable install) the files are prompts/ beside the package; a wheel
# carries them as qa/prompt_files/ (pyproject.toml maps one to the other).
_PACKAGED = Path(__file__).resolve().parent / "prompt_files"
PROMPTS_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parent.parent / "prompts"
REFUSAL = "I don't know: the articles do not say."
TITLE_WORDS = 12  # a headline's first words say what the article is; the rest costs tokens
# A citation marker as the prompts ask for it: [2], or several numbers in one: [1, 3]
CITATION = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")


@cache
def load(name: str) -> Template:
    path = PROMPTS_DIR / f"{name}.md"
    try:
        return Template(path.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise QAError(f"Prompt file {path} cannot be read ({exc.strerror}); reinstall qa.")


def variables(name: str) -> set[str]:
    template = load(name)
    return {
        m.group("named") or m.group("braced")
        for m in template.pattern.finditer(template.template)
        if m.group("named") or m.group("braced")
    }


def fill(name: str, **values: object) -> str:
    """Fill a prompt; every variable must be given and every given value must be used."""
    needed = variables(name)
    missing, unknown = needed - values.keys(), values.keys() - needed
    if missing or unknown:
        raise ValueError(f"prompt {name!r}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    return load(name).substitute(**{k: str(v) for k, v in values.items()})


def prompts_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(PROMPTS_DIR.glob("*.md")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def neutralise(text: str, tag: str) -> str:
    """Article text as inert data: no citation markers, no delimiter look-alikes."""
    text = CITATION.sub(lambda m: "(" + m.group(1) + ")", text)
    return re.sub(re.escape(tag), "passage", text, flags=re.I).replace("<", "‹").replace(">", "›")


def format_passages(passages: Sequence[Passage], salt: str = "") -> tuple[str, str]:
    """(tag, text): the passages grouped by article, a `## title (date)` line per run of passages
    from the same article and each passage on one line as `[n] text`; the caller puts them
    between `<tag>` and `</tag>`, a tag made per request from `salt` and the texts. Article text
    is neutralised and flattened to one line per passage, so no line of it can pose as a header,
    a passage number or a delimiter. Every prompt token is time a local model spends reading:
    one short header per article (the outlet is shown to the reader, not to the model), titles
    cut to `TITLE_WORDS` words."""
    digest = hashlib.sha1((salt + "".join(p.text for p in passages)).encode()).hexdigest()[:4]
    tag = f"doc-{digest}"
    groups: list[list[Passage]] = []
    for p in passages:
        if groups and groups[-1][-1].article_id == p.article_id:
            groups[-1].append(p)
        else:
            groups.append([p])
    blocks = []
    for group in groups:
        first = group[0]
        words = " ".join(first.title.split()).split(" ")
        title = " ".join(words[:TITLE_WORDS]) + ("…" if len(words) > TITLE_WORDS else "")
        blocks.append(
            fill(
                "passage",
                title=_header_safe(neutralise(title, tag)) or "untitled",
                date=f" ({first.date})" if first.date else "",
                windows="\n".join(f"[{p.number}] {neutralise(' '.join(p.text.split()), tag)}" for p in group),
            )
        )
    return tag, "\n".join(blocks)


def _header_safe(text: str) -> str:
    return " ".join(text.replace("#", "").split())
