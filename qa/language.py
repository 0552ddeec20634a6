"""Is a text English? A small check with no dependency, for the one thing it decides: the embedder
(all-MiniLM-L6-v2) is English-only, so a question or passages in another language are matched
poorly, and an answer says so instead of answering as if nothing were wrong.

Two signs: the share of a text's letters that are ASCII (Chinese, Arabic, Russian ... have almost
none), and, for Latin-script text, whether it uses more of another language's commonest words than
of English's."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from .records import Passage

_ENGLISH = set(
    "the of and to is was that for it on with as are be by at this from have has not but they said will which "
    "who what when where why how did does do their an or were would could should been its about into than".split()
)
# each language's commonest words that are not English words too
_LATIN = {
    "French": "le la les des est une dans que qui pour pas sur avec sont du au et il elle ce cette quel quelle".split(),
    "German": "der die das und ist nicht ein eine mit sich auf den dem für von zu wird sind hat wer wie wann".split(),
    "Spanish": "el la los las que de y en un una es por con para del se más su al como qué quién cuándo".split(),
    "Italian": "il lo gli che di e un una per non con del della sono al nel si come anche chi cosa quando".split(),
    "Portuguese": "o os que de e um uma para com não do da em no na se por mais quem quando".split(),
    "Dutch": "de het een en van niet dat op te zijn met voor ook aan er maar wie wat wanneer".split(),
}
_SCRIPTS = {  # the first word of a letter's Unicode name -> the language or script it shows
    "CJK": "Chinese",
    "HIRAGANA": "Japanese",
    "KATAKANA": "Japanese",
    "HANGUL": "Korean",
    "ARABIC": "Arabic",
    "HEBREW": "Hebrew",
    "CYRILLIC": "Cyrillic-script",
    "GREEK": "Greek",
    "DEVANAGARI": "Hindi",
    "THAI": "Thai",
}
_WORD = re.compile(r"[^\W\d_]+")


def language(text: str) -> str:
    """The language `text` is in when it is clearly not English ("Chinese", "French", ...); "" when
    it is English or too short to tell."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 4:
        return ""
    foreign = [c for c in letters if not c.isascii()]
    if len(foreign) > len(letters) / 2:
        scripts = Counter(unicodedata.name(c, "? ?").split()[0] for c in foreign)
        if scripts["HIRAGANA"] + scripts["KATAKANA"]:
            return "Japanese"
        return _SCRIPTS.get(scripts.most_common(1)[0][0], "non-Latin-script")
    words = _WORD.findall(text.lower())
    english = sum(w in _ENGLISH for w in words)
    name, hits = max(((name, sum(w in common for w in words)) for name, common in _LATIN.items()), key=lambda x: x[1])
    return name if hits >= 2 and hits > english else ""


def language_note(question: str, passages: Sequence[Passage]) -> str:
    """What an answer's footer says when the question or its passages are not English; "" otherwise."""
    asked = language(question)
    if asked:
        return (
            f"The question looks {asked}, but the embedder is English-only: the passages found may be "
            "unrelated to it. Ask in English for a reliable answer."
        )
    other = Counter(lang for p in passages if (lang := language(p.text)))
    if other and sum(other.values()) * 2 >= len(passages):
        names = " and ".join(sorted(other))
        return (
            f"{sum(other.values())} of the {len(passages)} passages look {names}; the embedder is English-only, "
            "so they may have been matched poorly."
        )
    return ""
