"""Incremental PII scanning of streaming transcript deltas.

``StreamingScanner.feed(delta)`` appends a transcript delta (user transcription or the
assistant's output transcript) and returns the entities that are now *settled*, with
offsets into the accumulated text.  It re-analyzes a bounded look-back window, not
the whole transcript:

- the window is the last ``lookback_chars`` characters (default 320, about 50 spoken
  words: a spoken 16-digit card with its label is about 110 characters), moved back to
  the start of any number run it would cut, but never beyond ``2 * lookback_chars``;
- an entity is *settled* once the text after it can no longer extend it: a word that is
  not a number word, filler or separator has arrived after it.  Until then it is
  *pending* (``scanner.pending``): a gate in ``hold`` mode must not release text at or
  after ``scanner.settled_end``;
- a short number followed by a short aside ("4549 1210, hang on,") stays pending too, so
  the analyzer can join it with the digits after the aside (see ``unsettled_tail``);
- ``finish()`` settles everything at the end of the turn.

Cost: one ``analyze`` of at most the window per delta, i.e. about as much as one
utterance (see ``docs/pii.md`` for the measured per-delta latency).  Memory: the
accumulated text plus the reported spans of the turn.
"""

from __future__ import annotations

import re

from hybrid_agent.pii.analyzer import PiiAnalyzer, PiiEntity, get_analyzer
from hybrid_agent.pii.names import name_lists
from hybrid_agent.pii.normalize import (
    EMAIL_CONNECTORS,
    FILLERS,
    NUMBER_WORDS,
    PRONOUN_ONE_AFTER,
    PRONOUN_ONE_BEFORE,
    SEP_WORDS,
    email_cue,
    normalize,
)
from hybrid_agent.pii.recognizers import _LABEL_RE, _RESTART, _WORD, ADDRESS, ASIDE_MAX_WORDS, PERSON

__all__ = ["StreamingScanner"]

_TOKEN = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)?|\d+|[^\sA-Za-z\d]")
_WORDISH = re.compile(r"[^\W_]")  # a letter or digit
# A spoken date goes on through its month and ordinal ("october ninth nineteen eighty").
MONTHS = frozenset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
ORDINALS = frozenset(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth thirtieth".split()
)
_OPEN_WORDS = NUMBER_WORDS | FILLERS | frozenset(SEP_WORDS) | MONTHS | ORDINALS | {
    "and", "at", "dot", "underscore", "plus"}
# what joins the parts of an address: the normalizer's connectors, and "at"/"@"
EMAIL_CONNECTOR_TOKENS = frozenset(EMAIL_CONNECTORS) | {"at", "@"}
_SPOKEN_CONNECTORS = tuple(sorted(c for c in EMAIL_CONNECTOR_TOKENS if c.isalpha()))
# the words that end a chain walking back (an address does not run through "email")
EMAIL_WORDS = frozenset({"email", "e-mail", "mail", "address", "emails"})
# Words that are never (part of) an address's local part: released at once.  Any other last
# word waits for the next delta: it may be "john" of "john dot smith at ...".
FUNCTION_WORDS = frozenset(
    "a an the is are was were be been am i i'm i'll i've i'd you you're we we're they it it's its that that's this "
    "these those my your our their his her me us them him to of in on for with by from and or but so if then than "
    "as not no yes yeah yep ok okay please thanks thank sure right well oh um uh hi hello bye can could would "
    "should will shall do does did have has had just also very what which who when where why how there here "
    "up out about into over again all any some one".split()
)
# the prefix of an id written as capitals ("MB 7780 ...", "PRX 812 ...", "FR85 ...")
_CAPS = re.compile(r"[A-Z]{2,4}")


def _open(tok: str, prev: str = "") -> bool:
    """Could the run of numbers (or a spoken address or date) still continue through this token?"""
    if tok[0].isdigit() or tok in ",.-/;:+@_()":
        return True
    low = tok.lower()
    if low == "and":  # only "four hundred and twelve" continues a number
        return prev.lower() in ("hundred", "thousand")
    if low == "of":  # "the twentieth of october"
        return prev.lower() in ORDINALS or prev.isdigit()
    # a spelled letter ("n l four four ...", "G B ..."); "a" and "i" in lower case are words
    return low in _OPEN_WORDS or (len(tok) == 1 and (tok.isupper() or tok not in "ai")) or _CAPS.fullmatch(tok) is not None


