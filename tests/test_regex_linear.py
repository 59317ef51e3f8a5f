"""Hostile text costs linear time: every entry point that sees caller or model text.

One typed ``conversation.item.create`` of 64,000 letters once stopped every call for 23 s:
the audit scrubber's e-mail pattern ``[\\w.+-]+@...`` scanned the rest of the run from every
start position (quadratic), holding the interpreter lock.  These are complexity-ratio tests,
not wall-clock limits: each input is timed at ``n`` and ``8 n`` characters (the minimum of 3
runs, the garbage collector paused) and the ratio must stay far below quadratic (64): linear
is 8, the bound is 30.  See docs/pii.md, "Hostile text and regex cost".
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import pytest
import regex
from presidio_analyzer.predefined_recognizers import EmailRecognizer

from timing_helpers import best_time
from hybrid_agent.audit.privacy import _email_spans, scrub
from hybrid_agent.pii import PiiAnalyzer, StreamingScanner, normalize, redact
from hybrid_agent.pii.analyzer import EMAIL_PATTERN
from hybrid_agent.pii.recognizers import _LINK
from hybrid_agent.policy.text import digits_form, normalize_text

N = 8_000
RATIO = 30.0  # t(8n) / t(n): linear is 8, quadratic 64


def _fill(unit: str, n: int, head: str = "", tail: str = "") -> str:
    """``head`` + ``unit`` repeated + ``tail``, ``n`` characters give or take one unit."""
    k = max(1, (n - len(head) - len(tail)) // len(unit))
    return head + unit * k + tail


#: name -> builder(n): the shapes that made a pattern super-linear (see docs/pii.md)
HOSTILE: dict[str, Callable[[int], str]] = {
    "letters": lambda n: _fill("a", n),
    "digits": lambda n: _fill("1", n),
    "digits and dashes": lambda n: _fill("1-", n),  # MemberId "alnum id" lookahead
    "digits and dots": lambda n: _fill("1.", n),
    "digits and spaces": lambda n: _fill("1 ", n),
    "dots": lambda n: _fill(".", n),
    "dotted local part, no @": lambda n: _fill("a.", n),  # audit e-mail net
    "local part chars, no @": lambda n: _fill("a+b-c_", n),
    "dotted local part, @ at the end": lambda n: _fill("a.", n, tail="@"),  # Presidio's e-mail pattern
    "letters then an address": lambda n: _fill("a", n, tail="@example.com"),
    "a word, spaces, a label": lambda n: _fill(" ", n, head="5551234 is", tail="x card"),  # _LINK
    "label and number pairs": lambda n: _fill("card 1234567 ", n),  # label binding, overlap resolution
    "oh oh ... one": lambda n: _fill("oh ", n, tail="one"),  # spoken-zero propagation
    "a digit, spaces, a letter": lambda n: _fill(" ", n, head="1", tail="x"),
    "repeated label words": lambda n: _fill("card number ", n),
    "spaces": lambda n: _fill(" ", n),
    "at signs": lambda n: _fill("a@", n),
    "PIN label and spaced digits pairs": lambda n: _fill("pin 1 2 3 4, ", n),  # PinRecognizer, its digit groups
    "PIN labels, then a card": lambda n: _fill("pin ", n, tail="4111 1111 1111 1111"),  # PIN labels skipped for a long number
}


_time = best_time


def _assert_linear(fn: Callable[[str], object], make: Callable[[int], str], n: int = N) -> None:
    fn(make(n // 8))  # warm caches (analyzer build, compiled patterns)
    small, big = make(n), make(8 * n)
    t_small, t_big = _time(fn, small), _time(fn, big)
    # a tiny t_small would make the ratio all noise: floor it at 1 ms
    ratio = t_big / max(t_small, 1e-3)
    assert ratio < RATIO, f"t({len(big)})/t({len(small)}) = {t_big:.4f}/{t_small:.4f} s = {ratio:.1f}"


CASES = list(HOSTILE.items())
IDS = [k for k, _ in CASES]


@pytest.mark.parametrize(("name", "make"), CASES, ids=IDS)
def test_scrub_is_linear(name: str, make: Callable[[int], str]) -> None:
    _assert_linear(scrub, make)


@pytest.mark.parametrize(("name", "make"), CASES, ids=IDS)
def test_analyze_is_linear(analyzer: PiiAnalyzer, name: str, make: Callable[[int], str]) -> None:
    _assert_linear(analyzer.analyze, make)


@pytest.mark.parametrize(("name", "make"), CASES, ids=IDS)
def test_redact_is_linear(analyzer: PiiAnalyzer, name: str, make: Callable[[int], str]) -> None:
    _assert_linear(lambda t: redact(t, analyzer.analyze(t)), make)


@pytest.mark.parametrize(("name", "make"), CASES, ids=IDS)
def test_pii_normalize_is_linear(name: str, make: Callable[[int], str]) -> None:
    _assert_linear(normalize, make)


@pytest.mark.parametrize(("name", "make"), CASES, ids=IDS)
def test_policy_text_forms_are_linear(name: str, make: Callable[[int], str]) -> None:
    _assert_linear(normalize_text, make)
    _assert_linear(digits_form, make)


@pytest.mark.parametrize(
    ("name", "make"), [c for c in CASES if c[0] in ("letters", "digits and dashes", "dotted local part, @ at the end",
                                                     "a word, spaces, a label", "label and number pairs")],
    ids=["letters", "digits and dashes", "dotted local part, @ at the end", "a word, spaces, a label",
         "label and number pairs"],
)
def test_streaming_scanner_is_linear(analyzer: PiiAnalyzer, name: str, make: Callable[[int], str]) -> None:
    def stream(text: str) -> None:
        sc = StreamingScanner(analyzer)
        for i in range(0, len(text), 1000):
            sc.feed(text[i : i + 1000])
        sc.finish()

    _assert_linear(stream, make)


def test_the_64000_letter_message_through_scrub() -> None:
    """The message of the incident: 64,000 letters, no ``@``, typed as one item."""
    text = "a" * 64_000
    assert scrub(text) == text
    t_8k, t_64k = _time(scrub, "a" * 8_000), _time(scrub, text)
    assert t_64k / max(t_8k, 1e-3) < RATIO


# ------------------------------------------------------------------ the rewrites match the same text
_OLD_AUDIT_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def test_audit_email_scan_finds_what_the_old_pattern_found() -> None:
    rng = random.Random(7)
    alphabet = "ab1_.+-@ \u00e9\u0663\n,x"
    for _ in range(20_000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert _email_spans(s) == [m.span() for m in _OLD_AUDIT_EMAIL.finditer(s)], s
    assert scrub("write to john.smith+x@example.co.uk today") == "write to <EMAIL_ADDRESS> today"


def test_presidio_email_pattern_only_bounds_the_local_part() -> None:
    stock = EmailRecognizer.PATTERNS[0].regex
    assert EMAIL_PATTERN == stock.replace("{0,}", "{0,62}")
    flags = regex.DOTALL | regex.MULTILINE | regex.IGNORECASE
    old, new = regex.compile(stock, flags), regex.compile(EMAIL_PATTERN, flags)
    rng = random.Random(8)
    for _ in range(10_000):
        s = "".join(rng.choice("ab.-@c1_+ .x!") for _ in range(rng.randint(0, 30)))
        assert [m.span() for m in new.finditer(s)] == [m.span() for m in old.finditer(s)], s


def test_link_pattern_matches_the_same_gaps() -> None:
    old = re.compile(
        r"[\s,;:-]*(?:(?:that|this|it|which)\s*(?:'s|\u2019s|\s+is|\s+was|\s+would\s+be|\s+should\s+be)|is|was|"
        r"would\s+be|should\s+be|being)\s+(?:the|my|your|his|her|our|their|its|a)?\s*",
        re.IGNORECASE,
    )
    words = [" ", "  ", ",", "-", "that", "it", "'s", "\u2019s", "is", "was", "would", "be", "being", "the", "my", "x"]
    rng = random.Random(9)
    for _ in range(20_000):
        s = "".join(rng.choice(words) for _ in range(rng.randint(0, 6)))
        assert bool(_LINK.fullmatch(s)) == bool(old.fullmatch(s)), repr(s)
