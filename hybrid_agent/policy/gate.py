"""The policy gate as the call session uses it: a check request in, a decision out.

The session builds a :class:`PolicyCheck` (pure data) and returns it as a
``CheckPolicy`` action; the adapter runs :meth:`PolicyGate.decide` off the event
loop (PII analysis costs about a millisecond, policy evaluation tens of
microseconds) and feeds the :class:`PolicyOutcome` back to the session, which
records it.  So the audio path never waits for either.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hybrid_agent.policy.engine import Decision, Pack
from hybrid_agent.policy.schema import PolicyInput
from hybrid_agent.policy.speech import BLOCKING_EFFECTS, SpeechCheck, SpeechVerdict, approvable_end, phrase_ends

GATE_MODES = ("off", "observe", "monitor", "hold")
#: long texts are scanned for PII in windows of this many characters, overlapping by SCAN_OVERLAP
SCAN_WINDOW = 2000
SCAN_OVERLAP = 200
#: a speech check re-scans this many characters before what it already approved
SPEECH_LOOKBACK = 320
SPEECH_WORKERS = 2
#: modes this version enforces (monitor and hold gate the assistant's speech)
IMPLEMENTED_GATE_MODES = ("off", "observe", "monitor", "hold")


@dataclass(frozen=True, slots=True)
class PolicyCheck:
    """One event to decide on.  ``scan_pii``: fill ``input.pii`` from the PII gate over ``input.text``."""

    check_id: int
    subject_id: str
    input: PolicyInput
    at_ms: float
    scan_pii: bool = False

    @property
    def stage(self) -> str:
        return str(self.input.stage)


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's part in a decision, as the audit records it."""

    rule_id: str
    effect: str
    message: str | None


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    check: PolicyCheck
    decision: Decision
    pii: dict[str, int]
    input_digest: str
    findings: tuple[Finding, ...]
    pii_ms: float | None = None    # time the PII scan took (None: no scan)
    rules_ms: float | None = None  # time the rules took


def input_digest(inp: PolicyInput) -> str:
    """sha256 of the exact input the rules saw (the input itself is never stored)."""
    # ensure_ascii: a lone surrogate in caller text must not make the digest (and the decision) fail
    canonical = json.dumps(inp.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class PolicyGate:
    """A loaded pack plus the PII analyzer; ``decide`` is thread-safe and does no I/O."""

    def __init__(self, pack: Pack, analyzer: Any = None) -> None:
        self.pack = pack
        self._analyzer = analyzer
        self._speech_executor: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def speech_executor(self) -> concurrent.futures.ThreadPoolExecutor:
        """Workers for speech checks only: a held answer's release must not queue behind another
        caller's huge typed text or tool output on the general gate workers."""
        if self._speech_executor is None:
            self._speech_executor = concurrent.futures.ThreadPoolExecutor(SPEECH_WORKERS, thread_name_prefix="speech-gate")
        return self._speech_executor

    def close(self) -> None:
        if self._speech_executor is not None:
            self._speech_executor.shutdown(wait=True)
            self._speech_executor = None

    @property
    def analyzer(self) -> Any:
        if self._analyzer is None:
            from hybrid_agent.pii import get_analyzer

            self._analyzer = get_analyzer()
        return self._analyzer

    def decide(self, check: PolicyCheck) -> PolicyOutcome:
        inp = check.input
        pii: dict[str, int] = dict(inp.pii)
        pii_ms: float | None = None
        if check.scan_pii and inp.text:
            t0 = time.perf_counter()
            pii = dict(Counter(e.type for e in self._scan(inp.text)))
            pii_ms = (time.perf_counter() - t0) * 1000
            inp = inp.model_copy(update={"pii": pii})
        t1 = time.perf_counter()
        decision = self.pack.evaluate(inp)
        rules_ms = (time.perf_counter() - t1) * 1000
        return PolicyOutcome(check, decision, pii, input_digest(inp), self._findings(decision), pii_ms, rules_ms)

    def decide_speech(self, check: SpeechCheck) -> SpeechVerdict:
        """How much of an answer may be spoken: whole sentences the PII gate has settled, if the
        pack's ``assistant_text`` rules allow everything up to there.  Thread-safe, no I/O."""
        from hybrid_agent.pii.streaming import unsettled_tail

        text = check.text
        lower = max(0, check.approved - SPEECH_LOOKBACK)
        settled = len(text) if check.final else unsettled_tail(text, lower)
        cut = approvable_end(text, check.final, settled)
        if cut <= check.approved and not check.final:
            return SpeechVerdict(check, check.approved)
        # the new part, with enough before it that a number or label split across checks is whole
        while lower > 0 and not text[lower - 1].isspace():
            lower -= 1
        entities = [(lower + e.start, lower + e.end, e.type) for e in self._scan(text[lower:cut])]

        def decide(end: int) -> Any:
            pii = dict(Counter(kind for _, stop, kind in entities if stop <= end))
            return self.pack.evaluate(check.input.model_copy(update={"text": text[:end], "pii": pii}))

        decision = decide(cut)
        if decision.effect not in BLOCKING_EFFECTS:
            return SpeechVerdict(check, cut)
        # which phrase blocked: the clean prefix before it is what the caller may have heard
        # fairly (monitor counts the leak from there), never more than was approved before
        clean = check.approved
        for end in phrase_ends(text, check.approved, cut):
            if end < cut and decide(end).effect not in BLOCKING_EFFECTS:
                clean = end
            else:
                break
        return SpeechVerdict(
            check, clean, rule_id=decision.rule_id, effect=decision.effect,
            utterance=decision.utterances[0] if decision.utterances else None,
            message=decision.messages[0] if decision.messages else None,
        )

    def _scan(self, text: str) -> list[Any]:
        """PII entities in ``text``; long texts in overlapping windows, so the cost stays linear.

        Analysis time grows faster than linearly with length (a 300k-character tool output took
        about 10 s in one piece), and one caller must not stall the gate for every other call.
        """
        if len(text) <= SCAN_WINDOW:
            return list(self.analyzer.analyze(text))
        found: dict[tuple[str, int, int], Any] = {}
        step = SCAN_WINDOW - SCAN_OVERLAP
        for start in range(0, len(text), step):
            for e in self.analyzer.analyze(text[start : start + SCAN_WINDOW]):
                found.setdefault((e.type, start + e.start, start + e.end), e)
            if start + SCAN_WINDOW >= len(text):
                break
        # an entity seen whole in two overlapping windows counts once (same absolute span)
        return list(found.values())

    def _findings(self, decision: Decision) -> tuple[Finding, ...]:
        """Every matched rule with its own effect (the deciding ones and the obligations), or the pack default."""
        if not decision.matched:
            return (Finding(decision.rule_id, decision.effect, None),)
        out = []
        for m in decision.matched:
            rule = self.pack.rule(m.rule_id)
            message = m.error or (rule.rule.message if rule is not None else None)
            out.append(Finding(m.rule_id, m.effect, message))
        return tuple(out)