def _open_prefix(tok: str, prev: str = "") -> bool:
    """The last token may be cut mid-word: is it a prefix of a word that keeps a run open?"""
    low = tok.lower()
    if low in ("and", "of"):
        return _open(tok, prev)
    return tok[0].isdigit() or len(tok) == 1 or any(w.startswith(low) for w in _OPEN_WORDS)


# An address is held until this many words follow it (its town, state, ZIP or postcode come after the street).
ADDRESS_HOLD_WORDS = 6
NAME_HOLD_WORDS = 2
_SENTENCE_END = re.compile(r"[?!]|\.\s+[A-Z]")

# A number shorter than this, followed by a short aside, may still go on after the aside.
ASIDE_HOLD_DIGITS = 16


def unsettled_tail(text: str, lower_bound: int = 0) -> int:
    """Offset where the trailing, still-growing part of ``text`` starts.

    A number run followed by at most ``ASIDE_MAX_WORDS`` words with no digit, label or
    ``?``/``!`` ("4549 1210, hang on,") stays open too when it has fewer than
    ``ASIDE_HOLD_DIGITS`` digits: the analyzer joins it with digits after the aside."""
    pos = _open_tail(text, lower_bound)
    if not _WORDISH.search(text, pos):
        # only separators are open ("there," or "month."): no number can grow out of them alone
        pos = len(text)
    units = _units(text, max(lower_bound, len(text) - 160), len(text))  # the last words, for both tails
    held = min(_aside_tail(text, lower_bound, pos), _email_tail(text, units), _name_tail(text, units))
    cut = _TOKEN.match(text, pos) if pos < len(text) else None
    if cut is not None and not _open(cut.group()):  # a cut word held as an id's prefix: the aside rule still applies
        held = min(held, _aside_tail(text, lower_bound, len(text)))
    return held


def _email_tail(text: str, units: list[tuple[int, int, str]]) -> int:
    """Start of a spoken address that may still be growing before ``pos``: a chain of words joined
    by "dot"/"underscore"/"at" ("john dot smith", "mei underscore nguyen at yahoo"; digits attach to
    the word before them, "smith sixty seven"), the last word (it may be a local part: "john" before
    " dot"), and up to three words after an e-mail cue ("my email is jane doe" + " at gmail dot com")."""
    pos = len(text)
    k = len(units) - 1
    start = pos
    words = connectors = 0
    want_word = True
    if k >= 0 and (units[k][2] in EMAIL_CONNECTOR_TOKENS or (  # "john dot", "james_lopez70@example."
            units[k][1] == len(text) and any(c.startswith(units[k][2]) for c in _SPOKEN_CONNECTORS)  # "john d"
            and not (k > 0 and units[k - 1][2] in EMAIL_CONNECTOR_TOKENS))):  # but "at a" is "at acme"
        connectors, k = 1, k - 1
    while k >= 0 and words + connectors < 16:
        s, e, low = units[k]
        if want_word:
            if not _WORDISH.match(low) or low in EMAIL_WORDS:
                break
            cut = e == len(text)  # the last word may be cut: "me" of "mei", "s" of "sixty"
            if words == 0 and connectors == 1 and units[k + 1][2] == "." and low.isalpha() and not name_lists().known(low):
                return pos  # "how are you today.": a full stop ends the phrase, unless after a name ("raj." + "muller@...")
            if words == 0 and connectors == 0 and low in FUNCTION_WORDS and not (cut and len(low) <= 2):
                return pos  # the last word is prose
            # digits said after a word belong to it ("smith sixty seven"): one local-part word
            while k > 0 and (low[0].isdigit() or low in NUMBER_WORDS or (cut and any(
                    w.startswith(low) for w in NUMBER_WORDS))) and _WORDISH.match(units[k - 1][2]) \
                    and units[k - 1][2] not in EMAIL_CONNECTOR_TOKENS and units[k - 1][2] not in FUNCTION_WORDS:
                k -= 1
                s, e, low = units[k]
            start = s
            words += 1
        elif low not in EMAIL_CONNECTOR_TOKENS:
            break
        else:
            connectors += 1
        want_word = not want_word
        k -= 1
    if start == pos:
        return pos
    # after an e-mail cue, the local part may be split into words: "email is jane doe"
    j, plain = k, 0
    while j >= 0 and plain < 3 and _WORDISH.match(units[j][2]) and units[j][2] not in EMAIL_WORDS \
            and units[j][2] not in FUNCTION_WORDS:
        j -= 1
        plain += 1
    if plain and j >= 0 and email_cue([u[2] for u in units[max(0, j - 2) : j + 1]]):
        start = units[j + 1][0]
    return start


