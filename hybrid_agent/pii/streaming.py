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
- ``finish()`` settles everything at the end of the turn.

Cost: one ``analyze`` of at most the window per delta, i.e. about as much as one
utterance (see ``docs/pii.md`` for the measured per-delta latency).  Memory: the
accumulated text plus the reported spans of the turn.
"""

from __future__ import annotations

import re

from hybrid_agent.pii.analyzer import PiiAnalyzer, PiiEntity, get_analyzer
from hybrid_agent.pii.normalize import FILLERS, NUMBER_WORDS, SEP_WORDS

__all__ = ["StreamingScanner"]

_TOKEN = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)?|\d+|[^\sA-Za-z\d]")
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


def unsettled_tail(text: str, lower_bound: int = 0) -> int:
    """Offset where the trailing, still-growing part of ``text`` starts."""
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
