"""Spoken-form normalizer: speech-transcript text -> text the recognizers understand.

Why this module is long: one tokenizer-driven pass with its offset map; the number readings (digits, teens, hundreds, double/triple, oh) and the e-mail/correction handling rewrite the same token stream and share its state.

``normalize("my card is four one one one, double one ...")`` returns a
:class:`Normalized` whose ``text`` reads ``"my card is 4111 11..."`` and whose offset
map takes every normalized character back to the span of the original text it came
from, so entity spans found on the normalized text redact what the caller actually said.

What is rewritten (everything else is copied verbatim, one character to one character):

- number words: ``zero``/``oh``/``o`` (``oh`` and ``o`` only next to another number
  word), ``one`` .. ``nine``, teens, tens (``forty five`` -> ``45``, ``forty`` -> ``40``),
  ``double``/``triple`` + digit, hundreds and thousands as in number reading
  (``four hundred twelve`` -> ``412``, ``eight hundred five five five ...`` -> ``800555...``,
  ``two thousand`` -> ``2000``), ``plus`` before a number -> ``+``;
- a run of spoken number words becomes one digit string; a pause written by the
  recognizer (``,`` ``.`` ``-`` ``;`` or the words ``dash``/``hyphen``) becomes one space,
  ``/`` or ``slash`` a ``/``; fillers (``um``, ``uh``, ...) inside a run are dropped;
  a run made only of written digits is left exactly as written;
- spoken e-mail addresses: ``john dot smith at example dot com`` ->
  ``john.smith@example.com`` (also ``underscore``, ``dash``/``hyphen``, and digits);
  a one-word local part that is prose ("pay at ...", "logged in at ...") is not an address;
- ``one`` as a pronoun ("the old one", "one sec") stays a word;
- spelled identifiers: single capital letters next to digits (``G B eight two W E S T
  one two ...``) are joined into ``GB82WEST12...`` so IBANs and member ids read whole; a
  group that opens with two spelled letters also joins across pauses (``G B seven five,
  N W B K, ...``); "A"/"I" may be one of the two opening letters (``I E seven eight, ...``);
  a letter spelled with an example word ("B as in boy") is that letter; spelled acronym labels
  ("C V V", "N H S") stay words, never the letters of the value after them;
- a spoken local part split into words right after an e-mail cue ("my email is jane doe at ...")
  is one local part.

The normalizer is pure and fast (a regex tokenizer and one pass); text without any of
the trigger words is returned unchanged with an identity map.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Normalized", "normalize", "NUMBER_WORDS", "SPELLED_ACRONYMS", "EMAIL_CONNECTORS", "email_cue"]

# Labels that are acronyms, also said letter by letter ("C V V", "N H S"): spelled, they are
# labels, never the letters of the identifier after them ("C V V, four one two one").
SPELLED_ACRONYMS = frozenset({"cvv", "cvc", "csc", "cid", "ssn", "dob", "pin", "mrn", "aba", "rtn", "mbi", "nhs", "dl",
                              "ni", "acct", "nino"})

UNITS = {
    "zero": 0, "oh": 0, "o": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "niner": 9,
}
TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
REPEAT = {"double": 2, "triple": 3, "treble": 3}
SCALE = {"hundred", "thousand"}
ZERO_WORDS = {"zero", "oh", "o"}
AMBIGUOUS_ZERO = {"oh", "o"}
FILLERS = {"um", "umm", "uh", "uhh", "uhm", "er", "erm", "err", "hmm", "hm", "mm", "ah", "eh"}
SEP_WORDS = {"dash": " ", "hyphen": " ", "slash": "/"}
SPELL_PAUSES = frozenset(",.-;")
SEP_PUNCT = {",": " ", ".": " ", "-": " ", ";": " ", ":": " ", "/": "/"}
# "one" after these words, or before these, is a pronoun / "a" ("the old one", "one sec")
PRONOUN_ONE_BEFORE = frozenset(
    "the this that which each every any no another other new old right wrong same only little big main "
    "good bad last first a an my your his her its our their some".split()
)
PRONOUN_ONE_AFTER = frozenset("sec second seconds moment minute min of more thing time day".split())
NUMBER_WORDS = frozenset(UNITS) | frozenset(TEENS) | frozenset(TENS) | frozenset(REPEAT) | SCALE

EMAIL_CONNECTORS = {"dot": ".", "underscore": "_", "dash": "-", "hyphen": "-", ".": ".", "_": "_", "-": "-"}
_EXTRA_TLDS = frozenset(
    "com org net edu gov mil int io co us uk ca de fr es it nl ie au nz in ch se no dk fi be at pl "
    "info biz me ai app dev tech online health bank insurance email mail cloud xyz site".split()
)
_tld_cache: list[frozenset[str]] = []


def email_tlds() -> frozenset[str]:
    """Single-label public suffixes from tldextract's bundled snapshot (never fetched)."""
    if not _tld_cache:
        try:
            import tldextract

            ext = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)
            tlds = frozenset(t for t in ext.tlds if "." not in t and t.isascii() and t.isalpha())
        except Exception:  # pragma: no cover - the fixed list is the fallback
            tlds = frozenset()
        _tld_cache.append(tlds | _EXTRA_TLDS)
    return _tld_cache[0]