# a unit: letters and digits joined by connectors written without spaces ("james_lopez70@example.org")
_UNIT = re.compile(r"[A-Za-z0-9]+(?:['\u2019._@\-][A-Za-z0-9]+)*|[^\sA-Za-z0-9]")


def _name_tail(text: str, units: list[tuple[int, int, str]]) -> int:
    """Two names at the end ("aisha khan" + " speaking"): a cue after them makes them a PERSON, so
    they wait for the next word (the last word alone waits anyway, see :func:`_email_tail`)."""
    units = [u for u in units if _WORDISH.match(u[2])]
    if len(units) < 2:
        return len(text)
    lists = name_lists()
    pairs = [(units[-2], units[-1])]
    if units[-1][1] == len(text) and len(units) >= 3:  # the last word may be a cut "speaking"
        pairs.append((units[-3], units[-2]))
    for a, b in pairs:
        if a[2] in lists.clean_first and (lists.known(b[2]) or b[1] == len(text)):
            return a[0]
    return len(text)


def _units(text: str, lo: int, hi: int) -> list[tuple[int, int, str]]:
    """Units of ``text[lo:hi]``: (start, end, lower-cased text)."""
    return [(m.start(), m.end(), m.group().lower()) for m in _UNIT.finditer(text, lo, hi)]


def _number_before_aside(text: str, lower_bound: int, pos: int) -> tuple[int, int, bool] | None:
    """If ``text[:pos]`` ends with a number run plus an aside of at most ``ASIDE_MAX_WORDS``
    words (no digit, label or ``?``/``!``), return (start of that number run, its digit count,
    whether the aside is a restart)."""
    toks = list(_TOKEN.finditer(text, lower_bound, pos))
    words = 0
    i = len(toks) - 1
    while i >= 0:
        t = toks[i].group()
        low = t.lower()
        if t[0].isdigit() or (low in NUMBER_WORDS and _open(t, toks[i - 1].group() if i else "") and not (
            low == "one" and (
                (i + 1 < len(toks) and toks[i + 1].group().lower() in PRONOUN_ONE_AFTER)
                or (i > 0 and toks[i - 1].group().lower() in PRONOUN_ONE_BEFORE)
            )
        )):
            break
        if t in "?!@":
            return None
        if t[0].isalpha():
            words += 1
            if words > ASIDE_MAX_WORDS:
                return None
        i -= 1
    if i < 0 or words == 0:
        return None
    aside_start = toks[i].end()
    if _LABEL_RE.search(text, aside_start, pos):
        return None
    run = _open_tail(text[:aside_start], lower_bound)
    if run >= aside_start:
        return None
    digits = sum(c.isdigit() for c in normalize(text[run:aside_start]).text)
    return (run, digits, _RESTART.fullmatch(text, aside_start, pos) is not None) if digits else None


def _aside_tail(text: str, lower_bound: int, pos: int) -> int:
    """Hold the chain of number runs before trailing asides (back to its first run) while
    its digits, with any still-open run at the end, are fewer than ``ASIDE_HOLD_DIGITS``."""
    total = sum(c.isdigit() for c in normalize(text[pos:]).text) if pos < len(text) else 0
    held = pos
    cur = pos
    while True:
        found = _number_before_aside(text, lower_bound, cur)
        if found is None:
            return held
        run, digits, restart = found
        if not restart:  # the digits before a restart ("..., sorry, ...") are said again after it
            total += digits
        if total >= ASIDE_HOLD_DIGITS:  # long enough to be a whole number already: not held
            return pos
        held = cur = run


