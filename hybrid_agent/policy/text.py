"""Text forms the matchers see: the normalized words (``phrases``) and the digits form (``digits``).

Both are pure functions of the text, computed at most once per event.

``normalize_text`` (phrases): lower case; curly apostrophes made straight; contractions
expanded (``can't`` -> ``can not``, ``that's`` -> ``that is``, ``I'd`` -> ``i would``, also
written without the apostrophe: ``cant``, ``im``, ``thats``...; ``cannot`` -> ``can not``);
every run of other characters one space.  Phrases are normalized the same way, so a phrase
list written with or without contractions matches both spellings.

``digits_form`` (the ``digits`` context variable): the text with spoken digit words turned
into digits (``four triple one`` -> ``4111``, ``oh`` counts as 0 inside a run of digit words)
and the separators people and speech-to-text put between digit groups removed: spaces of any
kind (incl. non-breaking and narrow spaces), ``/ . _ -`` and dashes, alone or with spaces
around them.  So ``4111\u00a01111/1111_1111`` and ``4111 - 1111 - 1111 - 1111`` both become
``4111111111111111``.  Left as they are: commas (thousands separators: ``12,345,678``), a
decimal point followed by one or two digits (``1234.56``), and dates (``29/11/2026``,
``2026-11-29``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORDS = re.compile(r"[^\W_]+")
_APOS = re.compile(r"[\u2018\u2019\u02bc\u0060\u00b4\u2032]")
_CONTRACTIONS = (
    (re.compile(r"\bcan'?t\b"), "can not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bshan't\b"), "shall not"),
    (re.compile(r"\bain't\b"), "is not"),
    (re.compile(r"(\w)n't\b"), r"\1 not"),
    (re.compile(r"\b(\w+)'re\b"), r"\1 are"),
    (re.compile(r"\b(\w+)'ve\b"), r"\1 have"),
    (re.compile(r"\b(\w+)'ll\b"), r"\1 will"),
    (re.compile(r"\b(\w+)'d\b"), r"\1 would"),
    (re.compile(r"\bi'm\b"), "i am"),
    (re.compile(r"\b(it|that|what|there|here|he|she|who|where|how|this)'s\b"), r"\1 is"),
    (re.compile(r"\blet's\b"), "let us"),
)
# contractions as speech-to-text often writes them, without the apostrophe (only unambiguous ones)
_BARE = {
    "cant": "can not", "dont": "do not", "doesnt": "does not", "didnt": "did not", "isnt": "is not",
    "arent": "are not", "wasnt": "was not", "werent": "were not", "havent": "have not", "hasnt": "has not",
    "hadnt": "had not", "couldnt": "could not", "shouldnt": "should not", "wouldnt": "would not",
    "mustnt": "must not", "wont": "will not", "im": "i am", "ive": "i have", "youre": "you are",
    "youve": "you have", "youll": "you will", "youd": "you would", "theyre": "they are", "theyve": "they have",
    "thats": "that is", "whats": "what is", "theres": "there is", "hes": "he is", "shes": "she is",
    "its": "it is", "lets": "let us", "ain": "is", "cannot": "can not",
}


def normalize_text(text: str) -> str:
    """Lower case, contractions expanded, apostrophes dropped, every run of non-alphanumerics one space."""
    t = _APOS.sub("'", text.lower())
    if "'" in t or "cannot" in t:
        for rx, rep in _CONTRACTIONS:
            t = rx.sub(rep, t)
        t = t.replace("'", "")
    return " ".join(_BARE.get(w, w) for w in _WORDS.findall(t))


def phrase_pattern(phrases: Sequence[str]) -> re.Pattern[str]:
    alts = sorted({normalize_text(p) for p in phrases}, key=len, reverse=True)
    return re.compile(r"(?<!\S)(?:" + "|".join(re.escape(a) for a in alts) + r")(?!\S)")


# ------------------------------------------------------------------------------------------ digits
_DIGIT_WORDS = {"zero": "0", "oh": "0", "nought": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_SPOKEN_RUN = re.compile(
    r"\b(?:(?:double|triple|zero|oh|nought|one|two|three|four|five|six|seven|eight|nine)[\s,.\-]+)+"
    r"(?:zero|oh|nought|one|two|three|four|five|six|seven|eight|nine)\b",
    re.IGNORECASE,
)
_SPOKEN_TOKEN = re.compile(r"double|triple|zero|oh|nought|one|two|three|four|five|six|seven|eight|nine", re.IGNORECASE)
_SPACE = "\\s\u00a0\u2007\u2009\u200a\u202f\u205f\u3000"
# spaces, at most one separator mark, spaces: "[ ]*(?:[/.-][ ]*)?" rather than "[ ]*[/.-]?[ ]*", which
# is the same language but, with no mark, tried every split of a run of spaces between its two
# "[ ]*" ("1", 32,000 spaces, "x": 14 s)
_SEP = rf"[{_SPACE}]*(?:[/._\-\u2010-\u2015\u2212][{_SPACE}]*)?"
_GROUPS = re.compile(rf"\d+(?:{_SEP}\d+)+")
_KEEP = re.compile(
    r"\d{1,2}([/.\-])\d{1,2}\1\d{2,4}"  # 29/11/2026, 29.11.26
    r"|\d{4}-\d{1,2}-\d{1,2}"  # 2026-11-29
    r"|\d+\.\d{1,2}"  # 1234.56
)


def _spoken(m: re.Match[str]) -> str:
    tokens = _SPOKEN_TOKEN.findall(m.group(0))
    out: list[str] = []
    repeat = 1
    for t in tokens:
        low = t.lower()
        if low == "double":
            repeat = 2
        elif low == "triple":
            repeat = 3
        else:
            out.append(_DIGIT_WORDS[low] * repeat)
            repeat = 1
    return " ".join(out)


def _join(m: re.Match[str]) -> str:
    s = m.group(0)
    if _KEEP.fullmatch(s):
        return s
    return re.sub(r"\D", "", s)


def digits_form(text: str) -> str:
    """The text with spoken digits as digits and separators between digit groups removed (see module doc)."""
    if not text:
        return ""
    t = _SPOKEN_RUN.sub(_spoken, text) if _SPOKEN_TOKEN.search(text) else text
    return _GROUPS.sub(_join, t)
