"""Which grounding checks refuse what: `qa.grounding.ground` re-run on the replies an eval run
recorded, with each check removed in turn (no model calls: the same code path as a live run, on
the same `raw` reply and the same passages, rebuilt from the eval's store).

    .venv/bin/python eval/replay_checks.py RUN [RUN ...] [--home QA_HOME]

RUN is a `qa eval` run folder; its rows are answerable unless marked unanswerable (an RGB
rejection run counts as unanswerable). Prints, per variant, the share of answerable and of
unanswerable questions refused and Youden's J (unanswerable refused - answerable refused).
"""

from __future__ import annotations

import argparse
import glob
import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import qa.grounding as grounding  # noqa: E402
from qa.records import Passage  # noqa: E402
from qa.settings import load_settings  # noqa: E402


def articles(home: Path) -> dict[str, tuple[str, str, str]]:
    """Every eval store's articles: id -> (text, title, date)."""
    found = {}
    for db in glob.glob(str(home / "eval" / "stores" / "*.sqlite")):
        for article_id, text, title, date in sqlite3.connect(db).execute("SELECT id, text, title, date FROM articles"):
            found[article_id] = (text, title or "", date or "")
    return found


def rows(run: Path, texts: dict) -> list[tuple[bool, str, str, list[Passage]]]:
    """(unanswerable, question, raw reply, passages) per recorded item."""
    rejection = "rejection" in run.name
    out = []
    for line in (run / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        passages = []
        for c in r["context"]:
            text, title, date = texts[c["article_id"]]
            piece = text[c["start"] : c["end"]]
            passages.append(Passage(c["n"], c["article_id"], piece, c["start"], c["end"], title=title, date=date))
        out.append((rejection or bool(r.get("unanswerable")), r["question"], r["raw"], passages))
    return out


def _skip(*args: object) -> None:
    return None


VARIANTS: dict[str, tuple[Callable, Callable, int]] = {
    "all (the default)": (grounding._question_check, grounding._type_check, grounding.WINDOW),
    "without question terms": (_skip, grounding._type_check, grounding.WINDOW),
    "without answer type": (grounding._question_check, _skip, grounding.WINDOW),
    "claim check only": (_skip, _skip, 0),
    "with 'stated together', window 2": (grounding._question_check, grounding._type_check, 2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--home", type=Path, default=None, help="the QA_HOME the runs used (default: settings)")
    args = parser.parse_args()
    home = args.home or load_settings().home
    texts = articles(Path(home))
    items = [item for run in args.runs for item in rows(run, texts)]
    question_check, type_check = grounding._question_check, grounding._type_check
    print(f"{len(items)} items from {', '.join(r.name for r in args.runs)}")
    print(f"{'variant':36} {'answerable refused':>20} {'unanswerable refused':>22} {'J':>7}")
    try:
        for name, (q, t, window) in VARIANTS.items():
            grounding._question_check, grounding._type_check = q, t
            refused = {True: [0, 0], False: [0, 0]}
            for unanswerable, question, raw, passages in items:
                refused[unanswerable][0] += 1
                refused[unanswerable][1] += grounding.ground(question, raw, passages, window=window).refused
            a = refused[False][1] / refused[False][0] if refused[False][0] else float("nan")
            u = refused[True][1] / refused[True][0] if refused[True][0] else float("nan")
            print(f"{name:36} {a:20.3f} {u:22.3f} {u - a:7.3f}")
    finally:
        grounding._question_check, grounding._type_check = question_check, type_check


if __name__ == "__main__":
    main()
