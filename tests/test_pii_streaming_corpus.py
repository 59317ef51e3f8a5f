"""The streaming scanner against the whole-line scan on every corpus line.

Each line of ``tests/data/pii_corpus.jsonl`` is fed to a fresh :class:`StreamingScanner` delta
by delta, three ways: word by word (as the Realtime API sends transcript deltas), three
characters at a time (words cut anywhere), and in random chunks of 1-12 characters.  Two
promises are checked at every delta and at the end:

- **hold**: the text a ``hold``-mode gate may release (``text[:settled_end]``, with the entities
  settled so far redacted) never contains a letter or digit of a value the whole-line scan finds:
  no part of a card, an address, a name ... goes out before it is known to be PII;
- **same result**: after ``finish()``, the settled entities are exactly the whole-line entities
  (type and span), each reported once.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from hybrid_agent.pii import PiiAnalyzer, PiiEntity, StreamingScanner
from hybrid_agent.pii.evaluate import load_corpus

CORPUS = load_corpus(Path(__file__).parent / "data" / "pii_corpus.jsonl")
# A released function word of a value ("the" of "the twentieth of october") is not the value.
_HARMLESS = frozenset({"the", "of", "on", "at", "and"})


def deltas(text: str, mode: str, rng: random.Random) -> list[str]:
    if mode == "word":
        return re.findall(r"\S+\s*", text) or [text]
    if mode == "char3":
        return [text[i : i + 3] for i in range(0, len(text), 3)]
    out, i = [], 0
    while i < len(text):
        k = rng.randint(1, 12)
        out.append(text[i : i + k])
        i += k
    return out


def leaked(text: str, whole: list[PiiEntity], settled: list[PiiEntity], released: int) -> str | None:
    """A whole-line value with a letter or digit in the released text not covered by a settled entity."""
    for e in whole:
        open_chars = [
            i for i in range(e.start, min(e.end, released))
            if text[i].isalnum() and not any(s.start <= i < s.end for s in settled)
        ]
        if open_chars and text[open_chars[0] : open_chars[-1] + 1].lower().strip() not in _HARMLESS:
            return f"{e.type} {text[e.start:e.end]!r} released as {text[:released]!r}"
    return None


@pytest.mark.parametrize("mode", ["word", "char3", "random"])
def test_streaming_agrees_with_whole_line_scan(analyzer: PiiAnalyzer, mode: str) -> None:
    rng = random.Random(1)
    problems = []
    for row in CORPUS:
        text = row["text"]
        whole = analyzer.analyze(text)
        sc = StreamingScanner(analyzer)
        settled: list[PiiEntity] = []
        leak = None
        for d in deltas(text, mode, rng):
            settled += sc.feed(d)
            assert sc.text == text[: len(sc.text)]
            leak = leak or leaked(text, whole, settled, sc.settled_end)
        settled += sc.finish()
        if leak:
            problems.append(f"{row['id']}: {leak}")
        got = sorted((e.type, e.start, e.end) for e in settled)
        want = sorted((e.type, e.start, e.end) for e in whole)
        if got != want:
            problems.append(f"{row['id']}: streamed {got} != whole line {want} in {text!r}")
    assert not problems, "\n".join(problems[:20])
