"""Chunking with the real tokenizer: token-bounded chunks cut at sentence boundaries, with
overlap, exact character offsets, and nothing of the article left out."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.chunking import chunk_article, sentence_spans
from qa.ingest.articles import article_id, clean_text
from qa.records import Article
from qa.tokens import count_tokens, encoding, seed_encodings

WORDS = (
    "council budget tram harbour strike union vote drought rain farmers minister bridge port engineers "
    "cost delay reported Tuesday million euros workers said plan city region water prices rose"
).split()


def article(text: str) -> Article:
    return Article(id=article_id(text), text=text, title="t")


def news_text(seed: int, paragraphs: int, sentences: tuple[int, int] = (2, 5), words: tuple[int, int] = (6, 28)) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(paragraphs):
        sents = []
        for _ in range(rng.randint(*sentences)):
            body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(*words)))
            sents.append(body.capitalize() + rng.choice([".", ".", ".", "?", "!", '."', ".)"]))
        out.append(" ".join(sents))
    return "\n\n".join(out)


def check(art: Article, max_tokens: int, overlap: int) -> list:
    """The invariants every chunking must keep; returns the chunks for further checks."""
    chunks = chunk_article(art, max_tokens, overlap)
    text = art.text
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.id == f"{art.id}-{c.position:04d}" and c.article_id == art.id
        assert text[c.start : c.end] == c.text
        assert c.text == c.text.strip() and c.text
        real = count_tokens(c.text)
        assert real <= max_tokens, (real, c.text[:80])
        assert c.tokens == real
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert prev.start < nxt.start and prev.end < nxt.end  # always forward, never a repeat
        assert nxt.start <= prev.end or not text[prev.end : nxt.start].strip()  # no gap with text in it
        if nxt.start < prev.end:
            assert count_tokens(text[nxt.start : prev.end]) <= overlap
    covered = [False] * len(text)
    for c in chunks:
        covered[c.start : c.end] = [True] * (c.end - c.start)
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missing, text[missing[0] : missing[0] + 40]
    return chunks


def test_default_size_and_overlap_on_a_long_article():
    art = article(news_text(1, paragraphs=40))
    assert count_tokens(art.text) > 2000
    chunks = check(art, 300, 45)
    spans = sentence_spans(art.text)
    starts, ends = {a for a, _ in spans}, {b for _, b in spans}
    longest = max(count_tokens(art.text[a:b]) for a, b in spans)
    assert longest < 100  # so no sentence needed splitting here
    for c in chunks:
        assert c.start in starts and c.end in ends  # cut at sentence boundaries only
    for a, b in spans:  # every sentence whole in some chunk
        assert any(c.start <= a and b <= c.end for c in chunks)
    # greedy packing: every chunk but the last is full to within one sentence
    assert all(c.tokens > 300 - longest for c in chunks[:-1])
    # ~15% overlap: consecutive chunks share whole sentences
    shared = [
        count_tokens(art.text[n.start : p.end]) for p, n in zip(chunks, chunks[1:], strict=False) if n.start < p.end
    ]
    assert len(shared) >= len(chunks) - 2 and all(0 < s <= 45 for s in shared)


def test_short_article_is_one_chunk():
    text = "The bridge reopened on Saturday. Repairs took eleven weeks."
    (only,) = check(article(text), 300, 45)
    assert (only.start, only.end, only.text) == (0, len(text), text)
    assert only.tokens == count_tokens(text)


def test_empty_text_gives_no_chunks():
    assert chunk_article(article(""), 300, 45) == []


def test_an_over_long_sentence_is_split_and_the_rest_stays_whole():
    long_sentence = " ".join(random.Random(2).choice(WORDS) for _ in range(1500))
    text = "The plan was announced on Monday. " + long_sentence + ". Critics said it came too late."
    art = article(text)
    chunks = check(art, 300, 45)
    assert len(chunks) >= 6
    first, last = "The plan was announced on Monday.", "Critics said it came too late."
    assert chunks[0].text.startswith(first)
    assert chunks[-1].text.endswith(last)
    assert any(c.text == last or c.text.endswith(" " + last) for c in chunks)


def test_one_huge_line_without_punctuation():
    rng = random.Random(3)
    text = " ".join(rng.choice(WORDS) for _ in range(12000))
    assert "." not in text and "\n" not in text
    chunks = check(article(text), 300, 45)
    assert len(chunks) >= 30
    assert all(nxt.start >= prev.end for prev, nxt in zip(chunks, chunks[1:], strict=False))
    assert chunks[0].start == 0 and chunks[-1].end == len(text)


def test_text_with_no_spaces_at_all():
    chunks = check(article("x" * 20000), 100, 15)
    assert chunks[-1].end == 20000


def test_multibyte_characters_are_never_cut_and_chunks_stay_under_the_limit():
    # Tokens of emoji and CJK text end inside characters; pieces must still be exact slices.
    for text in (
        "\U0001f642\U0001f389\U0001f44d\U0001f3fd" * 500,
        "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8" * 400,
        "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e " * 300,
    ):
        chunks = check(article(text), 50, 7)
        assert len(chunks) > 5


def test_lines_without_end_punctuation_count_their_line_breaks():
    # Headings, list items, bylines: the line breaks between them are tokens as well.
    rng = random.Random(4)
    for sep in ("\n", "\n\n"):
        text = sep.join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))) for _ in range(400))
        check(article(text), 300, 45)
        check(article(text), 50, 7)


def test_every_chunk_brings_something_new():
    # A big sentence after small ones: the overlap must leave room for it, or the next chunk
    # would only repeat the small ones.
    small = " ".join(f"Point {i} was agreed." for i in range(12))
    big = " ".join(random.Random(5).choice(WORDS) for _ in range(250)) + "."
    text = small + " " + big + " " + small
    chunks = check(article(text), 300, 45)
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert nxt.text not in prev.text


_PIECES = st.sampled_from(
    [
        "the",
        "Council",
        "voted",
        "42",
        "m\u00e9tro",
        "\u6771\u4eac",
        "\U0001f642",
        "e.g.",
        "Mr.",
        "(yes)",
        "\u201cquoted.\u201d",
        "?",
        "!",
        ".",
        ",",
        "'",
        "--",
    ]
)
_SEPS = st.sampled_from([" ", " ", " ", "\n", "\n\n", ". ", "! ", "? ", ".\n"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(st.tuples(_PIECES, _SEPS), min_size=1, max_size=400),
    max_tokens=st.integers(8, 120),
    overlap_share=st.floats(0, 0.3),
)
def test_invariants_hold_for_any_text(parts, max_tokens, overlap_share):
    text = clean_text("".join(p + s for p, s in parts))
    check(article(text), max_tokens, int(max_tokens * overlap_share))


def test_sentence_spans_trim_and_split():
    text = 'He said "no." Then left!  Why? (Unclear.)\nNew line without stop\nEnd'
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        'He said "no."',
        "Then left!",
        "Why?",
        "(Unclear.)",
        "New line without stop",
        "End",
    ]


@pytest.mark.parametrize(
    "text, sentences",
    [
        (
            "Novak Djokovic won the U.S. Open in 2020 [2]. He beat Zverev.",
            ["Novak Djokovic won the U.S. Open in 2020 [2].", "He beat Zverev."],
        ),
        (
            "Officials in the U.S. said so. It rained in the U.S. The game was off.",
            ["Officials in the U.S. said so.", "It rained in the U.S.", "The game was off."],
        ),
        (
            "Mr. Smith met Dr. Jones at 5 p.m. on Jan. 6. They talked.",
            ["Mr. Smith met Dr. Jones at 5 p.m. on Jan. 6.", "They talked."],
        ),
        (
            "Michael J. Fox spoke. Then Sen. Warren did. He said no. Then he left.",
            ["Michael J. Fox spoke.", "Then Sen. Warren did.", "He said no.", "Then he left."],
        ),
        ("It was No. 1 in the charts. No. That is wrong.", ["It was No. 1 in the charts.", "No.", "That is wrong."]),
        (
            "She moved to Washington, D.C. The city was new to her.",
            ["She moved to Washington, D.C.", "The city was new to her."],
        ),
    ],
)
def test_a_full_stop_after_an_abbreviation_or_initial_does_not_end_the_sentence(text, sentences):
    assert [text[a:b] for a, b in sentence_spans(text)] == sentences


# ---- the real tokenizer, offline -------------------------------------------------------------

EXPECTED_SHA256 = {  # tiktoken's own expected hashes (tiktoken_ext/openai_public.py)
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"


def test_real_tiktoken_counts_offline(home):
    assert encoding().name == "cl100k_base"
    assert count_tokens("hello world") == 2
    assert count_tokens("<|endoftext|>") > 1  # special-token text is plain text here, never an error


def test_seeded_files_are_what_tiktoken_expects(tmp_path):
    seed_encodings(tmp_path)
    for name, digest in EXPECTED_SHA256.items():
        cached = tmp_path / hashlib.sha1(URL.format(name).encode()).hexdigest()
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == digest
    assert not list(tmp_path.glob("*.tmp"))


def test_first_runs_at_the_same_time_can_seed_together(tmp_path):
    # Several `qa` processes started at once on a fresh home all seed the tokenizer cache.
    code = (
        "import sys; from pathlib import Path; from qa.tokens import seed_encodings; seed_encodings(Path(sys.argv[1]))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stderr=subprocess.PIPE, text=True)
        for _ in range(5)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, "\n".join(errors)
    for name, digest in EXPECTED_SHA256.items():
        cached = tmp_path / hashlib.sha1(URL.format(name).encode()).hexdigest()
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == digest
    assert not [p for p in Path(tmp_path).iterdir() if p.name.endswith(".tmp")]


def test_chunk_vectors_are_the_normalised_mean_of_their_sentences():
    import numpy as np

    from qa.chunking import chunk_vectors
    from qa.records import Chunk

    sentences = [(0, 10), (11, 20), (21, 30)]
    vectors = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    chunks = [Chunk("a-0000", "a", 0, "", 0, 20, 5), Chunk("a-0001", "a", 1, "", 11, 30, 5)]
    got = chunk_vectors(chunks, sentences, vectors)
    h = 1 / np.sqrt(2)
    assert np.allclose(got, [[h, h, 0], [0, h, h]])
