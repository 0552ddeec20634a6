"""Token-based chunks cut at sentence boundaries, with overlap and character offsets."""

from __future__ import annotations

import re

import numpy as np

from .records import Article, Chunk
from .tokens import encoding

# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) before
# whitespace, or at a line break (cleaned article text has one paragraph per line); a full
# stop that only ends an abbreviation does not end the sentence (`_abbreviation`).
_SENTENCE_END = re.compile(r"(?<=[.!?][\"'”’)\]])[ \t]+|(?<=[.!?])[ \t]+|\s*\n\s*")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]$")  # "U.S", "D.C", "a.m" (the last dot is cut off)
# Titles before a name: never the end of a sentence.
_TITLES = frozenset(
    "mr mrs ms dr prof sen rep gov gen lt col sgt capt cmdr adm st rev hon mt ft pres supt insp det vs".split()
)
# Words abbreviated before a number ("Jan. 6", "No. 1"): not the end when a digit follows.
_BEFORE_NUMBER = frozenset("no nos vol fig art ch jan feb mar apr jun jul aug sep sept oct nov dec".split())
# After "U.S." a capitalised word usually goes on ("U.S. Open", "U.S. President") unless it
# is one that opens sentences.
_OPENERS = frozenset(
    "the a an it he she they we i you this that these those there here but and or so "
    "yet in on at for as if when while after before since his her its their our my "
    "some many most more no not now then still also however meanwhile one two what "
    "who why how".split()
)


def _abbreviation(text: str, stop: int, resume: int) -> bool:
    """The full stop at text[stop - 1] (followed by whitespace up to `resume`) ends an
    abbreviation or an initial, not a sentence."""
    if text[stop - 1] != "." or resume >= len(text):
        return False
    following = text[resume]
    if following.islower():  # "U.S. officials", "5 p.m. on Monday", "etc. and"
        return True
    word = _WORD_BEFORE.search(text, max(0, stop - 24), stop)
    if not word:
        return False
    before = word.group(1)
    if len(before) == 1 and before.isupper():  # an initial: "Michael J. Fox", "U. S. Open"
        return True
    low = before.lower()
    if (low in _TITLES and (before[0].isupper() or low == "vs")) or (low in _BEFORE_NUMBER and following.isdigit()):
        return True
    if _DOTTED.fullmatch(before):
        next_word = re.match(r"[A-Za-z]+", text[resume : resume + 20])
        return not next_word or next_word.group(0).lower() not in _OPENERS
    return False


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of `text`, whitespace trimmed, in order."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if "\n" not in match.group(0) and _abbreviation(text, match.start(), match.end()):
            continue
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


def _split_long(text: str, span: tuple[int, int], max_tokens: int) -> list[tuple[int, int]]:
    """Cut one over-long sentence into pieces of at most `max_tokens` tokens (for text with no
    punctuation), each ending on a whole character."""
    enc = encoding()
    a, b = span
    pieces: list[tuple[int, int]] = []
    start, window = a, max_tokens * 8  # characters looked at per piece; widened if tokens are long
    while start < b:
        part = text[start : min(b, start + window)]
        ids = enc.encode(part, disallowed_special=())
        if len(ids) <= max_tokens:
            if start + len(part) >= b:
                pieces.append((start, b))
                break
            window *= 2
            continue
        # a token can end inside a multi-byte character: keep only the whole characters
        head = enc.decode_bytes(ids[:max_tokens]).decode("utf-8", errors="ignore")
        end = start + len(head)
        # re-encoding a cut piece can differ from the window's tokens; trim until it fits
        while end > start + 1 and len(enc.encode(text[start:end], disallowed_special=())) > max_tokens:
            end -= 1
        end = max(end, start + 1)
        pieces.append((start, end))
        start = end
        while start < b and text[start].isspace():  # tokens carry their leading space
            start += 1
    return pieces


# Sentences longer than this (text without punctuation) are cut into pieces: a sentence is
# the unit the embedder sees (MiniLM reads at most 256 word pieces) and the unit of context.
SENTENCE_TOKENS = 128


def sentence_units(text: str, max_tokens: int = SENTENCE_TOKENS) -> list[tuple[int, int, int]]:
    """(start, end, tokens) of each sentence, pieces of over-long ones at most `max_tokens` (and
    never over SENTENCE_TOKENS) tokens long; each encoded once."""
    max_tokens = min(max_tokens, SENTENCE_TOKENS)
    enc = encoding()
    units: list[tuple[int, int, int]] = []
    for a, b in sentence_spans(text):
        n = len(enc.encode(text[a:b], disallowed_special=()))
        if n <= max_tokens:
            units.append((a, b, n))
        else:
            units.extend(
                (x, y, len(enc.encode(text[x:y], disallowed_special=())))
                for x, y in _split_long(text, (a, b), max_tokens)
            )
    return units


def article_sentences(article: Article) -> list[tuple[int, int]]:
    """The character spans that are embedded one by one and chosen as context."""
    return [(a, b) for a, b, _ in sentence_units(article.text)]


def chunk_vectors(chunks: list[Chunk], sentences: list[tuple[int, int]], vectors: np.ndarray) -> np.ndarray:
    """Each chunk's vector: the normalised mean of the vectors of the sentences it overlaps.
    (Embedding a 300-token chunk whole would cost a second pass, and MiniLM would read only
    its first 256 word pieces.)"""
    out = np.zeros((len(chunks), vectors.shape[1] if vectors.ndim == 2 else 0), dtype=np.float32)
    for n, c in enumerate(chunks):
        rows = [i for i, (a, b) in enumerate(sentences) if a < c.end and b > c.start]
        if rows:
            v = vectors[rows].mean(axis=0)
            out[n] = v / max(float(np.linalg.norm(v)), 1e-12)
    return out


def chunk_article(
    article: Article, max_tokens: int = 300, overlap: int = 45, units: list[tuple[int, int, int]] | None = None
) -> list[Chunk]:
    """Greedy packing of whole sentences into chunks of at most `max_tokens` tokens.

    Each chunk after the first starts with the last sentences of the previous one, up to
    `overlap` tokens, so a fact cut at a boundary is still whole in one chunk.
    """
    text = article.text
    enc = encoding()
    if units is None:
        units = sentence_units(text, max_tokens)

    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and (total + units[j][2] <= max_tokens or j == i):
            total += units[j][2]
            j += 1
        # the separators between sentences (line breaks) are tokens too: count the real text
        start = units[i][0]
        while True:
            end = units[j - 1][1]
            total = len(enc.encode(text[start:end], disallowed_special=()))
            if total <= max_tokens or j - 1 == i:
                break
            j -= 1
        position = len(chunks)
        chunks.append(
            Chunk(
                id=f"{article.id}-{position:04d}",
                article_id=article.id,
                position=position,
                text=text[start:end],
                start=start,
                end=end,
                tokens=total,
            )
        )
        if j >= len(units):
            break
        # step back over whole sentences for the overlap, but always move forward, and leave
        # room for the next sentence so the next chunk never repeats only what this one held
        k, room = j, min(overlap, max_tokens - units[j][2])
        while k - 1 > i and len(enc.encode(text[units[k - 1][0] : end], disallowed_special=())) <= room:
            k -= 1
        i = k
    return chunks


def snippet(text: str, width: int) -> str:
    """`text` on one line, cut at a word to about `width` characters (" …" marks the cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width].rsplit(" ", 1)[0] + " …"
