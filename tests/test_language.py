"""Questions and articles not in English: the embedder is English-only, so an answer says so in its
footer (`Answer.language_note`, shown by `qa ask` and in --json) instead of answering as if nothing
were wrong. The check is a small heuristic with no dependency (qa/language.py)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from qa.cli import app
from qa.language import language, language_note
from qa.records import Passage


@pytest.mark.parametrize(
    "text, expected",
    [
        ("What did the union demand?", ""),
        ("Who is Harrowfield Athletic's new manager, and when was he named?", ""),
        ("Korvane strike", ""),  # too few common words to tell: taken as English
        ("Was hat die Gewerkschaft gefordert?", "German"),
        ("Qu'est-ce que le syndicat a demandé pour les salaires ?", "French"),
        ("¿Qué pidió el sindicato a la empresa?", "Spanish"),
        ("Che cosa ha chiesto il sindacato per gli operai?", "Italian"),
        ("工会要求了什么？", "Chinese"),
        ("ماذا طالبت النقابة؟", "Arabic"),
        ("Чего требовал профсоюз?", "Cyrillic-script"),
        ("組合は何を要求しましたか？", "Japanese"),
        ("노조는 무엇을 요구했습니까?", "Korean"),
        ("The ferry operator will add two evening sailings to the island from February.", ""),
        ("Los trabajadores de la planta votaron a favor de la huelga por el salario.", "Spanish"),
    ],
)
def test_language_of_a_text(text, expected):
    assert language(text) == expected


def _passage(n: int, text: str) -> Passage:
    return Passage(n, f"a{n}", text, 0, len(text))


def test_the_note_names_the_question_or_the_passages():
    english = [_passage(1, "The union is demanding a 9 per cent pay rise for 2026.")]
    arabic = [_passage(n, "طالبت النقابة بزيادة في الأجور بنسبة تسعة في المئة هذا العام.") for n in (1, 2)]
    assert language_note("What did the union demand?", english) == ""
    assert language_note("工会要求了什么？", english).startswith("The question looks Chinese, but the embedder")
    assert language_note("What did the union demand?", arabic).startswith("2 of the 2 passages look Arabic")
    assert language_note("ماذا طالبت النقابة؟", arabic).startswith("The question looks Arabic")


@pytest.fixture
def cli(monkeypatch, sample_dir):
    monkeypatch.setenv("QA_EMBEDDER", "fake")
    runner = CliRunner()
    invoke = lambda *args: runner.invoke(app, [str(a) for a in args], prog_name="qa")
    assert invoke("ingest", sample_dir).exit_code == 0
    return invoke


def test_ask_says_so_in_its_footer_and_its_json(cli, tmp_path):
    chinese = json.loads(cli("ask", "--llm", "extractive", "--json", "工会要求了什么？").stdout)
    assert chinese["language_note"].startswith("The question looks Chinese")
    english = json.loads(cli("ask", "--llm", "extractive", "--json", "What did the union demand?").stdout)
    assert english["language_note"] is None
    shown = cli("ask", "--llm", "extractive", "ماذا طالبت النقابة؟")
    assert shown.exit_code == 0 and "Note: The question looks Arabic" in " ".join(shown.stdout.split())
    # an Arabic article asked about in Arabic: the answer is flagged, whatever it found
    (tmp_path / "ar.txt").write_text(
        "النقابة تطالب بزيادة الأجور\n\n" + "طالبت النقابة بزيادة في الأجور بنسبة تسعة في المئة هذا العام. " * 5
    )
    assert cli("ingest", tmp_path / "ar.txt").exit_code == 0
    flagged = json.loads(cli("ask", "--llm", "extractive", "--json", "ماذا طالبت النقابة؟").stdout)
    assert flagged["language_note"].startswith("The question looks Arabic")


def test_chat_turns_carry_the_note_into_their_transcript(sample_library, tmp_path):
    from qa.chat.session import new_session, transcript_markdown
    from qa.chat.turns import ask_turn

    session = new_session()
    turn = ask_turn(session, "工会要求了什么？", library=sample_library, llm=None)
    assert turn.answer is not None and turn.answer.language_note.startswith("The question looks Chinese")
    assert "⚠ The question looks Chinese" in transcript_markdown(session)
