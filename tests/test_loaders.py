"""Loaders: every supported shape becomes Articles with clean metadata; every bad input becomes
one LoadProblem with a one-line reason, and never stops the other files from loading."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from qa.ingest.articles import article_id, make_article, normalise_date, source_from_url
from qa.ingest.loaders import LoadProblem, expand_paths, load_file

BODY = (
    "The harbour authority approved a new ferry terminal on Tuesday. "
    "Construction will start in April and cost 42 million euros.\n\n"
    "Local traders welcomed the decision, saying it would bring more visitors to the old town."
)

HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Harbour bridge reopens after repairs | Coastal Times</title>
<meta name="author" content="Marta Quill">
<meta property="og:site_name" content="Coastal Times">
<meta property="og:title" content="Harbour bridge reopens after repairs">
<meta property="article:published_time" content="2024-03-09T08:15:00+00:00">
<link rel="canonical" href="https://coastal-times.test/news/2024/03/09/harbour-bridge-reopens">
</head><body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/sport">Sport</a></li>
<li><a href="/weather">Weather forecast menu</a></li></ul></nav></header>
<main><article>
<h1>Harbour bridge reopens after repairs</h1>
<p>The Harbour Bridge in Port Calder reopened to traffic on Saturday after eleven weeks of repairs to its
corroded steel cables, the city transport office said.</p>
<p>Engineers replaced 42 cable anchors and resurfaced the main deck, at a cost of 18 million pounds, about
2 million more than first planned.</p>
<p>Commuters had faced detours of up to forty minutes while the crossing was closed, and local shops reported
falling trade during the works.</p>
</article></main>
<footer><p>Copyright 2024 Coastal Times. All rights reserved. Subscribe to our newsletter for daily updates.</p>
<a href="/privacy">Privacy policy</a></footer>
</body></html>
"""


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def only_article(path: Path):
    loaded = load_file(path)
    assert loaded.problems == [], loaded.problems
    assert len(loaded.articles) == 1
    return loaded.articles[0]


def only_problem(path: Path, **kwargs) -> LoadProblem:
    loaded = load_file(path, **kwargs)
    assert loaded.articles == []
    assert len(loaded.problems) == 1, loaded.problems
    problem = loaded.problems[0]
    assert problem.fatal
    assert "\n" not in problem.reason and problem.reason.strip()
    return problem


# ---- supported shapes ----------------------------------------------------------------------


def test_txt_with_source_and_date_header(tmp_path):
    a = only_article(
        write(
            tmp_path / "ferry.txt", f"Ferry terminal approved\nSource: Harbour Herald\nDate: March 5, 2024\n\n{BODY}\n"
        )
    )
    assert a.title == "Ferry terminal approved"
    assert a.source == "Harbour Herald"
    assert a.date == "2024-03-05"
    assert a.text.startswith("The harbour authority approved")
    assert "Source:" not in a.text and "Date:" not in a.text and "Ferry terminal approved" not in a.text
    assert a.origin == str(tmp_path / "ferry.txt")
    assert a.id == article_id(a.text)


def test_txt_without_header_uses_the_first_line_as_title(tmp_path):
    a = only_article(write(tmp_path / "plain.txt", f"Ferry terminal approved\n\n{BODY}"))
    assert a.title == "Ferry terminal approved"
    assert (a.source, a.date, a.url) == ("", "", "")
    assert a.text.startswith("The harbour authority approved")
    assert a.text.endswith("visitors to the old town.")


def test_txt_source_line_inside_the_body_is_text_not_header(tmp_path):
    # Only the block at the top is a header; an attribution line further down must not
    # swallow the paragraphs before it.
    text = (
        "Ferry terminal approved\n\nThe harbour authority approved a terminal.\n"
        "Work starts in April.\nSource: Harbour Herald archive\nTraders welcomed it."
    )
    a = only_article(write(tmp_path / "late.txt", text))
    assert a.text.startswith("The harbour authority approved a terminal.")
    assert "Work starts in April." in a.text
    assert "Source: Harbour Herald archive" in a.text
    assert a.source == ""