def _open_tail(text: str, lower_bound: int = 0) -> int:
    toks = list(_TOKEN.finditer(text, lower_bound))
    if not toks:
        return len(text)
    pos = len(text)
    i = len(toks) - 1
    if toks[i].end() == len(text):  # the last word may be cut mid-word ("fo" + "ur")
        tok = toks[i].group()
        if not (_open_prefix(tok, toks[i - 1].group() if i else "") or _spelling_at(toks, i) or _CAPS.fullmatch(tok)):
            # a cut word of up to four letters may be an id's prefix ("KX" + "44718209", "gb" + "29 ...")
            return toks[i].start() if len(tok) <= 4 and tok.lower() not in FUNCTION_WORDS else pos
        pos = toks[i].start()
        i -= 1
    while i >= 0 and (
        _open(toks[i].group(), toks[i - 1].group() if i else "")
        or _spelling_at(toks, i)
        or (toks[i].end() == pos < len(text) and text[pos].isalnum() and toks[i].group()[0].isalnum())  # "gb" of "gb15"
    ):
        pos = toks[i].start()
        i -= 1
    return pos


def _spelling_at(toks: list[re.Match[str]], i: int) -> bool:
    """Token ``i`` is part of a letter spelled with an example word: "B as in boy"."""
    def word(k: int) -> str:
        return toks[k].group().lower() if 0 <= k < len(toks) else ""

    def letter(k: int) -> bool:
        return 0 <= k < len(toks) and len(toks[k].group()) == 1 and toks[k].group().isalpha()

    w = word(i)
    return (w == "as" and letter(i - 1)) or (w == "in" and word(i - 1) == "as" and letter(i - 2)) or (
        word(i - 1) == "in" and word(i - 2) == "as" and letter(i - 3) and w[:1] == word(i - 3))


class StreamingScanner:
    """Feed transcript deltas, get entities as soon as they are settled."""

    def __init__(self, analyzer: PiiAnalyzer | None = None, *, lookback_chars: int = 320) -> None:
        if lookback_chars < 64:
            raise ValueError("lookback_chars must be at least 64")
        self.analyzer = analyzer or get_analyzer()
        self.lookback_chars = lookback_chars
        self.text = ""
        self.entities: list[PiiEntity] = []  # settled, in report order
        self.pending: list[PiiEntity] = []
        self.settled_end = 0
        self._reported: set[tuple[str, int, int]] = set()

    def feed(self, delta: str) -> list[PiiEntity]:
        """Append ``delta``; return newly settled entities (offsets into :attr:`text`)."""
        self.text += delta
        return self._scan(final=False)

    def finish(self) -> list[PiiEntity]:
        """End of the turn: everything still pending is settled and returned if new."""
        return self._scan(final=True)

    def _may_grow(self, e: PiiEntity) -> bool:
        """An address goes on after its street ("221 baker street" + ", london, NW1 6XE"), a name after
        its first word ("priya" + " raman"): held until ``ADDRESS_HOLD_WORDS`` (``NAME_HOLD_WORDS``)
        words have followed, or a sentence ends."""
        hold = ADDRESS_HOLD_WORDS if e.type == ADDRESS else NAME_HOLD_WORDS if e.type == PERSON else 0
        if not hold:
            return False
        after = self.text[e.end : e.end + 200]
        if _SENTENCE_END.search(after):
            return False
        return len(_WORD.findall(after)) < hold

    def _window_start(self) -> int:
        text = self.text
        n = len(text)
        if n <= self.lookback_chars:
            return 0
        start = n - self.lookback_chars
        hard = max(0, n - 2 * self.lookback_chars)
        # back to a whitespace boundary, then to the start of a number run the cut would split
        while start > hard and not text[start - 1].isspace():
            start -= 1
        run = unsettled_tail(text[:start], hard)
        return max(hard, run)

    def _scan(self, final: bool) -> list[PiiEntity]:
        ws = self._window_start()
        found = self.analyzer.analyze(self.text[ws:])
        tail = len(self.text) if final else unsettled_tail(self.text, ws)
        new: list[PiiEntity] = []
        pending: list[PiiEntity] = []
        for e in found:
            e = PiiEntity(e.type, e.start + ws, e.end + ws, e.score, e.value, e.recognizer)
            if e.end > tail or (not final and (e.end == len(self.text) or self._may_grow(e))):
                pending.append(e)
                continue
            key = (e.type, e.start, e.end)
            if key in self._reported:
                continue
            if any(r.type == e.type and r.start <= e.start and e.end <= r.end for r in self.entities[-16:]):
                continue  # a fragment of one already reported (window moved over it)
            self._reported.add(key)
            self.entities.append(e)
            new.append(e)
        self.pending = pending
        self.settled_end = min([tail] + [p.start for p in pending])
        return new
