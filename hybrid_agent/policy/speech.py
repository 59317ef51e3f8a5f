"""Speech checks: may this much of an assistant answer be spoken?

The session's speech gate (``hybrid_agent.session.speech_gate``) asks; the policy gate's
worker answers off the event loop (``PolicyGate.decide_speech``): the PII gate over the
new part of the transcript, then the pack's ``assistant_text`` rules over everything up
to the last sentence the caller may hear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hybrid_agent.policy.schema import PolicyInput

BLOCKING_EFFECTS = frozenset({"block_speech", "deny", "escalate"})
_PHRASE_END = re.compile(r"[.!?,;:](?=\s|$)")


@dataclass(frozen=True, slots=True)
class SpeechCheck:
    """May the first ``len(text)`` characters of this answer be spoken?  Decided off the event loop."""

    check_id: int
    item_id: str
    text: str
    final: bool
    approved: int  # characters already approved (the worker scans from shortly before here)
    input: PolicyInput  # the assistant_text input with the call's context; the worker sets text and pii
    at_ms: float


@dataclass(frozen=True, slots=True)
class SpeechVerdict:
    check: SpeechCheck
    approved: int  # characters of ``check.text`` that passed (up to a phrase end); when blocked: the clean prefix
    rule_id: str | None = None  # the rule that blocked, if any
    effect: str | None = None
    utterance: str | None = None  # what to say instead
    message: str | None = None

    @property
    def blocked(self) -> bool:
        return self.effect in BLOCKING_EFFECTS


def phrase_ends(text: str, start: int, stop: int) -> list[int]:
    """Offsets just after each phrase end (``. ! ? , ; :``) in ``text[start:stop]``."""
    return [m.end() for m in _PHRASE_END.finditer(text, start, stop)]


def approvable_end(text: str, final: bool, settled: int) -> int:
    """Where the gate may approve up to: the last phrase end (``. ! ? , ; :``) at or before ``settled``.

    Phrases, not words: a blocked phrase ("no risk", a card number read out) is never half
    released before its end arrives.  Phrases, not sentences: the audio of a long sentence is
    not held until its last word's text arrives (with a transcript only slightly ahead of the
    audio, sentence-level release starves the caller's playback between sentences)."""
    if final:
        return min(len(text), settled)
    cut = 0
    for m in _PHRASE_END.finditer(text, 0, settled):
        cut = m.end()
    return cut
