"""Every function call of a call, from the model's ``arguments.done`` to the output the model gets.

A sans-I/O part of the call session.  It records the call, asks the policy gate about it (once
the caller's words that led to it are transcribed: history rules and the caller's "yes" to a
confirmation need them; at most the check timeout), and acts on the decision in the enforcing
modes: a server tool runs (``ToolOrchestrator``), a client tool's held call is released to the
client (``ClientToolHold``), anything refused is answered by the bridge.  It also takes the
client's own ``function_call_output`` and a server tool's result, recording both and having the
gate decide on them (``tool_result``).  Confirmations are taken from the caller's own words
(``ConfirmationTracker``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hybrid_agent.audit.records import ToolCallRecord, ToolResultRecord
from hybrid_agent.policy.gate import PolicyCheck, PolicyOutcome
from hybrid_agent.policy.live import PolicySession
from hybrid_agent.policy.schema import PolicyInput
from hybrid_agent.session.actions import Action, Audit, CheckPolicy, RunTool, SendUpstream, StartTimer
from hybrid_agent.session.client_tools import ClientToolHold
from hybrid_agent.session.confirmations import ConfirmationTracker
from hybrid_agent.session.keypad import KeypadCapture
from hybrid_agent.session.replay import ConversationLog, HiddenItems
from hybrid_agent.session.tool_orchestrator import ToolOrchestrator
from hybrid_agent.session.turns import TurnTracker

#: a tool call waits (at most the check timeout) for the transcript of the caller's turn it answers
TOOL_WAIT_TIMER = "tool_wait:"
#: tool calls waiting for a transcript at once
MAX_WAITING = 16
UNCHECKABLE = "The action cannot be checked right now."


class ToolCallFlow:
    def __init__(
        self,
        call_id: str,
        *,
        policy: PolicySession | None,
        tracker: TurnTracker,
        history: ConversationLog,
        hidden: HiddenItems,
        tools: ToolOrchestrator | None,
        client_tools: ClientToolHold | None,
        check: Callable[..., CheckPolicy],
        gate_action: Callable[..., Audit],
        deliver: Callable[[dict[str, Any], str | None, float], list[Action]],
        rel: Callable[[float], float],
        enforcing: bool,
        check_timeout_ms: float,
    ) -> None:
        self.call_id = call_id
        self.policy = policy
        self.tracker = tracker
        self.history = history
        self.hidden = hidden
        self.tools = tools
        self.client_tools = client_tools
        self._check = check
        self._gate_action = gate_action
        self._deliver = deliver
        self._rel = rel
        self.enforcing = enforcing
        self.check_timeout_ms = check_timeout_ms
        self.confirmations = ConfirmationTracker()
        self._server_checks: dict[str, str] = {}  # tool-call record id -> server call id (awaiting its decision)
        self._client_checks: dict[str, str] = {}  # tool-call record id -> held client call id
        self._waiting: list[ToolCallRecord] = []  # decided once the caller's turn is transcribed
        self.keypad: KeypadCapture | None = None  # set by the session when a tool has keypad arguments
        self.keypad_tools: dict[str, dict[str, str]] = {}

    @property
    def busy(self) -> bool:
        """A tool call awaits its decision or its output (a rollover waits for it)."""
        return bool(self._server_checks or self._client_checks or self._waiting) or (self.tools is not None and self.tools.busy)

    def _is_server(self, name: str) -> bool:
        return self.tools is not None and self.tools.is_server_tool(name)

    # ------------------------------------------------------------------ the model's call
    def model_called(self, record: ToolCallRecord, now_ms: float) -> list[Action]:
        """The model finished a function call: audited, then decided (now, or once the caller's words are in)."""
        out: list[Action] = [Audit(record)]
        self.history.add({"type": "function_call", "call_id": record.tool_call_id, "name": record.name, "arguments": record.arguments})
        if self.tools is not None and self._is_server(record.name):
            server_call = self.tools.calls.get(record.tool_call_id)
            if server_call is not None:
                server_call.arguments = record.arguments
            if self.policy is None:
                return out + self.tools.decided(record.tool_call_id, "allow", None, now_ms)
        if self.policy is None:
            return out
        if self.tracker.caller_turn_untranscribed():
            self._waiting.append(record)
            del self._waiting[:-MAX_WAITING]
            return [*out, StartTimer(TOOL_WAIT_TIMER + record.record_id, self.check_timeout_ms)]
        return out + self._decide(record)

    def _decide(self, record: ToolCallRecord) -> list[Action]:
        assert self.policy is not None
        confirmed = self.confirmations.take(record.name, record.arguments)
        inp = self.policy.tool_call(record.name, record.arguments, record.at_ms, confirmed=confirmed)
        out: list[Action] = [self._check(record.record_id, inp, record.at_ms)]
        self.policy.note_tool_call()
        if self._is_server(record.name):
            self._server_checks[record.record_id] = record.tool_call_id  # it runs once the decision is in
        elif self.client_tools is not None and self.client_tools.is_pending(record.tool_call_id):
            self._client_checks[record.record_id] = record.tool_call_id  # released or answered once decided
        return out

    def decide_waiting(self, only: str | None = None) -> list[Action]:
        out: list[Action] = []
        keep: list[ToolCallRecord] = []
        for record in self._waiting:
            if only is None or record.record_id == only:
                out.extend(self._decide(record))
            else:
                keep.append(record)
        self._waiting = keep
        return out

    def timer_fired(self, name: str) -> list[Action] | None:
        if not name.startswith(TOOL_WAIT_TIMER):
            return None
        return self.decide_waiting(only=name[len(TOOL_WAIT_TIMER):])

    def caller_said(self, text: str | None, item_id: str, now_ms: float) -> list[Action]:
        """A caller turn finished: it may confirm a held call, and the calls waiting for it are decided."""
        out: list[Action] = []
        if text and self.enforcing:  # a confirmation only counts where it is enforced
            for tool in self.confirmations.caller_said(text):
                out.append(self._gate_action("tool_confirmed", now_ms, item_id=item_id, tool=tool))
        return out + self.decide_waiting()

    # ------------------------------------------------------------------ decisions
    def decided(self, outcome: PolicyOutcome, utterance: str | None, now_ms: float) -> list[Action]:
        """A ``tool_call`` decision: observe lets every call run; the enforcing modes act on it."""
        decision = outcome.decision
        subject = outcome.check.subject_id
        message = decision.messages[0] if decision.messages else None
        out: list[Action] = []
        if self.enforcing and decision.effect == "confirm":
            inp = outcome.check.input
            self.confirmations.requested(inp.tool or "", json.dumps(inp.args))
        if subject in self._client_checks:
            out.extend(self._client_decided(subject, decision.effect, message, utterance, decision.level, now_ms))
        server_call = self._server_checks.pop(subject, None)
        if server_call is not None and self.tools is not None:
            effect = decision.effect if self.enforcing else "allow"
            for action in self.tools.decided(server_call, effect, message, now_ms, utterance=utterance, level=decision.level):
                fields = self.keypad_tools.get(action.name) if isinstance(action, RunTool) else None
                if fields and self.keypad is not None:  # allowed: the caller keys in the card first
                    out.extend(self.keypad.start(action.call_id, action.name, action.arguments, fields, now_ms))
                else:
                    out.append(action)
        return out

    def failed(self, check: PolicyCheck, effect: str, now_ms: float) -> list[Action]:
        """The decision could not be taken: the call neither runs nor reaches the client."""
        out: list[Action] = []
        server_call = self._server_checks.pop(check.subject_id, None)
        if server_call is not None and self.tools is not None:
            out.extend(self.tools.decided(server_call, effect, UNCHECKABLE, now_ms))
        if check.subject_id in self._client_checks:
            out.extend(self._client_decided(check.subject_id, effect, UNCHECKABLE, None, None, now_ms))
        return out

    def _client_decided(self, subject: str, effect: str, message: str | None, utterance: str | None,
                        level: str | None, now_ms: float) -> list[Action]:
        """A held client call was decided: released to the client, or answered by the bridge."""
        assert self.client_tools is not None and self.tools is not None
        call_id = self._client_checks.pop(subject)
        call, done = self.client_tools.decided(call_id)
        if call is None:
            return []
        out: list[Action] = [self._gate_action("client_tool_held", now_ms, item_id=call.item_id, tool=call.name,
                                               status="released" if effect == "allow" else effect, effect=effect)]
        if effect == "allow":
            for event, raw in call.events:
                out.extend(self._deliver(event, raw, now_ms))
        else:
            state = self.tracker.tool_calls.get(call_id)
            self.tools.adopt(call_id, call.item_id, call.name, call.response_id, state.arguments if state else "")
            for event, _ in call.events:
                self.hidden.hide(event)
            out.extend(self.tools.decided(call_id, effect, message, now_ms, utterance=utterance, level=level))
        if done is not None:
            out.extend(self._deliver(done[0], done[1], now_ms))
        return out

    # ------------------------------------------------------------------ results
    def client_output(self, event: dict[str, Any], raw: str | None, now_ms: float) -> list[Action]:
        """The client's ``function_call_output``: relayed, recorded and decided."""
        item = event["item"]
        call = self.tracker.tool_calls.get(item["call_id"])
        solicited = call is not None and call.done and not call.answered
        result = ToolResultRecord(call_id=self.call_id, tool_call_id=item["call_id"], output=item.get("output", ""),
                                  at_ms=self._rel(now_ms), status="ok" if solicited else "unsolicited")
        out: list[Action] = [SendUpstream(event, raw), Audit(result)]
        name, args = (call.name, call.arguments) if call else ("", "")
        if self.policy is not None:
            out.append(self._result_check(result, name, args))
            if solicited:  # an output for a call the model never made cannot verify anyone
                self.policy.note_tool_result(result.output, tool=name, arguments=args)
        if call is not None:
            call.answered = True
        if solicited:
            self.history.add({"type": "function_call_output", "call_id": result.tool_call_id, "output": result.output})
        return out

    def server_result(self, call_id: str, status: str, output: str, latency_ms: float, now_ms: float) -> list[Action]:
        """A server tool ran (or its arguments were refused): record it and give the model its output."""
        call = self.tools.calls.get(call_id) if self.tools is not None else None
        if call is None or self.tools is None:
            return []
        result = ToolResultRecord(call_id=self.call_id, tool_call_id=call_id, output=output, at_ms=self._rel(now_ms), status=status)
        out: list[Action] = [
            Audit(result),
            self._gate_action("tool_run", now_ms, item_id=call.item_id, tool=call.name, status=status, latency_ms=round(latency_ms, 1)),
        ]
        state = self.tracker.tool_calls.get(call_id)
        if state is not None:
            state.answered = True
        if self.policy is not None:
            out.append(self._result_check(result, call.name, call.arguments))
            self.policy.note_tool_result(output, ok=status == "ok", tool=call.name, arguments=call.arguments)
        self.history.add({"type": "function_call_output", "call_id": call_id, "output": output})
        out.extend(self.tools.output(call_id, output, now_ms))
        return out

    def _result_check(self, result: ToolResultRecord, name: str, arguments: str) -> CheckPolicy:
        assert self.policy is not None
        inp: PolicyInput = self.policy.tool_result(name, arguments, result.output, result.at_ms)
        return self._check(result.record_id, inp, result.at_ms, scan_pii=True)
