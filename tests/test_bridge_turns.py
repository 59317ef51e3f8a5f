"""The sans-I/O parts the enforcing session gained: the bridge's own responses and the gated user
turn (``session.bridge_turns``), confirmation by the caller's words (``session.confirmations``),
and turn tracking (``session.turns.TurnTracker``)."""

from __future__ import annotations

import json
from typing import Any

from hybrid_agent.audit.records import GateActionRecord, ToolCallRecord, TurnInterrupted, TurnRecord
from hybrid_agent.session.actions import Audit, SendUpstream, StartTimer
from hybrid_agent.session.bridge_turns import MAX_HELD_CLIENT, NOTE_ITEM_PREFIX, SAY_EXACTLY, BridgeTurns
from hybrid_agent.session.confirmations import ConfirmationTracker, answer_of
from hybrid_agent.session.turns import TurnTracker


class Clock:
    def __init__(self) -> None:
        self.busy = False
        self.seq = 0

    def next(self) -> int:
        self.seq += 1
        return self.seq - 1


def turns(gated: bool = False, fail_open: bool = False) -> tuple[BridgeTurns, Clock]:
    c = Clock()
    return BridgeTurns("call_b", c.next, lambda now: now, busy=lambda: c.busy, mode="hold", gated=gated,
                       fail_open=fail_open, fallback_utterance="Sorry.", escalation_utterance="A colleague will help."), c


def sent(actions: list[Any]) -> list[dict[str, Any]]:
    return [a.event for a in actions if isinstance(a, SendUpstream)]


def gate(actions: list[Any]) -> list[GateActionRecord]:
    return [a.record for a in actions if isinstance(a, Audit) and isinstance(a.record, GateActionRecord)]


# ---------------------------------------------------------------------------- bridge responses
def test_one_response_at_a_time_and_the_clients_create_waits() -> None:
    b, c = turns()
    b.start_holding()
    assert b.client_create({"type": "response.create"}, None) == []  # the first answer waits for the disclosure
    first = b.say("This call is recorded.", "disclosure", 0)
    assert [e["response"]["instructions"] for e in sent(first)] == [SAY_EXACTLY + "This call is recorded."]
    assert sent(b.stop_holding()) == []  # the bridge's disclosure is in flight: the client's create still waits
    b.response_created("resp_1")
    c.busy = True
    assert sent(b.say("Second.", "escalation", 1)) == []  # queued behind the running response
    c.busy = False
    after = sent(b.response_done("resp_1"))
    assert [e["response"]["instructions"] for e in after] == [SAY_EXACTLY + "Second."]
    b.response_created("resp_2")
    assert [e["type"] for e in sent(b.response_done("resp_2"))] == ["response.create"]  # now the client's own
    assert b.client_create({"type": "response.create"}, None) is None  # quiet: straight through


def test_a_refused_create_is_retried_after_the_running_response() -> None:
    b, c = turns()
    [create] = sent(b.say("Hello.", "escalation", 0))
    c.busy = True  # the model had started an answer of its own
    assert sent(b.refused(create["event_id"], "conversation_already_has_active_response")) == []
    c.busy = False
    assert sent(b.response_done("resp_model")) == [create]
    assert b.refused("event_not_ours", "x") == []


def test_held_client_creates_are_bounded() -> None:
    b, _ = turns()
    b.start_holding()
    for _ in range(MAX_HELD_CLIENT + 3):
        b.client_create({"type": "response.create"}, None)
    assert len(b.held_client) == MAX_HELD_CLIENT and b.dropped == 3


# ---------------------------------------------------------------------------- the gated user turn
def test_gated_turn_is_released_once_user_text_allows_it() -> None:
    b, _ = turns(gated=True)
    pending = b.user_turn("call_b/turn/1", "u1", True, 100.0)
    assert [a.name for a in pending if isinstance(a, StartTimer)] == ["user_turn:call_b/turn/1"]
    assert b.client_create({"type": "response.create"}, None) == []  # a client's own create does not jump the gate
    out = b.decided("call_b/turn/1", "allow", None, None, {}, 180.0)
    assert [e["type"] for e in sent(out)] == ["response.create"] and "response" not in sent(out)[0]
    [action] = gate(out)
    assert (action.action, action.status, action.held_ms) == ("user_turn_gated", "released", 80.0)
    assert b.decided("call_b/turn/1", "allow", None, None, {}, 200.0) == []  # decided once


