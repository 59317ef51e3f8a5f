"""The server-tool orchestrator, sans-I/O: hidden events, a consistent response.done, output then answer."""

from __future__ import annotations

from hybrid_agent.session import RunTool, SendUpstream
from hybrid_agent.session.tool_orchestrator import OUTPUT_ITEM_PREFIX, ToolOrchestrator


def orch() -> ToolOrchestrator:
    seq = iter(range(100))
    return ToolOrchestrator("c", frozenset({"get_balance"}), lambda: next(seq), lambda now: now, mode="hold")


def added(name: str, item: str = "fc_1", call: str = "call_1") -> dict:
    return {"type": "response.output_item.added", "response_id": "r1",
            "item": {"id": item, "type": "function_call", "name": name, "call_id": call}}


def test_server_tool_events_are_hidden_and_client_tools_are_not() -> None:
    o = orch()
    assert o.on_upstream(added("get_balance")) == []
    assert o.on_upstream({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": "{"}) == []
    assert o.on_upstream({"type": "response.function_call_arguments.done", "item_id": "fc_1", "call_id": "call_1"}) == []
    assert o.on_upstream({"type": "conversation.item.done", "item": {"id": "fc_1"}}) == []
    assert o.on_upstream({"type": "conversation.item.added", "item": {"id": f"{OUTPUT_ITEM_PREFIX}1"}}) == []
    assert o.on_upstream(added("client_tool", "fc_2", "call_2")) is None


def test_response_done_is_consistent_and_the_answer_waits_for_the_output() -> None:
    o = orch()
    o.on_upstream(added("get_balance"))
    [run] = [a for a in o.decided("call_1", "allow", None, 1.0) if isinstance(a, RunTool)]
    assert run.name == "get_balance"
    done = {"type": "response.done", "response": {"id": "r1", "output": [{"id": "fc_1", "type": "function_call"},
                                                                         {"id": "msg", "type": "message"}]}}
    cleaned, extra = o.response_done(done)
    assert [i["id"] for i in cleaned["response"]["output"]] == ["msg"] and extra == []  # no output yet: no answer yet
    out = o.output("call_1", '{"balance": 1}', 2.0)
    kinds = [a.event["type"] for a in out if isinstance(a, SendUpstream)]
    assert kinds == ["conversation.item.create", "response.create"]
    assert o.output("call_1", "{}", 3.0) == []  # one output per call


def test_a_refused_call_is_answered_with_the_decision() -> None:
    o = orch()
    o.on_upstream(added("get_balance"))
    out = o.decided("call_1", "deny", "Verify the caller first.", 1.0)
    assert not [a for a in out if isinstance(a, RunTool)]
    [create] = [a.event for a in out if isinstance(a, SendUpstream)]
    assert "Verify the caller first." in create["item"]["output"] and '"not_allowed"' in create["item"]["output"]