def test_markdown_front_matter(tmp_path):
    md = (
        '---\ntitle: "Ferry terminal approved"\nsource: Harbour Herald\ndate: 2024-03-05T09:30:00Z\n'
        "url: https://www.harbour-herald.test/news/ferry\nauthor: Ana Ruiz\n---\n\n" + BODY
    )
    a = only_article(write(tmp_path / "ferry.md", md))
    assert a.title == "Ferry terminal approved"
    assert a.source == "Harbour Herald"
    assert a.date == "2024-03-05"
    assert a.url == "https://www.harbour-herald.test/news/ferry"
    assert a.author == "Ana Ruiz"
    assert a.text.startswith("The harbour authority approved")
    assert "---" not in a.text and "author:" not in a.text


def test_markdown_source_defaults_to_the_url_host(tmp_path):
    md = "---\ntitle: T\nurl: https://www.harbour-herald.test/news/ferry\n---\n" + BODY
    assert only_article(write(tmp_path / "a.md", md)).source == "harbour-herald.test"
    assert source_from_url("https://WWW.Example.test/x") == "example.test"


def test_html_metadata_and_boilerplate(tmp_path):
    a = only_article(write(tmp_path / "bridge.html", HTML))
    assert a.title == "Harbour bridge reopens after repairs"
    assert a.date == "2024-03-09"
    assert a.author == "Marta Quill"
    assert a.url == "https://coastal-times.test/news/2024/03/09/harbour-bridge-reopens"
    assert a.source == "Coastal Times"
    assert "42 cable anchors" in a.text and "local shops reported falling trade" in a.text
    for boilerplate in ("Weather forecast menu", "All rights reserved", "Privacy policy", "newsletter"):
        assert boilerplate not in a.text


def test_json_array_records(tmp_path):
    records = [
        {
            "title": "Ferry terminal approved",
            "text": BODY,
            "url": "https://harbour-herald.test/ferry",
            "date": "05/03/2024 is not ISO",
            "source": "Harbour Herald",
        },
        {"text": "Only text here, with enough words to count as an article body."},
    ]
    path = write(tmp_path / "batch.json", json.dumps(records, indent=2))
    loaded = load_file(path)
    assert [(p.origin, p.fatal) for p in loaded.problems] == [(f"{path}#1", False)]  # its date: a warning
    assert "'05/03/2024 is not ISO' is not a date" in loaded.problems[0].reason
    first, second = loaded.articles
    assert (first.title, first.source, first.url) == (
        "Ferry terminal approved",
        "Harbour Herald",
        "https://harbour-herald.test/ferry",
    )
    assert first.date == ""  # unparseable dates are dropped, never guessed
    assert first.origin.endswith("batch.json#1") and second.origin.endswith("batch.json#2")
    assert second.title == "Only text here, with enough words to count as an article body."
    assert second.source == "" and second.date == ""


def test_jsonl_records_with_optional_fields(tmp_path):
    lines = [
        {"text": BODY, "title": "Ferry", "url": "https://www.harbour-herald.test/ferry", "date": "2024-03-05"},
        {"content": "A second article in the content field, long enough to be kept."},
        {"text": "Third one.", "published": "Tue, 05 Mar 2024 10:00:00 GMT", "source": "Wire"},
    ]
    path = write(tmp_path / "feed.jsonl", "\n".join(json.dumps(r) for r in lines) + "\n\n")
    loaded = load_file(path)
    assert loaded.problems == []
    a, b, c = loaded.articles
    assert (a.title, a.source, a.date) == ("Ferry", "harbour-herald.test", "2024-03-05")
    assert b.text.startswith("A second article")
    assert (c.source, c.date) == ("Wire", "2024-03-05")
    assert [x.origin.rsplit(":", 1)[1] for x in (a, b, c)] == ["1", "2", "3"]


def test_pretty_printed_json_object_is_one_record(tmp_path):
    record = {"title": "Ferry terminal approved", "text": BODY, "date": "2024-03-05"}
    a = only_article(write(tmp_path / "one.json", json.dumps(record, indent=2)))
    assert a.title == "Ferry terminal approved" and a.date == "2024-03-05"
    assert "42 million euros" in a.text


