"""What the session does with a policy decision: record it, and in the enforcing modes act on it.

A sans-I/O part of the call session.  Every rule's part in a decision becomes a
``PolicyDecisionRecord`` (a decision that could not be taken, the pack's fail-closed effect);
then the decision goes to the part that acts on its stage: ``session_start`` -> the required
disclosures spoken first (``BridgeTurns``), ``user_text`` -> the gated user turn, ``tool_call``
-> the tool call flow.  An ``escalate`` anywhere flags the call and posts the webhook
(``NotifyEscalation``), once per rule.  It also notices a disclosure that was asked for and not
delivered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hybrid_agent.audit.records import PolicyDecisionRecord, TurnRecord
from hybrid_agent.policy.gate import PolicyCheck, PolicyOutcome
from hybrid_agent.policy.live import PolicySession
from hybrid_agent.session.actions import Action, Audit, NotifyEscalation
from hybrid_agent.session.bridge_turns import BridgeTurns
from hybrid_agent.session.tool_calls import ToolCallFlow


class DecisionRouter:
    def __init__(
        self,
        call_id: str,
        gate: Any,  # call_session.GateConfig | None (not imported: no import circle)
        policy: PolicySession | None,
        bridge_turns: BridgeTurns | None,
        tool_flow: ToolCallFlow,
        gate_action: Callable[..., Audit],
    ) -> None:
        self.call_id = call_id
        self.gate = gate
        self.policy = policy
        self.bridge_turns = bridge_turns
        self.tool_flow = tool_flow
        self._gate_action = gate_action
        self._seq = 0
        self.escalated: set[str] = set()  # rules that escalated this call (one flag and webhook each)
        self._asked: list[str] = []  # disclosures asked for word for word, not yet seen delivered

    def _next(self) -> int:
        self._seq += 1
        return self._seq - 1

    # ------------------------------------------------------------------ decisions
    def failed(self, check: PolicyCheck, reason: str, now_ms: float) -> list[Action]:
        """The gate could not decide ``check``: record the pack's fail-closed effect, never nothing."""
        gate = self.gate
        record = PolicyDecisionRecord(
            call_id=self.call_id, seq=self._next(), stage=check.stage, rule_id="gate:error",
            effect=gate.on_error if gate else "deny", policy_version=gate.version if gate else "",
            at_ms=check.at_ms, policy_pack=gate.pack if gate else None, subject_id=check.subject_id,
            message=f"the policy gate failed: {reason}"[:500],
            redacted=False,  # the reason may quote input; the writer redacts it
        )
        out: list[Action] = [Audit(record)]
        if check.stage == "tool_call":  # an undecidable call neither runs nor reaches the client
            out.extend(self.tool_flow.failed(check, record.effect, now_ms))
        if self.bridge_turns is not None:
            if check.stage == "user_text":
                out.extend(self.bridge_turns.failed(check.subject_id, reason, now_ms))
            elif check.stage == "session_start" and gate is not None:  # cannot tell which are required: all of them
                out.extend(self._speak_disclosures(tuple(gate.disclosures), "gate:error", now_ms))
        return out

    def decided(self, outcome: PolicyOutcome, now_ms: float) -> list[Action]:
        """Record every rule's part in the decision, then act on it (observe: recording only)."""
        gate = self.gate
        out: list[Action] = [
            Audit(PolicyDecisionRecord(
                call_id=self.call_id, seq=self._next(), stage=outcome.check.stage, rule_id=finding.rule_id,
                effect=finding.effect, policy_version=outcome.decision.pack_version, at_ms=outcome.check.at_ms,
                policy_pack=gate.pack if gate else outcome.decision.pack, subject_id=outcome.check.subject_id,
                input_digest=outcome.input_digest, message=finding.message,
                redacted=True,  # rule messages are the pack's text
            ))
            for finding in outcome.findings
        ]
        decision, stage = outcome.decision, outcome.check.stage
        utterance = decision.utterances[0] if decision.utterances else None
        if decision.effect == "escalate":
            first = self._escalate(outcome, utterance, now_ms, out)
            if first and self.bridge_turns is not None and stage == "user_text" and not self.bridge_turns.gated:
                # the model is already answering: the escalation is said after that answer
                out.extend(self.bridge_turns.say(utterance or self.bridge_turns.escalation_utterance, "escalation", now_ms))
        if self.bridge_turns is not None:
            if stage == "session_start":
                required = decision.disclosures if decision.effect == "require_disclosure" else ()
                out.extend(self._speak_disclosures(required, decision.rule_id, now_ms))
            elif stage == "user_text":
                out.extend(self.bridge_turns.decided(outcome.check.subject_id, decision.effect, utterance,
                                                     decision.rule_id, outcome.pii, now_ms))
        if stage == "tool_call":
            out.extend(self.tool_flow.decided(outcome, utterance, now_ms))
        return out

    def _escalate(self, outcome: PolicyOutcome, utterance: str | None, now_ms: float, out: list[Action]) -> bool:
        """A rule escalated: the call is flagged and the webhook posted, once per rule.  True the first time."""
        decision = outcome.decision
        if decision.rule_id in self.escalated:
            return False
        self.escalated.add(decision.rule_id)
        gate = self.gate
        spoken = utterance or (gate.escalation_utterance if gate else None)
        out.append(self._gate_action("escalated", now_ms, rule_id=decision.rule_id, effect="escalate",
                                     status=outcome.check.stage, text=spoken, redacted=True))
        out.append(NotifyEscalation(self.call_id, decision.rule_id, outcome.check.stage, decision.severity,
                                    outcome.check.at_ms, gate.pack if gate else decision.pack, decision.pack_version))
        return True

    # ------------------------------------------------------------------ disclosures
    def _speak_disclosures(self, disclosure_ids: tuple[str, ...], rule_id: str, now_ms: float) -> list[Action]:
        """The required disclosures, asked for word for word before the model's first answer."""
        assert self.bridge_turns is not None and self.policy is not None
        out: list[Action] = []
        for disclosure in disclosure_ids:
            script = self.policy.disclosure_texts.get(disclosure)
            if not script or disclosure in self.policy.disclosures or disclosure in self._asked:
                continue
            self._asked.append(disclosure)
            out.append(self._gate_action("disclosure_requested", now_ms, rule_id=disclosure, status=rule_id, text=script, redacted=True))
            out.extend(self.bridge_turns.say(script, "disclosure", now_ms))
        out.extend(self.bridge_turns.stop_holding())
        return out

    def assistant_turn(self, record: TurnRecord, now_ms: float) -> list[Action]:
        """An answer finished: a disclosure asked for and not in what was said is undelivered."""
        if not self._asked or self.policy is None:
            return []
        undelivered = [d for d in self._asked if d not in self.policy.disclosures]
        self._asked = []
        # the tools that require it stay blocked by the pack's own tool_call rules
        return [self._gate_action("disclosure_undelivered", now_ms, item_id=record.item_id, rule_id=d) for d in undelivered]
