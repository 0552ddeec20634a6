"""Token-based chunks cut at sentence boundaries, with overlap and character offsets."""

from __future__ import annotations

import re

from .records import Article, Chunk
from .tokens import encoding

# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) before
# whitespace, or at a line break (cleaned article text has one paragraph per line).
# Abbreviations are rare enough in news to accept.
_SENTENCE_END = re.compile(r"(?<=[.!?][\"'”’)\]])[ \t]+|(?<=[.!?])[ \t]+|\s*\n\s*")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of `text`, whitespace trimmed, in order."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
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
    """Cut one over-long sentence into token windows (for text with no punctuation)."""
    enc = encoding()
    a, b = span
    ids = enc.encode(text[a:b], disallowed_special=())
    if len(ids) <= max_tokens:
        return [span]
    pieces, offset = [], a
    for i in range(0, len(ids), max_tokens):
        piece = enc.decode(ids[i : i + max_tokens])
        # decode can differ from the source on broken UTF-8; find the piece by length instead
        end = min(b, offset + len(piece))
        if end > offset:
            pieces.append((offset, end))
        offset = end
    if offset < b:
        pieces.append((offset, b))
    return pieces


def chunk_article(article: Article, max_tokens: int = 300, overlap: int = 45) -> list[Chunk]:
    """Greedy packing of whole sentences into chunks of at most `max_tokens` tokens.

    Each chunk after the first starts with the last sentences of the previous one, up to
    `overlap` tokens, so a fact cut at a boundary is still whole in one chunk.
    """
    text = article.text
    enc = encoding()
    units: list[tuple[int, int, int]] = []  # start, end, tokens
    for span in sentence_spans(text):
        for a, b in _split_long(text, span, max_tokens):
            units.append((a, b, len(enc.encode(text[a:b], disallowed_special=()))))

    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and (total + units[j][2] <= max_tokens or j == i):
            total += units[j][2]
            j += 1
        start, end = units[i][0], units[j - 1][1]
        position = len(chunks)
        chunks.append(
            Chunk(id=f"{article.id}-{position:04d}", article_id=article.id, position=position,
                  text=text[start:end], start=start, end=end, tokens=total)
        )
        if j >= len(units):
            break
        # step back over whole sentences for the overlap, but always move forward
        k, back = j, 0
        while k - 1 > i and back + units[k - 1][2] <= overlap:
            back += units[k - 1][2]
            k -= 1
        i = k
    return chunks