def test_realtimeqa_gcs_jsonl_gives_one_article_per_search_result(tmp_path):
    line1 = {
        "question_id": "20230105_0",
        "search_result": [
            {
                "url": "https://www.wire-one.test/2023/01/05/storm",
                "title": "Storm closes ports",
                "text": "A winter storm closed three ports on Thursday. Ferries were cancelled until Friday.",
                "authors": ["Ann Lee", "Bo Chen"],
                "publish_date": "2023/01/05",
            },
            {
                "url": "https://wire-two.test/markets",
                "title": "Markets slip",
                "text": "Stocks slipped on Thursday as investors weighed new jobs data.",
                "authors": [],
                "publish_date": "2023/01/04",
            },
        ],
    }
    line2 = {
        "question_id": "20230105_1",
        "search_result": [
            {
                "url": "https://wire-three.test/election",
                "title": "Election date set",
                "text": "The election will be held on 12 March, the commission said.",
                "authors": ["Cy Diaz"],
                "publish_date": "2023/01/03",
            },
        ],
    }
    path = write(tmp_path / "20230105_qa_gcs.jsonl", json.dumps(line1) + "\n" + json.dumps(line2) + "\n")
    loaded = load_file(path)
    assert loaded.problems == []
    assert [a.title for a in loaded.articles] == ["Storm closes ports", "Markets slip", "Election date set"]
    storm, markets, election = loaded.articles
    assert storm.date == "2023-01-05" and markets.date == "2023-01-04" and election.date == "2023-01-03"
    assert storm.author == "Ann Lee, Bo Chen" and markets.author == ""
    assert storm.source == "wire-one.test" and storm.url == "https://www.wire-one.test/2023/01/05/storm"
    assert storm.text.startswith("A winter storm") and storm.text.endswith("until Friday.")
    assert storm.origin.endswith(":1[0]") and markets.origin.endswith(":1[1]") and election.origin.endswith(":2[0]")
    assert len({a.id for a in loaded.articles}) == 3


