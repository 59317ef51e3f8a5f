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
from hybrid_agent.pii.normalize import FILLERS, NUMBER_WORDS, PRONOUN_ONE_AFTER, PRONOUN_ONE_BEFORE, SEP_WORDS, normalize
from hybrid_agent.pii.recognizers import _LABEL_RE, ASIDE_MAX_WORDS

__all__ = ["StreamingScanner"]

_TOKEN = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)?|\d+|[^\sA-Za-z\d]")
_WORDISH = re.compile(r"[^\W_]")  # a letter or digit
_OPEN_WORDS = NUMBER_WORDS | FILLERS | frozenset(SEP_WORDS) | {"and", "at", "dot", "underscore", "plus"}


def _open(tok: str, prev: str = "") -> bool:
    """Could the run of numbers (or a spoken address) still continue through this token?"""
    if tok[0].isdigit() or tok in ",.-/;:+@_":
        return True
    low = tok.lower()
    if low == "and":  # only "four hundred and twelve" continues a number
        return prev.lower() in ("hundred", "thousand")
    return low in _OPEN_WORDS or (len(tok) == 1 and tok.isupper())


def _open_prefix(tok: str, prev: str = "") -> bool:
    """The last token may be cut mid-word: is it a prefix of a word that keeps a run open?"""
    low = tok.lower()
    if low == "and":
        return _open(tok, prev)
    return tok[0].isdigit() or len(tok) == 1 or any(w.startswith(low) for w in _OPEN_WORDS)


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
    return _aside_tail(text, lower_bound, pos)


def _number_before_aside(text: str, lower_bound: int, pos: int) -> tuple[int, int] | None:
    """If ``text[:pos]`` ends with a number run plus an aside of at most ``ASIDE_MAX_WORDS``
    words (no digit, label or ``?``/``!``), return (start of that number run, its digit count)."""
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
    return (run, digits) if digits else None


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
        run, digits = found
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
        if not _open_prefix(toks[i].group(), toks[i - 1].group() if i else ""):
            return pos
        pos = toks[i].start()
        i -= 1
    while i >= 0 and _open(toks[i].group(), toks[i - 1].group() if i else ""):
        pos = toks[i].start()
        i -= 1
    return pos


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
            if e.end > tail or (not final and e.end == len(self.text)):
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
