"""Server tools: function calls the bridge runs itself, never seen by the client.

A sans-I/O part of the call session.  The bridge declares its tools upstream (the pack's
``tools:`` bound to a ``hybrid_agent.tools`` registry); when the model calls one:

1. its events (``output_item.added/done``, ``function_call_arguments.delta/done``, the
   ``conversation.item`` echoes) are not relayed: a Realtime client must never see a call it did
   not declare, and the ``response.done`` it receives has those items taken out of ``output``;
2. the call session records the tool call and asks the policy gate about it (``tool_call``);
3. on the decision: allowed -> ``RunTool`` (the adapter validates the arguments and runs the tool
   with its timeout); anything else -> the decision's message goes back as the function output,
   so the model says the right thing;
4. the output goes upstream as ``function_call_output`` and, once the response that made the
   call is done, a ``response.create`` so the model answers with it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hybrid_agent.audit.records import GateActionRecord, ToolResultRecord
from hybrid_agent.session.actions import Action, Audit, RunTool, SendUpstream

#: hidden server-tool items remembered (the newest)
MAX_TRACKED = 256
#: ids of the function_call_output items the bridge creates (their echoes are hidden too)
OUTPUT_ITEM_PREFIX = "item_bridge_tool_"


#: what the model is told to do next, per refusing effect (the decision's message says why)
_NEXT = {
    "confirm": "Read the details of this {tool} call back to the caller and ask for an explicit yes. When the caller "
               "says yes, call {tool} again with exactly the same arguments; if not, do not call it.",
    "step_up": "Tell the caller an extra security check is needed (level {level}), verify them with the "
               "identity tool, then call {tool} again.",
    "require_disclosure": "Give the required disclosure first, then call {tool} again.",
    "escalate": "Do not continue with this request: tell the caller you are passing them to a colleague.",
}


def refusal_output(tool: str, effect: str, message: str | None, utterance: str | None, level: str | None) -> str:
    """The function output the model gets for a call the gate did not allow: why, what to say, what next."""
    error: dict[str, Any] = {"type": "not_allowed", "decision": effect, "message": message or "This action is not allowed now."}
    if utterance:
        error["say"] = utterance
    if level:
        error["level"] = level
    if effect in _NEXT:
        error["next"] = _NEXT[effect].format(tool=tool, level=level or "higher")
    return json.dumps({"error": error})


@dataclass(slots=True)
class ServerCall:
    call_id: str
    item_id: str
    name: str
    response_id: str | None
    arguments: str = ""
    output_sent: bool = False


@dataclass(slots=True)
class _Response:
    done: bool = False
    waiting: int = 0  # server calls of this response still without an output
    create_sent: bool = False


@dataclass
class ToolOrchestrator:
    call_id: str
    tools: frozenset[str]  # names of the tools the bridge runs
    next_seq: Callable[[], int]
    rel: Callable[[float], float]
    mode: str | None = None
    calls: dict[str, ServerCall] = field(default_factory=dict)  # call_id -> call
    _items: dict[str, str] = field(default_factory=dict)  # item_id -> call_id
    _responses: dict[str, _Response] = field(default_factory=dict)
    _outputs: int = 0

    def is_server_tool(self, name: str | None) -> bool:
        return bool(name) and name in self.tools

    # ------------------------------------------------------------------ events from the model
    def on_upstream(self, event: dict[str, Any]) -> list[Action] | None:
        """``[]`` to hide a server tool's event, a replacement to send, or ``None``: not the orchestrator's."""
        kind = event["type"]
        item = event.get("item") if isinstance(event.get("item"), dict) else None
        if kind == "response.output_item.added" and item and item.get("type") == "function_call":
            if not self.is_server_tool(item.get("name")):
                return None
            call = ServerCall(str(item.get("call_id") or item.get("id")), str(item.get("id")), str(item.get("name")),
                              event.get("response_id"))
            self._track(call)
            resp = self._responses.setdefault(str(call.response_id or ""), _Response())
            resp.waiting += 1
            return []
        if kind in ("conversation.item.added", "conversation.item.done", "conversation.item.created", "response.output_item.done"):
            item_id = str(item.get("id")) if item else ""
            return [] if item_id in self._items or item_id.startswith(OUTPUT_ITEM_PREFIX) else None
        if kind in ("response.function_call_arguments.delta", "response.function_call_arguments.done"):
            return [] if str(event.get("item_id")) in self._items or str(event.get("call_id")) in self.calls else None
        return None

    def adopt(self, call_id: str, item_id: str, name: str, response_id: str | None, arguments: str) -> None:
        """A client tool's call the gate refused: from now on the orchestrator answers it (and hides
        what is left of it) as it would a server tool's."""
        call = ServerCall(call_id, item_id, name, response_id, arguments)
        self._track(call)
        self._responses.setdefault(str(response_id or ""), _Response()).waiting += 1

    def _track(self, call: ServerCall) -> None:
        self.calls[call.call_id] = call
        self._items[call.item_id] = call.call_id
        while len(self.calls) > MAX_TRACKED:
            old = self.calls.pop(next(iter(self.calls)))
            self._items.pop(old.item_id, None)

    def clean_session(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """``session.created/updated`` without the server tools in ``session.tools`` (``None``: unchanged)."""
        session = event.get("session")
        tools = session.get("tools") if isinstance(session, dict) else None
        if not isinstance(tools, list) or not any(isinstance(t, dict) and t.get("name") in self.tools for t in tools):
            return None
        cleaned = copy.deepcopy(event)
        cleaned["session"]["tools"] = [t for t in tools if not (isinstance(t, dict) and t.get("name") in self.tools)]
        return cleaned

    def response_done(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, list[Action]]:
        """A ``response.done``: the event without the server calls' items (``None``: unchanged) and
        what to send upstream (the ``response.create`` once every server call has its output)."""
        response = event.get("response") if isinstance(event.get("response"), dict) else {}
        rid = str(response.get("id") or "")
        resp = self._responses.get(rid)
        if resp is None:
            return None, []
        resp.done = True
        cleaned = copy.deepcopy(event)
        output = cleaned.get("response", {}).get("output")
        if isinstance(output, list):
            cleaned["response"]["output"] = [o for o in output if not (isinstance(o, dict) and str(o.get("id")) in self._items)]
        return cleaned, self._maybe_create(rid, resp)

    # ------------------------------------------------------------------ decisions and results
    def decided(self, call_id: str, effect: str, message: str | None, now_ms: float, *,
                utterance: str | None = None, level: str | None = None) -> list[Action]:
        """The ``tool_call`` decision for a server call: run it, or answer with the decision."""
        call = self.calls.get(call_id)
        if call is None or call.output_sent:
            return []
        record = GateActionRecord(self.call_id, self.next_seq(), self.rel(now_ms), "tool_decided", mode=self.mode,
                                  item_id=call.item_id, tool=call.name, status=effect, effect=effect)
        if effect == "allow":
            return [Audit(record), RunTool(call.call_id, call.name, call.arguments)]
        output = refusal_output(call.name, effect, message, utterance, level)
        # the bridge's answer is the call's result: the audit shows what the model was told
        answer = ToolResultRecord(self.call_id, call.call_id, output, self.rel(now_ms), status="denied", extra={"decision": effect})
        return [Audit(record), Audit(answer), *self.output(call_id, output, now_ms)]

    def output(self, call_id: str, output: str, now_ms: float) -> list[Action]:
        """A server call's output (the tool's result or the bridge's answer): send it to the model."""
        call = self.calls.get(call_id)
        if call is None or call.output_sent:
            return []
        call.output_sent = True
        self._outputs += 1
        out: list[Action] = [SendUpstream({
            "type": "conversation.item.create", "event_id": f"event_bridge_tool_output_{self._outputs}",
            "item": {"id": f"{OUTPUT_ITEM_PREFIX}{self._outputs}", "type": "function_call_output", "call_id": call_id, "output": output},
        })]
        rid = str(call.response_id or "")
        resp = self._responses.setdefault(rid, _Response())
        resp.waiting = max(0, resp.waiting - 1)
        out.extend(self._maybe_create(rid, resp))
        return out

    @property
    def busy(self) -> bool:
        """A finished response's server calls still wait for their outputs (a rollover waits too)."""
        return any(r.waiting for r in self._responses.values())

    def _maybe_create(self, rid: str, resp: _Response) -> list[Action]:
        """Every server call of a finished response has its output: the model may answer now."""
        if not resp.done or resp.waiting or resp.create_sent:
            return []
        if not any(c.response_id == rid and c.output_sent for c in self.calls.values()):
            return []
        resp.create_sent = True
        self._responses.pop(rid, None)
        return [SendUpstream({"type": "response.create", "event_id": f"event_bridge_tool_answer_{self._outputs}"})]