# the words right before a spoken address ("my email is ...", "the e-mail address: ...")
EMAIL_WORDS = frozenset({"email", "mail", "address", "emails", "e-mail", "gmail"})
EMAIL_CUES = EMAIL_WORDS | {"is", "it's", "its", ":", "was"}


def email_cue(words: list[str]) -> bool:
    """The last of ``words`` (lower case, the two before it included) introduces an address: an
    e-mail word, or "is"/":" right after one.  The normalizer joins a split local part after such a
    cue; the streaming scanner holds the words after it (pii/streaming.py), by the same rule."""
    w = words[-1]
    return w in EMAIL_WORDS or (w in EMAIL_CUES and any(x in EMAIL_WORDS for x in words[:-1]))


EMAIL_LOCAL_STOP = frozenset("me us him her them you it is email mail address me, website site us".split())

# A one-word spoken local part that is really prose: "pay at healthpartners dot org",
# "logged in at chase dot com", "find us online at ...".  Closed-class words and verbs that
# take "at" before a place; a name ("bob at bobsplumbing dot net") is not among them.
EMAIL_LOCAL_PROSE = frozenset(
    "in on up out into onto over off down back there here online offline anytime directly instead also only just now "
    "today tonight again already it this that them one ones pay paid paying log logged logging login signed sign signing "
    "look looked looking check checked checking visit visited visiting shop shopped shopping order ordered apply applied "
    "register registered book booked find found available listed posted located live lives work works worked stay stayed "
    "see seen go went going gone get got arrive arrived meet met click join joined apply renew renewed enroll enrolled "
    "website site web page portal app link details information it's that's is was are were be been "
    "a an the my your our their his her its i'm we're you're they're he's she's there's left right".split()
)
# a one-word local part right after one of these is a noun in a sentence ("on the left at ...")
EMAIL_NOUN_CUE = frozenset("the a an this that these those".split())
# words right before a one-word local part that make it a verb ("you can pay at", "I logged in at")
EMAIL_VERB_CUE = frozenset("can could will would should must may might please i we you they also just i'll we'll you'll "
                           "i've we've i'd let's".split())


def _plausible_local(outs: list[_Out], toks: list[_Tok], k: int, low) -> bool:  # type: ignore[no-untyped-def]
    """Is the single word at ``outs[k]`` plausibly the local part of a spoken address?"""
    w = low(outs[k])
    if w in EMAIL_LOCAL_PROSE:
        return False
    if k > 0 and outs[k - 1].kind == "tok" and low(outs[k - 1]) in EMAIL_NOUN_CUE:
        return False
    if k > 0 and outs[k - 1].kind == "tok" and low(outs[k - 1]) in EMAIL_VERB_CUE:
        # "you can pay at ...", "then shop at ...": a verb, unless an e-mail cue is right before
        before = " ".join(low(o) for o in outs[max(0, k - 4) : k] if o.kind == "tok")
        return "mail" in before or "address" in before
    return True


