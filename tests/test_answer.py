"""`ask` end to end on the sample articles: real store, tokenizer and embedder; fake or extractive LLM."""

import pytest

from qa.answer import AskOptions, answer, ask
from qa.ingest.pipeline import ingest
from qa.prompts import REFUSAL
from qa.search import Library
from qa.search.retrieval import Filters, RetrievalOptions, retrieve
from tests.fakes import FakeLLM

STRIKE = "What pay rise did Korvane's Brakemoor workers accept to end their strike?"
AT_400 = RetrievalOptions(budget=400)


@pytest.fixture
def library(sample_library):
    """The sample, ingested once for the module (conftest.py); tests that change a store make their own."""
    return sample_library


def test_retrieval_finds_the_answer_within_budget(library, embedder):
    store = library.store
    found = retrieve(STRIKE, library=library, options=AT_400)
    assert found.passages
    assert "7 per cent pay rise" in " ".join(p.text for p in found.passages)
    assert found.passages[0].title.startswith("Korvane strike ends")
    from qa.tokens import count_tokens

    assert sum(count_tokens(p.text) for p in found.passages) <= 400
    for p in found.passages:  # offsets point into the stored article
        assert store.find_by_id(p.article_id).article.text[p.start : p.end] == p.text


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner):
        self.inner, self.name, self.dimension, self.texts = inner, inner.name, inner.dimension, 0

    def embed(self, texts):
        self.texts += len(texts)
        return self.inner.embed(texts)


class WithoutSentenceVectors:
    """The real store as one written before sentence vectors were kept: it has none to give."""

    def __init__(self, store):
        self.store = store

    def __getattr__(self, name):
        return getattr(self.store, name)

    def sentence_vectors(self, article_ids):
        return {}


def test_retrieval_embeds_only_the_question_when_sentence_vectors_are_stored(library, embedder):
    store, index = library.store, library.index
    counting = CountingEmbedder(embedder)
    stored = retrieve(STRIKE, library=Library(store, counting, index), options=AT_400)
    assert counting.texts == 1 and stored.passages

    # a store written before sentence vectors were kept: the sentences are embedded at question
    # time instead, and the context chosen is the same
    older = retrieve(STRIKE, library=Library(WithoutSentenceVectors(store), counting, index), options=AT_400)
    assert counting.texts > 10
    assert [(p.article_id, p.start, p.end) for p in older.passages] == [
        (p.article_id, p.start, p.end) for p in stored.passages
    ]


def test_stored_sentence_vectors_match_the_embedder_and_go_with_their_article(
    library, embedder, make_store, index_for, sample_dir
):
    import numpy as np

    from qa.chunking import article_sentences

    shared = library.store
    article = shared.articles()[0].article
    spans, vectors = shared.sentence_vectors([article.id])[article.id]
    assert spans == article_sentences(article)
    fresh = embedder.embed([article.text[a:b] for a, b in spans])
    assert np.allclose(vectors, fresh, atol=2e-3)  # kept as float16
    store = make_store(embedder)  # a store of its own to remove the article from
    ingest([article.origin], library=Library(store, embedder, index_for(store)))
    assert store.sentence_vectors([article.id])
    store.remove([article.id])
    assert store.sentence_vectors([article.id]) == {}
    assert (
        store.catalogue.db.execute(
            "SELECT COUNT(*) FROM sentence_vectors WHERE article_id=?", (article.id,)
        ).fetchone()[0]
        == 0
    )


def test_filters_restrict_sources_and_dates(library, embedder):
    only = retrieve(
        STRIKE,
        library=library,
        options=RetrievalOptions(filters=Filters(source="Capital Wire")),
    )
    assert only.passages and {p.source for p in only.passages} == {"Capital Wire"}
    dated = retrieve(
        "tram line",
        library=library,
        options=RetrievalOptions(filters=Filters(since="2026-01-01", until="2026-02-28")),
    )
    assert dated.passages and all("2026-01-01" <= p.date <= "2026-02-28" for p in dated.passages)


def test_cited_answer_from_the_model_is_verified(library, embedder):
    fake = FakeLLM(
        replies=["The workers accepted a 7 per cent pay rise spread over two years [1]. They also got a free car [5]."]
    )
    result = ask(STRIKE, library=library, llm=fake)
    prompt = fake.calls[0][1]["content"]
    assert STRIKE in prompt and "7 per cent" in prompt
    assert not result.refused
    [first] = result.sentences  # the invented claim is not shown
    assert first.supported and first.citations
    assert "7 per cent" in result.passages[first.citations[0] - 1].text
    [invented] = result.dropped
    assert not invented.supported and "car" in invented.missing
    assert "car" not in result.text
    assert all(n <= len(result.passages) for s in result.sentences for n in s.citations)


def test_model_refusal_is_reported_plainly(library, embedder):
    result = ask(
        "What was Korvane's revenue in 2019?",
        library=library,
        llm=FakeLLM(replies=[REFUSAL]),
    )
    assert result.refused and result.text == REFUSAL and result.sentences == []


def test_unsupported_answer_is_a_refusal_with_the_closest_passages_kept(library, embedder):
    result = ask(
        STRIKE,
        library=library,
        llm=FakeLLM(replies=["Bananas are a good source of potassium [1]."]),
    )
    assert result.refused and result.text == REFUSAL and result.sentences == []
    assert result.passages and "stated by the passages" in result.reason
    assert result.dropped[0].text == "Bananas are a good source of potassium."


def test_extractive_backend_cites_sentences_or_says_it_does_not_know(library, embedder):
    result = ask(STRIKE, library=library, llm=None)
    assert not result.refused and result.sentences
    for s in result.sentences:
        assert s.text in result.passages[s.citations[0] - 1].text
    unknown = ask(
        "Who won the 1966 snooker world championship on the moon?",
        library=library,
        llm=None,
    )
    assert unknown.refused


def test_no_passages_means_no_model_call(embedder):
    fake = FakeLLM(replies=["anything [1]."])
    result = answer("Anything?", [], llm=fake, embedder=embedder, options=AskOptions())
    assert result.refused and fake.calls == []


def test_a_single_text_is_embedded_by_the_one_thread_session_to_the_same_vector():
    import numpy as np

    from qa.embeddings import MiniLMEmbedder

    two = MiniLMEmbedder(threads=2)
    assert two.single is not two.session
    question = [STRIKE]
    alone = two.embed(question)
    in_batch = two.embed(question + ["Riverside tram ridership trails the forecast."])[:1]
    assert np.allclose(alone, in_batch, atol=1e-5)
    assert MiniLMEmbedder(threads=1).single is not None