def test_realtimeqa_result_without_text_is_reported_and_others_load(tmp_path):
    line = {
        "question_id": "q",
        "search_result": [
            {"url": "https://a.test/x", "title": "Empty", "text": "", "publish_date": "2023/01/05"},
            {
                "url": "https://b.test/y",
                "title": "Full",
                "text": "Some real article text here.",
                "publish_date": "2023/01/05",
            },
        ],
    }
    loaded = load_file(write(tmp_path / "x_gcs.jsonl", json.dumps(line)))
    assert [a.title for a in loaded.articles] == ["Full"]
    assert len(loaded.problems) == 1
    assert loaded.problems[0].origin.endswith(":1[0]") and "no text" in loaded.problems[0].reason


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2023/01/05", "2023-01-05"),
        ("2023-1-5", "2023-01-05"),
        ("2024-03-09T08:15:00+00:00", "2024-03-09"),
        ("2024-03-09T23:59:00Z", "2024-03-09"),
        ("20240309", "2024-03-09"),
        ("Sat, 09 Mar 2024 08:15:00 GMT", "2024-03-09"),
        ("March 9, 2024", "2024-03-09"),
        ("Mar 9, 2024", "2024-03-09"),
        ("9 March 2024", "2024-03-09"),
        ("2024-02-30", ""),
        ("next Tuesday", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_normalise_date(raw, expected):
    assert normalise_date(raw) == expected


def test_article_id_is_stable_under_whitespace_and_case():
    base = make_article(BODY, title="Ferry")
    respaced = make_article(
        "  " + BODY.upper().replace(" ", "   \t ").replace("\n\n", "\n\n\n\n") + "\n", title="Another title"
    )
    assert base.id == respaced.id
    assert len(base.id) == 16
    assert make_article(BODY.replace("42", "43"), title="Ferry").id != base.id
    assert article_id("Hello   World") == article_id("hello world")


def test_files_of_different_formats_with_the_same_words_share_an_id(tmp_path):
    txt = only_article(write(tmp_path / "a.txt", f"Ferry\nSource: X\nDate: 2024-03-05\n\n{BODY}"))
    md = only_article(write(tmp_path / "b.md", f"---\ntitle: Ferry again\n---\n{BODY.lower()}"))
    assert txt.id == md.id


def test_clean_text_drops_control_characters_and_normalises_line_ends(tmp_path):
    a = only_article(write(tmp_path / "c.txt", b"Title\r\n\r\nFirst line\x07 with a bell.\r\nSecond\tline.\r\n"))
    assert a.text == "First line with a bell.\nSecond line."


# ---- bad input: one clear problem each -------------------------------------------------------


def test_empty_and_blank_files(tmp_path):
    assert only_problem(write(tmp_path / "empty.txt", "")).reason == "file is empty"
    assert only_problem(write(tmp_path / "blank.md", "  \n\n \t\n")).reason == "file is empty"
    # found by hypothesis: U+0085 (NEL) is white space to str.strip but not to the emptiness check
    assert "only white space" in only_problem(write(tmp_path / "nel.json", "\x85")).reason


def test_binary_file(tmp_path):
    problem = only_problem(write(tmp_path / "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))))
    assert "binary" in problem.reason


def test_cp1252_text_is_read_with_a_warning(tmp_path):
    text = "Caf\u00e9 owners \u201cwelcome\u201d the plan \u2013 prices rise by 5\u20ac."
    path = write(tmp_path / "win.txt", ("Title line\n\n" + text).encode("cp1252"))
    loaded = load_file(path)
    assert [a.text for a in loaded.articles] == [text]
    assert len(loaded.problems) == 1
    warning = loaded.problems[0]
    assert not warning.fatal and "Windows-1252" in warning.reason


def test_undecodable_text_is_a_clear_error(tmp_path):
    # 0x81 and 0x8d are undefined in Windows-1252 and invalid as UTF-8 start bytes
    problem = only_problem(write(tmp_path / "bad.txt", b"Title\n\nSome text \x81\x8d here."))
    assert "not UTF-8" in problem.reason and "iconv" in problem.reason


def test_utf8_bom_is_not_part_of_the_text(tmp_path):
    a = only_article(write(tmp_path / "bom.md", "\ufeff---\ntitle: Bom\n---\n" + BODY))
    assert a.title == "Bom" and a.text.startswith("The harbour")


def test_huge_file_is_rejected_by_size_without_reading_it(tmp_path, monkeypatch):
    path = tmp_path / "huge.txt"
    with open(path, "wb") as handle:
        handle.truncate(50_000_000)  # sparse: 50 MB on paper, nothing on disk

    def no_read(*args, **kwargs):
        raise AssertionError("the file was read")

    monkeypatch.setattr(Path, "read_bytes", no_read)
    monkeypatch.setattr(Path, "read_text", no_read)
    problem = only_problem(path)
    assert "50.0 MB" in problem.reason and "20 MB limit" in problem.reason and "QA_MAX_FILE_MB" in problem.reason


def test_html_without_article_text(tmp_path):
    html = (
        "<html><head><title>Menu</title></head><body><nav><a href='/'>Home</a> <a href='/a'>About</a></nav>"
        "</body></html>"
    )
    assert only_problem(write(tmp_path / "nav.html", html)).reason == "no article text found in the HTML"


def test_header_without_body(tmp_path):
    problem = only_problem(write(tmp_path / "hdr.md", "---\ntitle: Nothing here\n---\n\n"))
    assert "no article text" in problem.reason


def test_malformed_json_line_names_the_line_and_other_lines_load(tmp_path):
    good1 = json.dumps({"text": "First good record with text."})
    good3 = json.dumps({"text": "Third good record with text."})
    path = write(tmp_path / "mixed.jsonl", f'{good1}\n{{"text": "broken\n{good3}\n')
    loaded = load_file(path)
    assert [a.text for a in loaded.articles] == ["First good record with text.", "Third good record with text."]
    assert len(loaded.problems) == 1
    problem = loaded.problems[0]
    assert problem.fatal and problem.origin == f"{path}:2" and "line 2" in problem.reason


def test_malformed_json_array_is_one_problem_with_the_line(tmp_path):
    problem = only_problem(write(tmp_path / "broken.json", '[\n  {"text": "a"},\n  {"text": }\n]'))
    assert "line 3" in problem.reason


def test_record_without_text_and_non_object_records(tmp_path):
    path = write(tmp_path / "odd.json", json.dumps([{"title": "no text"}, "just a string", {"text": "Kept."}]))
    loaded = load_file(path)
    assert [a.text for a in loaded.articles] == ["Kept."]
    reasons = {p.origin.rsplit("#", 1)[1]: p.reason for p in loaded.problems}
    assert set(reasons) == {"1", "2"}
    assert "no text" in reasons["1"] and "JSON object" in reasons["2"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads chmod 000 files; see the test run as nobody below")
def test_unreadable_file_chmod_000(tmp_path):
    path = write(tmp_path / "secret.txt", BODY)
    path.chmod(0)
    try:
        assert "permission denied" in only_problem(path).reason
    finally:
        path.chmod(0o644)


SYSTEM_PYTHON = "/usr/bin/python3"  # the venv's interpreter may live where `nobody` cannot reach


@pytest.mark.skipif(
    os.geteuid() != 0 or not os.access(SYSTEM_PYTHON, os.X_OK),
    reason="needs root (to drop to another user) and a system python3",
)
def test_unreadable_file_as_an_unprivileged_user():
    # Tests run as root, for whom chmod 000 blocks nothing: read it as `nobody` instead.
    # qa.ingest.loaders needs only the standard library, so a system python can import it.
    folder = Path(tempfile.mkdtemp(prefix="qa-perm-"))  # tmp_path's parents are closed to `nobody`
    path = folder / "secret.txt"
    try:
        folder.chmod(0o755)
        write(path, BODY).chmod(0)
        code = (
            "import sys, json; from pathlib import Path; from qa.ingest.loaders import load_file; "
            "l = load_file(Path(sys.argv[1])); "
            "print(json.dumps([len(l.articles), [p.reason for p in l.problems]]))"
        )
        repo = str(Path(__file__).resolve().parent.parent)
        run = subprocess.run(
            [SYSTEM_PYTHON, "-c", code, str(path)],
            user=65534,
            group=65534,
            cwd="/",
            env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": repo},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout) == [0, ["cannot read file: permission denied"]]
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()


def test_a_directory_given_as_a_file_fails_cleanly(tmp_path):
    # A path that exists but cannot be read as a file, even by root.
    folder = tmp_path / "looks-like.txt"
    folder.mkdir()
    assert only_problem(folder).reason == "not a regular file"


def test_a_fifo_is_refused_instead_of_blocking(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    result: list = []
    worker = threading.Thread(target=lambda: result.append(load_file(fifo)), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "reading a FIFO blocked"
    assert [p.reason for p in result[0].problems] == ["not a regular file"]


def test_file_size_limit_is_a_parameter(tmp_path):
    path = write(tmp_path / "a.txt", "Title\n\n" + "word " * 400)
    assert "over the" in only_problem(path, max_bytes=1000).reason
    assert len(load_file(path, max_bytes=10_000).articles) == 1


# ---- finding files -----------------------------------------------------------------------------


def test_expand_paths_folders_globs_and_missing(tmp_path):
    write(tmp_path / "news" / "b.txt", BODY)
    write(tmp_path / "news" / "a.md", BODY)
    write(tmp_path / "news" / "deep" / "c.JSONL", "{}")
    write(tmp_path / "news" / "notes.docx", b"PK")
    write(tmp_path / "news" / ".git" / "x.txt", BODY)
    write(tmp_path / "news" / ".hidden" / "y.txt", BODY)
    write(tmp_path / "other.html", HTML)
    files, problems = expand_paths(
        [
            str(tmp_path / "news"),
            str(tmp_path / "*.html"),
            str(tmp_path / "news" / "a.md"),
            str(tmp_path / "missing.txt"),
            str(tmp_path / "*.nothing"),
        ]
    )
    names = [f.relative_to(tmp_path).as_posix() for f in files]
    assert names == ["news/a.md", "news/b.txt", "news/deep/c.JSONL", "other.html"]  # a.md once
    assert [(Path(p.origin).name, p.reason) for p in problems] == [
        ("missing.txt", "no such file or folder"),
        ("*.nothing", "no file matches this pattern"),
    ]


def test_recursive_glob(tmp_path):
    write(tmp_path / "x" / "y" / "z.txt", BODY)
    write(tmp_path / "x" / "top.txt", BODY)
    files, problems = expand_paths([str(tmp_path / "x" / "**" / "*.txt")])
    assert problems == []
    assert sorted(f.name for f in files) == ["top.txt", "z.txt"]


def test_folder_with_nothing_to_read_is_reported(tmp_path):
    (tmp_path / "empty").mkdir()
    write(tmp_path / "docs" / "a.docx", b"PK")
    files, problems = expand_paths([str(tmp_path / "empty"), str(tmp_path / "docs")])
    assert files == []
    assert [(Path(p.origin).name, "folder has no" in p.reason) for p in problems] == [("empty", True), ("docs", True)]
