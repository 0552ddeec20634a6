"""Claim checks that read the claim: does a passage state what a sentence says?

Similar words are not enough. A sentence is stated by a passage when every number in it, every
name, and every content word (stemmed, so "accepted" matches "accept" and "won" matches "win",
but "won" does not match "nominated") occurs in the passage, and when it is negated only if the
passage is. The words a sentence adds to the passage are what a small model invents: a country,
a count, an action ("Portugal closed its beaches after three shark attacks" cited to a passage
about one tourist bitten in Hawaii misses portugal, 3, close, beach and attack).

A question's own names and numbers must also occur in the evidence (text, title or date): a
passage about the 2024 Super Bowl does not answer a question about the 2021 one, however well
an answer built from it is worded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer  # type: ignore[import-untyped]

from .chunking import sentence_spans

# Function words, and words that talk about the passages instead of stating a fact.
_STOP = frozenset(
    """
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself now of off on once only or
other our ours ourselves out over own same she should so some such than that the their theirs them themselves then
there these they this those through to too under until up very was we were what when where which while who whom
why will with would you your yours yourself yourselves also whose its may might must shall per
according report reports reported said says say told tell tells passage passages article articles text state states
stated mention mentions mentioned indicate indicates indicated describe describes described
""".split()
)
# Light verbs carry no claim of their own ("the strike lasted 23 days" adds nothing to "a 23-day
# strike" but the number, which is checked): their absence from a passage is not a missing fact.
# Verbs of outcome ("won", "beat", "nominated", "resigned") are not here: they are the claim.
_LIGHT = frozenset(
    "last lasted lasts lasting become became becomes remain remained remains happen happened happens occur "
    "occurred occurs include included includes including involve involved involves contain contained contains "
    "consist consisted consists get got gets make made makes take took takes taken go went goes come came comes "
    "seem seemed seems appear appeared appears use used uses".split()
)
# Verbs of outcome: the fact a question about them asks for. "Who won?" answered "Nadal won [1]" is
# stated only by a passage that says he won, not by one where he merely reached the final.
_OUTCOME_WORDS = (
    "win won wins winner lose lost loses beat beaten defeat defeated elect elected appoint appointed nominate "
    "nominated award awarded die died dead kill killed arrest arrested charge charged convict convicted acquit "
    "acquitted sentence sentenced resign resigned fire fired hire hired sign signed acquire acquired buy bought "
    "sell sold merge merged approve approved reject rejected ban banned veto vetoed pass passed launch launched "
    "release released announce announced found founded open opened close closed cancel cancelled canceled "
    "invent invented discover discovered score scored marry married divorce divorced injure injured "
    "crash crashed strike struck attack attacked invade invaded"
)
_NEGATION = frozenset("not no never without neither nor none nobody nothing cannot".split())
_IRREGULAR = {
    "won": "win", "winner": "win", "lost": "lose", "loser": "lose", "met": "meet", "took": "take", "taken": "take",
    "gave": "give", "given": "give", "made": "make", "held": "hold", "led": "lead", "left": "leave",
    "found": "find", "began": "begin", "begun": "begin", "came": "come", "went": "go", "gone": "go", "saw": "see",
    "seen": "see", "ran": "run", "paid": "pay", "sold": "sell", "bought": "buy", "brought": "bring",
    "struck": "strike", "fell": "fall", "fallen": "fall", "rose": "rise", "risen": "rise", "grew": "grow",
    "grown": "grow", "chose": "choose", "chosen": "choose", "wrote": "write", "written": "write",
    "spoke": "speak", "spoken": "speak", "broke": "break", "broken": "break", "stood": "stand", "sent": "send",
    "built": "build", "spent": "spend", "kept": "keep", "felt": "feel", "thought": "think", "caught": "catch",
    "fought": "fight", "taught": "teach", "shot": "shoot", "died": "die", "dead": "die", "death": "die",
    "sought": "seek", "drove": "drive", "driven": "drive", "flew": "fly", "flown": "fly", "threw": "throw",
    "thrown": "throw", "knew": "know", "known": "know", "meant": "mean", "became": "become", "bit": "bite",
    "bitten": "bite", "swore": "swear", "sworn": "swear", "withdrew": "withdraw", "withdrawn": "withdraw",
    "wore": "wear", "worn": "wear", "ate": "eat", "eaten": "eat", "underwent": "undergo", "sank": "sink",
    "sunk": "sink", "stole": "steal", "stolen": "steal", "lent": "lend", "dealt": "deal", "fed": "feed",
    "fled": "flee", "froze": "freeze", "frozen": "freeze", "laid": "lay", "rang": "ring", "sang": "sing",
    "sung": "sing", "swept": "sweep", "swam": "swim", "woke": "wake", "arose": "arise", "beaten": "beat",
    "drew": "draw", "drawn": "draw", "forgot": "forget", "got": "get", "gotten": "get", "heard": "hear",
    "rode": "ride", "ridden": "ride", "shook": "shake", "sat": "sit", "slept": "sleep", "stuck": "stick",
    "tore": "tear", "torn": "tear", "understood": "understand", "upheld": "uphold", "overtook": "overtake",
    "overcame": "overcome", "forbade": "forbid", "mistook": "mistake", "hid": "hide", "hidden": "hide",
    "bred": "breed", "dug": "dig", "fit": "fit", "lit": "light", "hung": "hang", "spun": "spin",
}  # fmt: skip
_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "dozen": "12", "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th",
    "fifth": "5th", "sixth": "6th", "seventh": "7th", "eighth": "8th", "ninth": "9th", "tenth": "10th",
    "once": "1", "twice": "2",
}  # fmt: skip
_MONTHS = {
    "jan": "january", "feb": "february", "mar": "march", "apr": "april", "jun": "june", "jul": "july",
    "aug": "august", "sep": "september", "sept": "september", "oct": "october", "nov": "november", "dec": "december",
}  # fmt: skip
_WORD = re.compile(r"\d+(?:\.\d+)+|[^\W_]+(?:['’][^\W_]+)?|%")
_NUMERIC = re.compile(r"\d+(?:\.\d+)?(?:st|nd|rd|th)?")
# Capitalised words that name something: not first in a sentence, or first and possessive or in a run
_NAME_INSIDE = re.compile(r"(?<=[^\s.!?\"“(])\s+([A-Z][\w’'-]*(?:\s+[A-Z][\w’'-]*)*)")
_NAME_FIRST = re.compile(
    r"(?:^|[.!?]\s+)([A-Z][\w-]*[’']s|(?:[A-Z]\.\s*)*[A-Z][\w’'-]*(?:\s+[A-Z][\w’'-]*)+|(?:[A-Z]\.\s*)+[A-Z][\w’'-]+)"
)
_STEMMER = snowballstemmer.stemmer("english")
_OUTCOMES = frozenset(_STEMMER.stemWord(_IRREGULAR.get(w, w)) for w in _OUTCOME_WORDS.split())
MIN_PREFIX = 5  # "rival" is stated by "rivalry", "major" by "majority": a shared start this long counts


@dataclass(frozen=True)
class ClaimCheck:
    """Whether a passage states a sentence; `missing` says what it lacks (`#3`: a number, `name`, a
    stem, `!not`: a negation the passage does not have)."""

    stated: bool
    missing: tuple[str, ...] = ()
    coverage: float = 1.0  # share of the sentence's content words the passage has


def _words(text: str) -> list[str]:
    low = text.lower().replace("per cent", "%").replace("percent", "%")
    low = re.sub(r"(?<=\d),(?=\d{3}\b)", "", low)  # 1,140 -> 1140
    return _WORD.findall(low.replace("’", "'"))


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    word = word.removesuffix("'s")
    word = _MONTHS.get(word, word)
    return str(_STEMMER.stemWord(_IRREGULAR.get(word, word)))


def numbers(text: str) -> set[str]:
    """The numbers a text states, written as digits: "three" and "3", "1,140" and "1140" are the same."""
    found = set()
    for word in _words(text):
        if _NUMERIC.fullmatch(word):
            found.add(word.lstrip("0") or "0")
        elif word in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[word])
    return found


def content_stems(text: str) -> set[str]:
    """Stems of the words that carry meaning: no function words, numbers or negations."""
    return {
        stem(w)
        for w in _words(text)
        if len(w) > 1 and w not in _STOP and w not in _LIGHT and w not in _NEGATION and w not in _NUMBER_WORDS
        and not _NUMERIC.fullmatch(w) and not w.endswith("n't")
    }  # fmt: skip


def names(text: str) -> set[str]:
    """Lower-cased words of the names a text mentions (capitalised words other than a sentence's first)."""
    spans = [m.group(1) for m in _NAME_INSIDE.finditer(text)] + [m.group(1) for m in _NAME_FIRST.finditer(text)]
    found = set()
    for span in spans:
        for word in span.split():
            word = re.sub(r"[’']s$", "", word).lower().strip("-.")
            if len(word) > 1 and word not in _STOP and word not in _NEGATION:
                found.add(word)
    return found


def negated(text: str) -> bool:
    words = _words(re.sub(r"\b[Nn]os?\.\s*(?=\d)", "", text))  # "No. 13" numbers a thing, it negates nothing
    return any(w in _NEGATION or w.endswith("n't") for w in words)


def _has_stem(stem_: str, have: set[str]) -> bool:
    if stem_ in have:
        return True
    if len(stem_) < MIN_PREFIX:
        return False
    return any(h.startswith(stem_) or (len(h) >= MIN_PREFIX and stem_.startswith(h)) for h in have)


def _has_name(name: str, low_text: str) -> bool:
    name = name.replace("’", "'")
    return re.search(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", low_text) is not None


_QUOTED = re.compile(r"[\"“”]([^\"“”]{8,}?)[\"“”]")


def _flat(text: str) -> str:
    return " ".join(text.replace("’", "'").replace("‘", "'").split()).lower()


def quotes_missing(sentence: str, passage: str) -> list[str]:
    """Words a sentence puts in quotation marks that the passage does not contain verbatim (up to
    case, spacing and the shape of apostrophes): a quote is a claim about the exact words."""
    flat = _flat(passage)
    return [q for q in (_flat(m.group(1)).strip(" .,;:") for m in _QUOTED.finditer(sentence)) if q and q not in flat]


def check_claim(sentence: str, passage: str, context: str = "", question: str = "") -> ClaimCheck:
    """Does `passage` (with `context`: its title and date) state `sentence`? Names, numbers and
    negation must all be there, and words in quotation marks verbatim; every content word too
    (`coverage` is the share that is). Words the sentence repeats from `question` are what was asked,
    not what the answer claims ("Which team does Hamlin play for?" answered "Hamlin plays for the
    Bills": the passage must say Bills, not "play"), except verbs of outcome: "Who won?" answered
    "Nadal won" needs a passage that says he won (qa/grounding.py checks the question's own names
    and numbers against the evidence separately)."""
    evidence = f"{passage}\n{context}"
    low = evidence.lower().replace("’", "'")
    asked = content_stems(question) - _OUTCOMES
    asked_numbers, asked_names = numbers(question), names(question) | {w for w in _words(question)}
    missing = [f'"{q}"' for q in quotes_missing(sentence, passage)]
    missing += [f"#{n}" for n in sorted(numbers(sentence) - numbers(evidence) - asked_numbers)]
    have = content_stems(evidence)
    missing += sorted(
        n for n in names(sentence) if not _has_name(n, low) and stem(n) not in have and n not in asked_names
    )
    stems = content_stems(sentence) - asked
    absent = sorted(s for s in stems if not _has_stem(s, have))
    missing += [s for s in absent if s not in missing]
    if negated(sentence) and not negated(passage):
        missing.append("!not")
    coverage = 1.0 - len(absent) / len(stems) if stems else 1.0
    return ClaimCheck(not missing, tuple(dict.fromkeys(missing)), round(coverage, 3))


def question_terms_missing(question: str, evidence: str) -> tuple[str, ...]:
    """The question's names and the numbers it writes in digits (a year, a count: "the first two"
    is a way of asking, not a fact) that the evidence (passages with their titles and dates) does
    not contain: a passage that lacks them is about something else."""
    low = evidence.lower().replace("’", "'")
    have = content_stems(evidence)
    missing = [n for n in sorted(names(question)) if not _has_name(n, low) and stem(n) not in have]
    written = {n for n in numbers(question) if n[:1].isdigit() and re.search(rf"\b{re.escape(n)}\b", question)}
    return tuple(missing + [f"#{n}" for n in sorted(written - numbers(evidence))])


# How many consecutive sentences of a passage one claim may be spread over (a name in one, its
# year in the next: "Pogacar attacked on the last climb. In 2021 he won by ..."); 0 turns the
# check off, which is the default: on the SQuAD calibration set (eval/calibrate.py, replayed on
# its recorded replies) the best window, 2, raised Youden's J by 0.017 (one question), under the
# 0.05 a check must earn to be on (the same bar as the model's own check); eval/RESULTS.md
WINDOW = 0


def anchors(sentence: str, question: str = "") -> set[str]:
    """What a claim is about: the sentence's names and numbers, and the numbers its question writes
    in digits (a year, a quarter's number): one passage must state them together."""
    written = {n for n in numbers(question) if n[:1].isdigit() and re.search(rf"\b{re.escape(n)}\b", question)}
    return names(sentence) | {f"#{n}" for n in numbers(sentence) | written}


def apart(sentence: str, passage: str, context: str = "", question: str = "", window: int = WINDOW) -> tuple[str, ...]:
    """The claim's anchors (`anchors`) that no run of `window` consecutive sentences of the passage
    states together with the rest (the title and date, `context`, count for every run): empty when
    some run holds them all. A passage that names Rybakina in one place and 2018 in another does not
    state that Rybakina won in 2018."""

    def lacking(piece: str, among: set[str]) -> set[str]:
        low, have, held = piece.lower().replace("’", "'"), content_stems(piece), numbers(piece)
        return {
            a for a in among if (a[1:] not in held if a.startswith("#") else not (_has_name(a, low) or stem(a) in have))
        }

    # only what the passage has somewhere: what it lacks altogether is check_claim's to report
    wanted = anchors(sentence, question) - lacking(f"{passage}\n{context}", anchors(sentence, question))
    if len(wanted) < 2:
        return ()
    best: set[str] = wanted
    for a, b in _stretches(passage, window):
        missing = lacking(f"{passage[a:b]}\n{context}", wanted)
        if len(missing) < len(best):
            best = missing
        if not best:
            return ()
    return tuple(sorted(best))


_ELISION = re.compile(r"\s*(?:\.\.\.|…)\s*")


def _stretches(passage: str, window: int) -> list[tuple[int, int]]:
    """Runs of up to `window` consecutive sentences of the passage, offsets in it."""
    spans = sentence_spans(passage) or [(0, len(passage))]
    return [(spans[i][0], spans[min(i + window, len(spans)) - 1][1]) for i in range(len(spans))]


# What kind of thing a question asks for, read from how it opens. An answer that gives no such
# thing ("Who won?" answered without a name, "How many?" without a number) does not answer it,
# however well its words are grounded.
_NUMBER_ASK = r"how (many|much|long|old|far|big|high|tall|large|often)|what (number|percentage|share|proportion|amount)"
_DATE_ASK = r"when|what (year|date|day|month|time)|which (year|date|day|month)"
_ASKS = (  # read at the question's start: "Who ... when faced with ...?" asks for a who, not a when
    ("number", re.compile(rf"^\W*((and|so|but) )?(by )?({_NUMBER_ASK})\b", re.I)),
    ("date", re.compile(rf"^\W*((and|so|but) )?((in|on|by|since|until) )?({_DATE_ASK})\b", re.I)),
    ("name", re.compile(r"^\W*((and|so|but) )?(who|whom|whose)\b", re.I)),
)
_MONTH_WORDS = {
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "yesterday",
    "today",
    "tomorrow",
    "spring",
    "summer",
    "autumn",
    "winter",
    "week",
    "month",
    "year",
}


def asks_for(question: str) -> str:
    """ "number", "date", "name", or "" when the question's form does not say."""
    return next((kind for kind, pattern in _ASKS if pattern.search(question)), "")


def gives(text: str, kind: str) -> bool:
    """Whether `text` holds a thing of the kind a question asks for."""
    if kind == "number":
        return bool(numbers(text))
    if kind == "date":
        return bool(numbers(text)) or any(w in _MONTH_WORDS for w in _words(text))
    if kind == "name":
        return bool(names(text)) or bool(re.match(r"^\W*[A-Z][\w'’-]*\s+[A-Z]", text))
    return True