_TOKEN = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)?|\d+|[^\sA-Za-z\d]")
_TRIGGER = re.compile(
    r"\b(?:zero|oh|o|one|two|three|four|five|six|seven|eight|nine|niner|ten|eleven|twelve|\w+teen|twenty|thirty|"
    r"fou?rty|fifty|sixty|seventy|eighty|ninety|double|triple|treble|hundred|thousand|at|dot|underscore|as in)\b|@|\b[A-Z]\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Normalized:
    """Normalized text plus, for every character of it, the original span it came from."""

    original: str
    text: str
    src_start: tuple[int, ...]
    src_end: tuple[int, ...]

    @property
    def identity(self) -> bool:
        return self.text is self.original

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a normalized span ``[start, end)`` to the smallest original span covering it."""
        if self.identity:
            return start, end
        if end <= start:
            pos = self.src_start[start] if start < len(self.src_start) else len(self.original)
            return pos, pos
        return min(self.src_start[start:end]), max(self.src_end[start:end])


@dataclass(slots=True)
class _Tok:
    kind: str  # "w" word, "d" written digits, "p" punctuation
    text: str
    low: str
    start: int
    end: int


@dataclass(slots=True)
class _Out:
    """A unit of output: ``chars`` with one original span per character."""

    first: int  # index of the first input token it replaces
    last: int  # index of the last input token it replaces (inclusive)
    kind: str  # "num" (digit run), "tok" (verbatim token), "email", "spell"
    text: str
    starts: list[int]
    ends: list[int]
    spoken: bool = False


def _tokenize(text: str) -> list[_Tok]:
    out = []
    for m in _TOKEN.finditer(text):
        s = m.group()
        kind = "w" if s[0].isalpha() else "d" if s[0].isdigit() else "p"
        out.append(_Tok(kind, s, s.lower(), m.start(), m.end()))
    return out


def _num_flags(toks: list[_Tok], text: str) -> list[bool]:
    """Which tokens are spoken number words.  ``oh``/``o`` count only when they touch
    (whitespace only in between) another number word or digits, including another
    such ``oh`` ("nine oh oh", "oh oh seven"); ``double``/``triple`` only before a digit word."""
    n = len(toks)
    flags = [False] * n
    ambiguous = []
    for i, t in enumerate(toks):
        if t.kind != "w":
            continue
        w = t.low
        if w in AMBIGUOUS_ZERO:
            ambiguous.append(i)
        elif w in REPEAT:
            flags[i] = i + 1 < n and toks[i + 1].kind == "w" and toks[i + 1].low in UNITS
        else:
            flags[i] = w in NUMBER_WORDS
    # "one" as a pronoun ("the old one", "that one", "one sec") is not a digit unless
    # another number touches it on the other side ("the one two three")
    for i, t in enumerate(toks):
        if t.kind == "w" and t.low == "one" and flags[i]:
            prev = toks[i - 1] if i else None
            nxt = toks[i + 1] if i + 1 < n else None
            nxt_num = nxt is not None and (nxt.kind == "d" or (nxt.kind == "w" and nxt.low in NUMBER_WORDS))
            prev_num = prev is not None and (prev.kind == "d" or (prev.kind == "w" and prev.low in NUMBER_WORDS))
            if (prev is not None and prev.kind == "w" and prev.low in PRONOUN_ONE_BEFORE and not nxt_num) or (
                nxt is not None and nxt.kind == "w" and nxt.low in PRONOUN_ONE_AFTER and not prev_num
            ):
                flags[i] = False
    # An "oh" touching a number is a zero, and so is an "oh" touching such an "oh": spread from the
    # ones that touch a number through chains of touching "oh"s (a worklist, linear; repeating
    # passes until nothing changed took one pass per "oh" of "oh oh ... oh one": cubic)
    def touching(i: int, j: int) -> bool:
        t, o = toks[i], toks[j]
        return text[min(o.end, t.end) : max(o.start, t.start)].strip() == ""

    amb_set = set(ambiguous)
    work = [i for i in ambiguous if any(
        0 <= j < n and (toks[j].kind == "d" or flags[j]) and touching(i, j) for j in (i - 1, i + 1))]
    for i in work:
        flags[i] = True
    while work:
        i = work.pop()
        for j in (i - 1, i + 1):
            if j in amb_set and not flags[j] and touching(j, i):
                flags[j] = True
                work.append(j)
    ambiguous = [i for i in ambiguous if not flags[i]]
    # a group of two or more "oh"s between pauses ("four, oh oh oh, three") is zeros when a
    # number stands on either side of it (across one punctuation mark)
    k = 0
    amb = sorted(ambiguous)
    while k < len(amb):
        g = [amb[k]]
        while k + 1 < len(amb) and amb[k + 1] == g[-1] + 1 and text[toks[g[-1]].end : toks[amb[k + 1]].start].strip() == "":
            k += 1
            g.append(amb[k])
        k += 1
        if len(g) < 2:
            continue
        near = []
        for j, step in ((g[0] - 1, -1), (g[-1] + 1, 1)):
            if 0 <= j < n and toks[j].kind == "p":
                j += step
            if 0 <= j < n:
                near.append(j)
        if any(flags[j] or toks[j].kind == "d" for j in near):
            for i in g:
                flags[i] = True
    return flags


def _parse_words(words: list[_Tok]) -> list[tuple[str, int, int]]:
    """Spoken number words (no pauses between them) -> digit items ``(digits, start, end)``."""
    n = len(words)
    lw = [w.low for w in words]
    items: list[tuple[str, int, int]] = []

    def unit(k: int) -> bool:
        return k < n and lw[k] in UNITS

    def numberish(k: int) -> bool:
        return k < n and (lw[k] in UNITS or lw[k] in TEENS or lw[k] in TENS or lw[k] in REPEAT)

    def below100(k: int) -> tuple[int, int] | None:
        if k >= n:
            return None
        w = lw[k]
        if w in TEENS:
            return TEENS[w], k + 1
        if w in TENS:
            if k + 1 < n and lw[k + 1] in UNITS and lw[k + 1] not in ZERO_WORDS:
                return TENS[w] + UNITS[lw[k + 1]], k + 2
            return TENS[w], k + 1
        if w in UNITS:
            return UNITS[w], k + 1
        return None

    def remainder(k: int, limit: int, forced: bool) -> tuple[int, int]:
        """Value added after a scale word, and the next index; ambiguity goes to digit reading."""
        if k >= n:
            return 0, k
        if lw[k] in TEENS or lw[k] in TENS:
            r = below100(k)
            assert r is not None
            v, j = r
            if limit > 100 and j < n and lw[j] == "hundred" and v < 10:
                v, j = v * 100, j + 1
                rv, j = remainder(j, 100, False)
                v += rv
            return v, j
        if unit(k) and lw[k] not in ZERO_WORDS:
            if limit > 100 and k + 1 < n and lw[k + 1] == "hundred":
                v, j = UNITS[lw[k]] * 100, k + 2
                rv, j = remainder(j, 100, False)
                return v + rv, j
            if forced or not numberish(k + 1):
                return UNITS[lw[k]], k + 1
        return 0, k

    i = 0
    while i < n:
        w = lw[i]
        start = words[i].start
        if w in REPEAT and unit(i + 1):
            items.append((str(UNITS[lw[i + 1]]) * REPEAT[w], start, words[i + 1].end))
            i += 2
            continue
        if w in ZERO_WORDS:
            items.append(("0", start, words[i].end))
            i += 1
            continue
        r = below100(i)
        if r is None:  # a scale word on its own ("hundred") or "and"
            if w == "hundred":
                items.append(("100", start, words[i].end))
            elif w == "thousand":
                items.append(("1000", start, words[i].end))
            i += 1
            continue
        v, j = r
        if j < n and lw[j] == "hundred":
            v *= 100
            j += 1
            forced = j < n and lw[j] == "and"
            if forced:
                j += 1
            rv, j2 = remainder(j, 100, forced)
            v += rv
            j = j2 if (rv or not forced) else j - 1
        if j < n and lw[j] == "thousand" and v < 1000:
            v *= 1000
            j += 1
            forced = j < n and lw[j] == "and"
            if forced:
                j += 1
            rv, j2 = remainder(j, 1000, forced)
            v += rv
            j = j2 if (rv or not forced) else j - 1
        items.append((str(v), start, words[j - 1].end))
        i = j
    return items


def _number_runs(text: str, toks: list[_Tok]) -> list[_Out]:
    """Group tokens into output units; runs that contain spoken number words become digit strings."""
    n = len(toks)
    isnum = _num_flags(toks, text)
    outs: list[_Out] = []
    i = 0
    while i < n:
        t = toks[i]
        if not (isnum[i] or t.kind == "d"):
            outs.append(_Out(i, i, "tok", t.text, list(range(t.start, t.end)), list(range(t.start + 1, t.end + 1))))
            i += 1
            continue
        # extend the run: number words, digits, separators, fillers, "and" after a scale word
        members: list[int] = [i]
        j = i + 1
        while j < n:
            tj = toks[j]
            if isnum[j] or tj.kind == "d":
                members.append(j)
                j += 1
                continue
            # look ahead over connectors to another number token
            k = j
            while k < n and not (isnum[k] or toks[k].kind == "d"):
                tk = toks[k]
                ok = (
                    tk.low in FILLERS
                    or tk.low in SEP_WORDS
                    or (tk.kind == "p" and tk.text in SEP_PUNCT)
                    or (tk.low == "and" and toks[k - 1].low in SCALE)
                )
                if not ok or k - j >= 3:
                    break
                k += 1
            if k < n and k > j and (isnum[k] or toks[k].kind == "d") and all(
                toks[m].low in FILLERS or toks[m].low in SEP_WORDS or toks[m].kind == "p" or toks[m].low == "and"
                for m in range(j, k)
            ):
                members.extend(range(j, k + 1))
                j = k + 1
                continue
            break
        last = members[-1]
        spoken = any(isnum[m] for m in members)
        if not spoken:
            for m in range(i, last + 1):
                tm = toks[m]
                outs.append(_Out(m, m, "tok", tm.text, list(range(tm.start, tm.end)), list(range(tm.start + 1, tm.end + 1))))
            i = last + 1
            continue
        chars: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        seg: list[_Tok] = []
        pending_sep: tuple[str, int, int] | None = None
        prev_kind = ""

        def flush_seg() -> None:
            nonlocal prev_kind
            if seg:
                for digits, s, e in _parse_words(seg):
                    emit(digits, s, e, "spoken")
                seg.clear()

        def emit(s_text: str, s: int, e: int, kind: str) -> None:
            nonlocal pending_sep, prev_kind
            if chars:
                if pending_sep is not None:
                    sep, ss, se = pending_sep
                    chars.append(sep)
                    starts.append(ss)
                    ends.append(se)
                elif kind == "written" or prev_kind == "written":
                    chars.append(" ")
                    starts.append(s)
                    ends.append(s)
            pending_sep = None
            prev_kind = kind
            for ch in s_text:
                chars.append(ch)
                starts.append(s)
                ends.append(e)

        for m in range(i, last + 1):
            tm = toks[m]
            if isnum[m]:
                # a word-internal hyphen ("forty-five") keeps the segment together
                seg.append(tm)
                continue
            if tm.kind == "p" and tm.text == "-" and seg and m + 1 <= last and isnum[m + 1] and tm.start == seg[-1].end and toks[m + 1].start == tm.end:
                continue
            if tm.low == "and":
                seg.append(tm)
                continue
            flush_seg()
            if tm.kind == "d":
                emit(tm.text, tm.start, tm.end, "written")
            elif tm.low in SEP_WORDS or (tm.kind == "p" and tm.text in SEP_PUNCT):
                sep = SEP_WORDS.get(tm.low) or SEP_PUNCT[tm.text]
                if pending_sep is None or sep == "/":
                    pending_sep = (sep, tm.start, tm.end)
            # fillers: dropped
        flush_seg()
        # "plus" right before the run -> "+"
        if outs and outs[-1].kind == "tok" and toks[outs[-1].first].low == "plus":
            p = outs.pop()
            chars.insert(0, "+")
            starts.insert(0, toks[p.first].start)
            ends.insert(0, toks[p.first].end)
            outs.append(_Out(p.first, last, "num", "".join(chars), starts, ends, spoken=True))
        else:
            outs.append(_Out(i, last, "num", "".join(chars), starts, ends, spoken=True))
        i = last + 1
    return outs


def _alnum_unit(o: _Out, toks: list[_Tok]) -> bool:
    return o.kind in ("num",) or (o.kind == "tok" and toks[o.first].kind in ("w", "d"))


def _emails(text: str, toks: list[_Tok], outs: list[_Out]) -> list[_Out]:
    """Rewrite spoken (and written) e-mail addresses in the unit list."""
    n = len(outs)

    def low(o: _Out) -> str:
        return o.text.lower() if o.kind != "tok" else toks[o.first].low

    def is_at(o: _Out) -> bool:
        return o.kind == "tok" and (low(o) == "at" or o.text == "@")

    def is_conn(o: _Out) -> bool:
        return o.kind == "tok" and low(o) in EMAIL_CONNECTORS

    def is_name(o: _Out) -> bool:
        return _alnum_unit(o, toks) and not is_at(o) and low(o) not in EMAIL_CONNECTORS

    found: list[tuple[int, int]] = []
    floor = 0
    i = 1
    while i < n:
        if not is_at(outs[i]):
            i += 1
            continue
        # domain: name (dot name)+, ending in a known TLD after a dot
        j = i + 1
        labels = []
        if j < n and is_name(outs[j]):
            labels.append(j)
            j += 1
            while j + 1 < n and low(outs[j]) in (".", "dot", "-", "dash", "hyphen") and is_name(outs[j + 1]):
                labels.append(j + 1)
                j += 2
        end = None
        for k in range(len(labels) - 1, 0, -1):
            if low(outs[labels[k]]) in email_tlds() and low(outs[labels[k] - 1]) in (".", "dot"):
                end = labels[k]
                break
        k = i - 1
        if end is None or k < floor or not is_name(outs[k]) or low(outs[k]) in EMAIL_LOCAL_STOP:
            i += 1
            continue
        first = k
        while True:
            if outs[k].kind == "num" and k - 1 >= floor and outs[k - 1].kind == "tok" and is_name(outs[k - 1]) \
                    and low(outs[k - 1]) not in EMAIL_LOCAL_STOP:
                k -= 1  # digits attach to the word before them: "doe ninety two" -> "doe92"
            elif k - 2 >= floor and is_conn(outs[k - 1]) and is_name(outs[k - 2]):
                k -= 2
            else:
                break
            first = k
        if first == i - 1 and outs[first].kind == "tok" and not _plausible_local(outs, toks, first, low):
            i += 1
            continue
        # a local part the recognizer split with spaces ("my email is jane doe at gmail dot com",
        # "it's j doe eighty four at ..."): the words between an e-mail cue and it are part of it
        k = first - 1
        while k >= floor and first - k <= 3 and is_name(outs[k]) and low(outs[k]) not in EMAIL_LOCAL_PROSE \
                and low(outs[k]) not in EMAIL_LOCAL_STOP:
            k -= 1
        if k < first - 1 and k >= 0 and email_cue([low(o) for o in outs[max(0, k - 2) : k + 1]]):
            first = k + 1
        found.append((first, end))
        floor = end + 1
        i = end + 1
    if not found:
        return outs
    res: list[_Out] = []
    pos = 0
    for first, end in found:
        res.extend(outs[pos:first])
        chars: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        for u in outs[first : end + 1]:
            if is_at(u) or is_conn(u):
                t = toks[u.first]
                chars.append("@" if is_at(u) else EMAIL_CONNECTORS[low(u)])
                starts.append(t.start)
                ends.append(t.end)
            else:
                for c, s, e in zip(u.text, u.starts, u.ends):
                    if c != " ":
                        chars.append(c.lower())
                        starts.append(s)
                        ends.append(e)
        res.append(_Out(outs[first].first, outs[end].last, "email", "".join(chars), starts, ends, spoken=True))
        pos = end + 1
    res.extend(outs[pos:])
    return res


def _as_in(text: str, toks: list[_Tok], outs: list[_Out]) -> list[_Out]:
    """Letters spelled with an example word: "F as in frank", "d as in david" -> one letter unit
    ("F") that stands for the whole phrase, so that the letter joins the digits next to it and a
    redaction covers the example word too."""
    res: list[_Out] = []
    i = 0
    n = len(outs)
    while i < n:
        o = outs[i]
        t = toks[o.first]
        if o.kind == "tok" and t.kind == "w" and len(t.text) == 1 and i + 3 < n and all(
                u.kind == "tok" for u in outs[i + 1 : i + 4]) and toks[outs[i + 1].first].low == "as" \
                and toks[outs[i + 2].first].low == "in" and toks[outs[i + 3].first].kind == "w" \
                and toks[outs[i + 3].first].low[:1] == t.low:
            last = toks[outs[i + 3].first]
            res.append(_Out(o.first, outs[i + 3].last, "letter", t.text.upper(), [t.start], [last.end], spoken=True))
            i += 4
            continue
        res.append(o)
        i += 1
    return res


def _spelled(text: str, toks: list[_Tok], outs: list[_Out]) -> list[_Out]:
    """Join spelled identifiers: single capital letters next to spoken/written digits."""

    outs = _as_in(text, toks, outs)

    def letter(o: _Out, inside: bool = False) -> bool:
        """A spelled capital; "A" and "I" only inside a group that opened with spelled letters."""
        if o.kind == "letter":
            return True
        if o.kind != "tok":
            return False
        t = toks[o.first]
        return t.kind == "w" and len(t.text) == 1 and t.text.isupper() and (inside or t.text not in ("I", "A"))

    def digits(o: _Out) -> bool:
        return o.kind == "num" or (o.kind == "tok" and toks[o.first].kind == "d")

    def acronym(i: int) -> int:
        """Length of a spelled label acronym opening at ``outs[i]`` ("C V V"), else 0."""
        k = i
        while k < n and k - i < 4 and letter(outs[k], True) and (
                k == i or text[toks[outs[k - 1].last].end : toks[outs[k].first].start].strip(" ") == ""):
            k += 1
        if k - i >= 2 and not (k < n and letter(outs[k], True)) and \
                "".join(toks[o.first].low for o in outs[i:k]) in SPELLED_ACRONYMS:
            return k - i
        return 0

    res: list[_Out] = []
    i = 0
    n = len(outs)
    while i < n:
        skip = acronym(i) if letter(outs[i], True) else 0
        if skip:
            res.extend(outs[i : i + skip])
            i += skip
            continue
        if not (letter(outs[i], True) or digits(outs[i])):
            res.append(outs[i])
            i += 1
            continue
        # a group that opens with two spelled letters (a country code, an id prefix) may go on
        # across pauses the recognizer wrote between letter/digit groups ("G B seven five, N W B K, ...");
        # "A"/"I" count as letters there too, first or second ("I E seven eight, ...", "A U T eight ...",
        # "C A three nine ..."), but not two of them alone ("I A ...")
        prefix = i + 1 < n and letter(outs[i], True) and letter(outs[i + 1], True) and (
            letter(outs[i]) or letter(outs[i + 1])) and (
            text[toks[outs[i].last].end : toks[outs[i + 1].first].start].strip(" ") == "")
        if not (letter(outs[i]) or digits(outs[i]) or prefix):
            res.append(outs[i])
            i += 1
            continue
        j = i
        last = i  # last unit of the group (pause punctuation between units is skipped)
        k = i + 1
        while k < n:
            o = outs[k]
            gap = text[toks[outs[last].last].end : toks[o.first].start]
            if (letter(o, prefix) or digits(o)) and gap.strip(" ") == "":
                last = j = k
                k += 1
                continue
            if prefix and o.kind == "tok" and toks[o.first].kind == "p" and toks[o.first].text in SPELL_PAUSES \
                    and gap.strip(" ") == "" and k + 1 < n and (letter(outs[k + 1], True) or digits(outs[k + 1])) \
                    and text[toks[o.last].end : toks[outs[k + 1].first].start].strip(" ") == "":
                k += 1  # skip the pause; the next unit is checked above
                last = k
                continue
            break
        group = [o for o in outs[i : j + 1] if letter(o, prefix) or digits(o)]  # pauses inside are dropped
        nlet = sum(1 for o in group if letter(o, prefix))
        ndig = sum(sum(c.isdigit() for c in o.text) for o in group)
        if nlet == 0 or ndig < 4 or j == i or not (prefix or any(letter(o) for o in group[:2])):
            res.extend(outs[i : j + 1])
            i = j + 1
            continue
        chars: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        cuts: list[tuple[int, int, int]] = []  # (len(chars), unit index, char index in the unit) at a pause
        for gi, o in enumerate(group):
            if gi:
                cuts.append((len(chars), gi, 0))
            for ci, (c, s, e) in enumerate(zip(o.text, o.starts, o.ends)):
                if c != " ":
                    chars.append(c.upper())
                    starts.append(s)
                    ends.append(e)
                elif o.kind == "num":
                    cuts.append((len(chars), gi, ci))
        tail: _Out | None = None
        if prefix and _IBAN_HEAD.match("".join(chars[:4])) and len(chars) > 15 and not iban_ok("".join(chars)):
            # a country code and check digits, but the group ran past the IBAN (digits said after a
            # pause): cut it back to the longest prefix, at a pause, that passes mod-97
            for at, gi, ci in reversed(cuts):
                if iban_ok("".join(chars[:at])):
                    del chars[at:], starts[at:], ends[at:]
                    o = group[gi]
                    if ci:  # inside a spoken digit run: the rest of the run stays a number
                        tail = _Out(o.last, o.last, "num", o.text[ci:], o.starts[ci:], o.ends[ci:], spoken=True)
                        group = group[: gi + 1]
                        j = outs.index(o, i)
                    else:
                        group = group[:gi]
                        j = outs.index(group[-1], i)
                    break
        res.append(_Out(group[0].first, group[-1].last, "spell", "".join(chars), starts, ends, spoken=True))
        if tail is not None:
            res.append(tail)
        i = j + 1
    return res


_IBAN_HEAD = re.compile(r"[A-Z]{2}\d{2}")


def iban_ok(s: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN written without spaces."""
    if not (15 <= len(s) <= 34) or not _IBAN_HEAD.match(s) or not s.isalnum():
        return False
    r = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in r)) % 97 == 1


def normalize(text: str) -> Normalized:
    """Normalize spoken forms in ``text``; see the module docstring."""
    if not _TRIGGER.search(text):
        return Normalized(text, text, (), ())
    toks = _tokenize(text)
    outs = _number_runs(text, toks)
    outs = _emails(text, toks, outs)
    outs = _spelled(text, toks, outs)
    if not any(o.spoken for o in outs):
        return Normalized(text, text, (), ())
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0  # original offset copied so far
    for o in outs:
        s0 = toks[o.first].start
        if s0 > pos:  # the gap (whitespace, or punctuation swallowed by nothing) verbatim
            for k in range(pos, s0):
                chars.append(text[k])
                starts.append(k)
                ends.append(k + 1)
        chars.append(o.text)
        starts.extend(o.starts)
        ends.extend(o.ends)
        pos = toks[o.last].end
    for k in range(pos, len(text)):
        chars.append(text[k])
        starts.append(k)
        ends.append(k + 1)
    out = "".join(chars)
    assert len(out) == len(starts) == len(ends)
    return Normalized(text, out, tuple(starts), tuple(ends))
