"""A tool the client declared, in an enforcing mode: its call reaches the client only once the
``tool_call`` decision allowed it; a refused call never does, and the bridge answers the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hybrid_agent.audit.records import GateActionRecord, ToolResultRecord
from hybrid_agent.pii import get_analyzer
from hybrid_agent.policy import load_pack
from hybrid_agent.policy.gate import PolicyGate
from hybrid_agent.session import Audit, CallConfig, CallSession, CheckPolicy, GateConfig, SendClient, SendUpstream
from hybrid_agent.session.client_tools import MAX_EVENTS_PER_CALL

NOTICE = "This call is recorded for quality, training and compliance purposes."


@pytest.fixture(scope="module")
def gate() -> PolicyGate:
    return PolicyGate(load_pack(Path(__file__).resolve().parents[1] / "policies" / "retail-banking"), analyzer=get_analyzer())


def session(gate: PolicyGate) -> CallSession:
    pack = gate.pack
    cfg = GateConfig(pack.name, pack.version, "hold", pack.manifest.history_turns, {"recording_notice": NOTICE},
                     tools=dict(pack.manifest.tools))
    s = CallSession(CallConfig(call_id="call_c", gate=cfg))
    run(s, gate, s.start(0.0, 1.0))
    return s


def run(s: CallSession, gate: PolicyGate, actions: list[Any]) -> list[Any]:
    """Carry out the policy checks the way the adapter does; every action, in order."""
    out: list[Any] = []
    for a in actions:
        out.append(a)
        if isinstance(a, CheckPolicy):
            out += run(s, gate, s.feed_policy_outcome(gate.decide(a.check), 10.0))
    return out


def tool_round(resp: str, call_id: str, name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    item = {"id": f"item_{call_id}", "type": "function_call", "name": name, "call_id": call_id, "arguments": "", "status": "in_progress"}
    text = json.dumps(args)
    ids = {"response_id": resp, "item_id": item["id"], "output_index": 0, "call_id": call_id}
    return [
        {"type": "response.created", "response": {"id": resp, "status": "in_progress", "output": []}},
        {"type": "response.output_item.added", "response_id": resp, "output_index": 0, "item": item},
        {"type": "conversation.item.added", "item": item, "previous_item_id": None},
        {"type": "response.function_call_arguments.delta", **ids, "delta": text[:5]},
        {"type": "response.function_call_arguments.delta", **ids, "delta": text[5:]},
        {"type": "response.function_call_arguments.done", **ids, "name": name, "arguments": text},
        {"type": "response.output_item.done", "response_id": resp, "output_index": 0, "item": {**item, "status": "completed", "arguments": text}},
        {"type": "response.done", "response": {"id": resp, "status": "completed", "output": [{**item, "status": "completed", "arguments": text}]}},
    ]


def feed(s: CallSession, gate: PolicyGate, events: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for e in events:
        out += run(s, gate, s.feed_upstream(e, 5.0))
    return out


def to_client(actions: list[Any]) -> list[dict[str, Any]]:
    return [a.event if a.event is not None else json.loads(a.raw) for a in actions if isinstance(a, SendClient)]


def upstream(actions: list[Any]) -> list[dict[str, Any]]:
    return [a.event for a in actions if isinstance(a, SendUpstream) and a.event is not None]


def test_a_refused_client_call_never_reaches_the_client(gate: PolicyGate) -> None:
    s = session(gate)  # the recording notice was not given: every account tool is refused
    out = feed(s, gate, tool_round("r1", "c1", "get_balance", {"account_id": "A-1"}))
    client = to_client(out)
    assert [e["type"] for e in client] == ["response.created", "response.done"]
    assert client[-1]["response"]["output"] == []  # the call is taken out of what the client sees
    answer = upstream(out)
    assert [e["type"] for e in answer] == ["conversation.item.create", "response.create"]
    error = json.loads(answer[0]["item"]["output"])["error"]
    assert error["decision"] == "require_disclosure" and "disclosure" in error["next"]
    actions = [a.record for a in out if isinstance(a, Audit) and isinstance(a.record, GateActionRecord)]
    assert [(r.action, r.status) for r in actions if r.action == "client_tool_held"] == [("client_tool_held", "require_disclosure")]
    assert [r.status for r in (a.record for a in out if isinstance(a, Audit)) if isinstance(r, ToolResultRecord)] == ["denied"]
    # the bridge's own output item and its echoes stay hidden too
    echo = {"type": "conversation.item.added", "item": {"id": "item_bridge_tool_1", "type": "function_call_output"}, "previous_item_id": "item_c1"}
    assert to_client(feed(s, gate, [echo])) == []


def test_an_allowed_client_call_is_released_in_order(gate: PolicyGate) -> None:
    s = session(gate)
    s.policy.note_disclosure("recording_notice")  # type: ignore[union-attr]
    events = tool_round("r1", "c1", "verify_identity", {"customer_id": "DEMO-CUST-0001", "date_of_birth": "1980-03-03"})
    out = feed(s, gate, events)
    client = to_client(out)
    assert [e["type"] for e in client] == [e["type"] for e in events]  # all of it, in the model's order
    assert upstream(out) == []  # the client runs it and answers itself
    held = [a.record for a in out if isinstance(a, Audit) and isinstance(a.record, GateActionRecord) and a.record.action == "client_tool_held"]
    assert [r.status for r in held] == ["released"]


def test_what_is_held_for_one_call_is_bounded(gate: PolicyGate) -> None:
    s = session(gate)
    round_ = tool_round("r1", "c1", "get_balance", {"account_id": "A-1"})
    hold = s.client_tools
    assert hold is not None
    for e in round_[:2]:
        s.feed_upstream(e, 5.0)
    delta = round_[3]
    for _ in range(MAX_EVENTS_PER_CALL * 3):
        s.feed_upstream(delta, 5.0)
    assert len(hold.pending["c1"].events) == MAX_EVENTS_PER_CALL and hold.pending["c1"].dropped > 0