def test_gated_turn_refused_says_the_rules_utterance_instead() -> None:
    b, _ = turns(gated=True)
    b.user_turn("s1", "u1", True, 0)
    out = b.decided("s1", "escalate", "I'll pass you to a colleague.", "banking.escalation.complaint", {}, 10)
    assert sent(out)[0]["response"]["instructions"] == SAY_EXACTLY + "I'll pass you to a colleague."
    [action] = gate(out)
    assert (action.status, action.rule_id, action.effect) == ("refused", "banking.escalation.complaint", "escalate")
    b.user_turn("s2", "u2", True, 20)
    b.response_created("r1")
    b.response_done("r1")  # the utterance was said: the upstream is free
    out = b.decided("s2", "deny", None, "r", {}, 30)
    assert sent(out)[-1]["response"]["instructions"] == SAY_EXACTLY + "Sorry."  # the pack's fallback


def test_a_spoken_card_number_is_flagged_and_the_model_told_not_to_repeat_it() -> None:
    b, _ = turns(gated=True)
    b.user_turn("s1", "u1", True, 0)
    out = b.decided("s1", "allow", None, None, {"CREDIT_CARD": 1}, 5)
    note, create = sent(out)
    assert note["type"] == "conversation.item.create" and note["item"]["role"] == "system"
    assert note["item"]["id"].startswith(NOTE_ITEM_PREFIX) and "Never repeat" in note["item"]["content"][0]["text"]
    assert create["type"] == "response.create"
    [action] = gate(out)
    assert (action.status, action.rule_id) == ("flagged", "pii:CREDIT_CARD")


def test_gated_turn_fails_closed_on_timeout_and_open_when_the_pack_says() -> None:
    b, _ = turns(gated=True)
    b.user_turn("s1", "u1", True, 0)
    out = b.timer_fired("user_turn:s1", 1500)
    assert out is not None and sent(out)[0]["response"]["instructions"] == SAY_EXACTLY + "Sorry."
    assert [(g.action, g.status) for g in gate(out)] == [("gate_failed", "closed")]
    assert b.timer_fired("user_turn:s1", 1600) == []  # already answered
    assert b.timer_fired("speech:1", 0) is None  # not ours
    o, _ = turns(gated=True, fail_open=True)
    o.user_turn("s1", "u1", True, 0)
    out = o.failed("s1", "RuntimeError", 5)
    assert sent(out) == [{"type": "response.create", "event_id": sent(out)[0]["event_id"]}]


def test_an_unheard_turn_asks_the_caller_again_and_immediate_mode_does_nothing() -> None:
    b, _ = turns(gated=True)
    out = b.user_turn("s1", "u1", False, 0)
    assert "Could you say it again" in sent(out)[0]["response"]["instructions"]
    i, _ = turns(gated=False)
    assert i.user_turn("s1", "u1", True, 0) == []


# ---------------------------------------------------------------------------- confirmations
def test_answers() -> None:
    assert answer_of("Yes, go ahead.") == "yes"
    assert answer_of("Yeah that's right") == "yes"
    assert answer_of("No, don't do that") == "no"
    assert answer_of("Yes... actually no, wait") == "no"  # any no wins: a confirmation must be unambiguous
    assert answer_of("What was the amount again?") is None
    assert answer_of("y" * 100_000) is None  # a bounded window


def test_only_the_callers_yes_confirms_exactly_that_call() -> None:
    t = ConfirmationTracker()
    args = json.dumps({"amount": 2000, "to_account": "B", "from_account": "A"})
    t.requested("transfer_funds", args)
    assert not t.take("transfer_funds", args)  # the model's own retry, before any answer
    assert t.caller_said("Yes please") == ["transfer_funds"]
    assert not t.take("transfer_funds", json.dumps({"amount": 5000, "to_account": "B", "from_account": "A"}))
    assert t.take("transfer_funds", '{"from_account": "A", "to_account": "B", "amount": 2000}')  # key order ignored
    assert not t.take("transfer_funds", args)  # used once


