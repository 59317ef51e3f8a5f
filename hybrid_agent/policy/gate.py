"""The policy gate as the call session uses it: a check request in, a decision out.

The session builds a :class:`PolicyCheck` (pure data) and returns it as a
``CheckPolicy`` action; the adapter runs :meth:`PolicyGate.decide` off the event
loop (PII analysis costs about a millisecond, policy evaluation tens of
microseconds) and feeds the :class:`PolicyOutcome` back to the session, which
records it.  So the audio path never waits for either.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hybrid_agent.policy.engine import Decision, Pack
from hybrid_agent.policy.schema import PolicyInput

GATE_MODES = ("off", "observe", "monitor", "hold")
#: long texts are scanned for PII in windows of this many characters, overlapping by SCAN_OVERLAP
SCAN_WINDOW = 2000
SCAN_OVERLAP = 200
#: modes this version enforces; monitor and hold (cancel / hold assistant audio) come next
IMPLEMENTED_GATE_MODES = ("off", "observe")


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

    @property
    def analyzer(self) -> Any:
        if self._analyzer is None:
            from hybrid_agent.pii import get_analyzer

            self._analyzer = get_analyzer()
        return self._analyzer

    def decide(self, check: PolicyCheck) -> PolicyOutcome:
        inp = check.input
        pii: dict[str, int] = dict(inp.pii)
        if check.scan_pii and inp.text:
            pii = dict(Counter(e.type for e in self._scan(inp.text)))
            inp = inp.model_copy(update={"pii": pii})
        decision = self.pack.evaluate(inp)
        return PolicyOutcome(check, decision, pii, input_digest(inp), self._findings(decision))

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
