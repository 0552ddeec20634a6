"""Each `qa eval --format` adapter on small files written here in the public formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.errors import QAError, UsageError
from qa.eval.adapters import load_set, rgb_documents

SECRET = "ZZSECRETEVIDENCE"  # in `evidence` and `question_url`: must never reach the system


def write_lines(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ---- gold --------------------------------------------------------------------------------------


def test_gold_format_reads_every_field(tmp_path):
    gold = write_lines(
        tmp_path / "gold.jsonl",
        [
            {
                "id": "q1",
                "question": "How long is the line?",
                "answers": ["9.4 km", "9.4"],
                "gold_articles": ["a.md"],
                "date": "2024/02/26",
            },
            {"id": "q2", "question": "Which?", "answers": [], "choices": ["x", "y"], "answer_index": 1},
            {"id": "q3", "question": "Unknown?", "answers": [], "unanswerable": True},
            {"id": "q4", "question": "Summarise it.", "summary": "A short summary."},
        ],
    )
    corpus = tmp_path / "articles"
    corpus.mkdir()
    (corpus / "a.md").write_text("---\ntitle: A\n---\nText.")
    s = load_set("gold", gold, workspace=tmp_path / "ws", corpus=[str(corpus)])
    q1, q2, q3, q4 = s.items
    assert q1.answers == ("9.4 km", "9.4") and q1.gold_articles == ("a.md",) and not q1.unanswerable
    assert q1.date == "2024-02-26" and q2.date == ""
    assert q2.choices == ("x", "y") and q2.answer_index == 1 and q2.answers == ("y",)  # the choice text counts
    assert q3.unanswerable and q3.answers == ()
    assert q4.summary == "A short summary."
    assert s.corpora == {"": [corpus / "a.md"]}
    assert load_set("gold", gold, workspace=tmp_path / "ws").corpora == {}  # the user's own collection


@pytest.mark.parametrize(
    "row, message",
    [
        ({"id": "a", "question": "Q?", "answers": ["x"], "choices": ["x"], "answer_index": 3}, "answer_index"),
        ({"id": "a", "question": "Q?"}, "unanswerable"),
        ({"id": "a", "answers": ["x"]}, "question"),
        ({"id": "a", "question": "Q?", "answers": "x", "gold_articles": 5}, "gold_articles"),
        ({"id": "a", "question": "Q?", "answers": "x", "date": "last Tuesday"}, "date"),
    ],
)
def test_gold_format_errors_name_the_line(tmp_path, row, message):
    gold = write_lines(tmp_path / "gold.jsonl", [row])
    with pytest.raises(QAError, match=message) as caught:
        load_set("gold", gold, workspace=tmp_path)
    assert "gold.jsonl:1" in str(caught.value)


def test_gold_ids_must_be_unique_and_usage_errors(tmp_path):
    gold = write_lines(tmp_path / "gold.jsonl", [{"id": "a", "question": "Q?", "answers": ["x"]}] * 2)
    with pytest.raises(QAError, match="twice"):
        load_set("gold", gold, workspace=tmp_path)
    with pytest.raises(UsageError):
        load_set("nope", gold, workspace=tmp_path)
    with pytest.raises(UsageError):
        load_set("gold", tmp_path / "missing.jsonl", workspace=tmp_path)
    with pytest.raises(UsageError):
        load_set("realtimeqa", tmp_path, workspace=tmp_path, mode="noise")


# ---- RealTimeQA ------------------------------------------------------------------------------------


def realtimeqa_week(folder: Path) -> Path:
    questions = [
        {
            "question_id": "20990101_0",
            "question_date": "2099/01/01",
            "question_source": "CNN",
            "question_url": f"https://quiz.test/{SECRET}",
            "question_sentence": "Which team signed the striker?",
            "choices": ["Ashford", "Brill", "Corve", "Dunmere"],
            "answer": ["2"],
            "evidence": f"{SECRET} Corve signed the striker on Monday.",
        },
        {
            "question_id": "20990101_1",
            "question_date": "2099/01/01",
            "question_source": "CNN",
            "question_url": f"https://quiz.test/{SECRET}",
            "question_sentence": "What did the council ban?",
            "choices": ["Kites", "Drones", "Fireworks", "Bonfires"],
            "answer": ["1"],
            "evidence": f"{SECRET} drones",
        },
    ]
    results = [
        {
            "question_id": "20990101_0",
            "search_time": "2099/01/02/10:00",
            "search_result": [
                {
                    "url": "https://news.test/corve-striker",
                    "title": "Corve sign striker",
                    "text": "Corve signed the striker Ola Brandt on Monday for a club record fee. "
                    "The deal runs four years.",
                    "authors": ["A. Writer"],
                    "publish_date": "2099-01-01",
                },
                {
                    "url": "https://news.test/weather",
                    "title": "Weather",
                    "text": "Rain is expected on Friday across the region.",
                    "publish_date": "2099-01-01",
                },
            ],
        },
        {"question_id": "20990101_1", "search_time": "2099/01/02/10:00", "search_result": []},
    ]
    write_lines(folder / "20990101_qa.jsonl", questions)
    write_lines(folder / "20990101_gcs.jsonl", results)
    return folder


def test_realtimeqa_pool_uses_every_search_result_file(tmp_path):
    folder = realtimeqa_week(tmp_path / "rtqa")
    s = load_set("realtimeqa", folder, workspace=tmp_path / "ws")
    assert s.corpora == {"": [folder / "20990101_gcs.jsonl"]}
    first, second = s.items
    assert first.question == "Which team signed the striker?" and first.answer_index == 2
    assert first.answers == ("Corve",) and first.choices[2] == "Corve" and first.corpus == ""
    assert first.date == "2099-01-01"  # question_date: what "this week" means to the model
    assert not second.unanswerable  # in the pool, a question without own results may still be answered
    assert SECRET not in repr(s.items)


def test_realtimeqa_own_mode_isolates_each_question_and_hides_evidence(tmp_path):
    folder = realtimeqa_week(tmp_path / "rtqa")
    s = load_set("realtimeqa", folder, workspace=tmp_path / "ws", mode="own")
    first, second = s.items
    assert first.corpus == "20990101_0" and not first.unanswerable
    (own,) = s.corpora["20990101_0"]
    records = [json.loads(line) for line in own.read_text().splitlines()]
    assert [r["url"] for r in records] == ["https://news.test/corve-striker", "https://news.test/weather"]
    assert second.unanswerable and s.corpora["20990101_1"] == []  # no search results: must say it does not know
    written = "".join(p.read_text() for p in (tmp_path / "ws").rglob("*") if p.is_file())
    assert SECRET not in written and SECRET not in repr(s.items)


# ---- RGB ---------------------------------------------------------------------------------------------


def rgb_row(i: int, answer) -> dict:
    return {
        "id": i,
        "query": f"Who won race {i}?",
        "answer": answer,
        "fakeanswer": "Zed Fake",
        "positive": [f"P{j}: Ann Winner won race {i}." for j in range(3)],
        "positive_wrong": [f"W{j}: Zed Fake won race {i}." for j in range(3)],
        "negative": [f"N{j}: The weather at race {i} was dry." for j in range(6)],
    }


def test_rgb_noise_ratio_picks_documents_as_rgb_does():
    row = rgb_row(1, "Ann Winner")
    kinds = lambda docs: sorted(d[0] for d in docs)
    assert kinds(rgb_documents(row, "noise", 0.0, 5, 0)) == ["N", "N", "P", "P", "P"]  # 3 positives, topped up
    assert kinds(rgb_documents(row, "noise", 0.4, 5, 0)) == ["N", "N", "P", "P", "P"]
    assert kinds(rgb_documents(row, "noise", 0.6, 5, 0)) == ["N", "N", "N", "P", "P"]
    assert kinds(rgb_documents(row, "noise", 0.8, 5, 0)) == ["N", "N", "N", "N", "P"]
    assert kinds(rgb_documents(row, "rejection", 0.0, 5, 0)) == ["N"] * 5
    assert kinds(rgb_documents(row, "counterfactual", 0.0, 3, 0)) == ["W", "W", "W"]
    assert rgb_documents(row, "noise", 0.4, 5, 0) == rgb_documents(row, "noise", 0.4, 5, 0)  # seeded order


def test_rgb_modes_become_items_with_their_own_corpora(tmp_path):
    data = write_lines(tmp_path / "en_fact.json", [rgb_row(0, "Ann Winner"), rgb_row(1, [["Ann Winner", "A. Winner"]])])
    noise = load_set("rgb", data, workspace=tmp_path / "ws", noise=0.4)
    a, b = noise.items
    assert a.answers == ("Ann Winner",) and b.answers == ("Ann Winner", "A. Winner")
    assert a.corpus == "rgb-0" and not a.unanswerable and not a.wrong_answers
    lines = noise.corpora["rgb-0"][0].read_text().splitlines()
    assert len(lines) == 5 and all(json.loads(x)["title"].startswith("Search result") for x in lines)
    rejection = load_set("rgb", data, workspace=tmp_path / "ws", mode="rejection")
    assert all(i.unanswerable for i in rejection.items)
    assert "P0" not in rejection.corpora["rgb-0"][0].read_text()
    fact = load_set("rgb", data, workspace=tmp_path / "ws", mode="counterfactual")
    assert fact.items[0].wrong_answers == ("Zed Fake",) and fact.items[0].answers == ("Ann Winner",)
    assert "Ann Winner" not in fact.corpora["rgb-0"][0].read_text()
    with pytest.raises(UsageError):
        load_set("rgb", data, workspace=tmp_path / "ws", noise=1.5)


# ---- SQuAD sample --------------------------------------------------------------------------------------


def test_squad_sample_pairs_questions_with_their_paragraph(tmp_path):
    folder = tmp_path / "squad"
    folder.mkdir()
    para = "The Vellmar bridge opened in 1931. It spans the river Oste and carries a railway."
    (folder / "queries.json").write_text(
        json.dumps(
            {
                "queries": [
                    {"id": "x1", "context": para, "question": "When did the Vellmar bridge open?"},
                    {"id": "x2", "context": para, "question": "What does the bridge carry?"},
                ]
            }
        )
    )
    (folder / "ground_truth.json").write_text(
        json.dumps({"x1": {"answers": ["1931", "1931"], "is_impossible": False}, "x2": {"answers": ["a railway"]}})
    )
    s = load_set("squad", folder, workspace=tmp_path / "ws")
    x1, x2 = s.items
    assert x1.answers == ("1931",) and x2.answers == ("a railway",)  # duplicates dropped
    assert x1.gold_articles == x2.gold_articles and len(x1.gold_articles[0]) == 16
    (pool,) = s.corpora[""]
    assert len(pool.read_text().splitlines()) == 1  # one paragraph, once
    own = load_set("squad", folder, workspace=tmp_path / "ws", mode="own")
    assert own.items[0].corpus == "squad-x1" and len(own.corpora) == 2


# ---- summaries ------------------------------------------------------------------------------------------


def test_summaries_from_the_news_summary_set_keep_every_reference(tmp_path):
    body = "The Oste bridge reopened on Monday after repairs. Trains run every hour again."
    data = tmp_path / "writer_summaries.json"
    data.write_text(
        json.dumps(
            [
                {"article_id": "7", "article": body, "summary": "The bridge reopened."},
                {"article_id": "7", "article": body, "summary": " Trains  run again. "},
                {"article_id": "9", "article": "Another story about rain in the valley.", "summary": "Rain."},
            ]
        )
    )
    s = load_set("summaries", data, workspace=tmp_path / "ws")
    first, second = s.items
    assert first.id == "7" and first.question == "" and first.summary == "The bridge reopened.\n\nTrains run again."
    assert first.gold_articles == ("summaries://7",)
    (corpus,) = s.corpora[""]
    assert [json.loads(x)["url"] for x in corpus.read_text().splitlines()] == ["summaries://7", "summaries://9"]


def test_summaries_as_json_lines_name_articles_of_the_corpus(tmp_path):
    lines = write_lines(tmp_path / "summaries.jsonl", [{"article": "a.md", "summary": "A summary."}])
    (item,) = load_set("summaries", lines, workspace=tmp_path, corpus=[str(tmp_path / "a.md")]).items
    assert item.gold_articles == ("a.md",) and item.summary == "A summary."
    with pytest.raises(QAError, match="'article'"):
        load_set("summaries", write_lines(tmp_path / "bad.jsonl", [{"summary": "x"}]), workspace=tmp_path)