def test_a_no_or_two_unrelated_turns_drop_the_request() -> None:
    t = ConfirmationTracker()
    t.requested("block_card", "{}")
    assert t.caller_said("No, not that card") == []
    assert t.caller_said("Yes") == []
    t.requested("block_card", "{}")
    t.caller_said("Which card?")
    t.caller_said("Hmm")
    assert t.caller_said("Yes") == [] and not t.take("block_card", "{}")


# ---------------------------------------------------------------------------- turn tracking
def feed(t: TurnTracker, events: list[dict[str, Any]], at: float = 0.0) -> list[Any]:
    out: list[Any] = []
    for e in events:
        out += t.feed(e, at)
    return out


def test_tracker_records_turns_tool_calls_and_cut_answers() -> None:
    t = TurnTracker("c")
    facts = feed(t, [
        {"type": "input_audio_buffer.speech_started", "item_id": "u1", "audio_start_ms": 100},
        {"type": "input_audio_buffer.committed", "item_id": "u1"},
    ])
    assert facts == [] and t.caller_turn_untranscribed()
    [user] = feed(t, [{"type": "conversation.item.input_audio_transcription.completed", "item_id": "u1", "transcript": "hi"}], 900)
    assert isinstance(user, TurnRecord) and (user.role, user.text, user.ended_ms) == ("user", "hi", 900)
    assert not t.caller_turn_untranscribed()
    feed(t, [
        {"type": "response.created", "response": {"id": "r1"}},
        {"type": "response.output_item.added", "response_id": "r1", "item": {"id": "a1", "type": "message", "role": "assistant"}},
        {"type": "response.output_audio_transcript.delta", "item_id": "a1", "delta": "Hello there"},
        {"type": "response.output_audio.delta", "item_id": "a1", "delta": "AAAA" * 1200},  # 3600 bytes: 75 ms of pcm16
        {"type": "response.output_item.added", "response_id": "r1", "item": {"id": "f1", "type": "function_call", "call_id": "c1", "name": "x"}},
    ], 1000)
    assert t.active_response_id == "r1" and t.assistant_turns["a1"].audio_ms == 75.0
    [call] = feed(t, [{"type": "response.function_call_arguments.done", "call_id": "c1", "item_id": "f1", "arguments": "{}"}], 1100)
    assert isinstance(call, ToolCallRecord) and call.name == "x"
    [cut] = feed(t, [{"type": "conversation.item.truncated", "item_id": "a1", "audio_end_ms": 40}], 1200)
    assert isinstance(cut, TurnInterrupted) and cut.heard_text in ("", "Hello")
    [done] = feed(t, [{"type": "response.done", "response": {"id": "r1", "status": "cancelled"}}], 1300)
    assert isinstance(done, TurnRecord) and done.status == "cancelled" and t.active_response_id is None
    assert t.flush(2000) == []  # everything recorded already


def test_tracker_learns_the_speaking_rate_within_a_bound() -> None:
    t = TurnTracker("c")
    for i in range(100):
        feed(t, [
            {"type": "response.output_item.added", "response_id": f"r{i}", "item": {"id": f"a{i}", "type": "message", "role": "assistant"}},
            {"type": "response.output_audio_transcript.done", "item_id": f"a{i}", "transcript": "x" * 14},
            {"type": "response.output_audio.delta", "item_id": f"a{i}", "delta": "AAAA" * 16000},  # 1 s
            {"type": "response.done", "response": {"id": f"r{i}", "status": "completed"}},
        ])
    assert len(t.rates) <= 64 and abs(t.typical_rate() - 0.014) < 1e-9


def test_tracker_refuses_a_truncate_without_a_number() -> None:
    t = TurnTracker("c")
    feed(t, [{"type": "response.output_item.added", "response_id": "r", "item": {"id": "a", "type": "message", "role": "assistant"}}])
    try:
        t.feed({"type": "conversation.item.truncated", "item_id": "a", "audio_end_ms": "soon"}, 0)
    except ValueError:
        pass
    else:
        raise AssertionError("a non-numeric audio_end_ms must be refused")
