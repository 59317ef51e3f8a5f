"""ResponseTiming: time to first audio, the gate's hold, budgets and usage, per response (sans-I/O).

Why this module is long: each measured quantity (first audio, hold, budgets, usage) has its edge
cases (push-to-talk, no audio, never released, evicted, malformed usage), tested on the part alone
and again through CallSession with the same event builders.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from hybrid_agent.audit.records import ResponseMetrics, TurnRecord
from hybrid_agent.session import Audit, CallConfig, CallSession, SendClient
from hybrid_agent.session.response_timing import ResponseTiming, usage_tokens

USAGE = {"input_token_details": {"text_tokens": 120, "audio_tokens": 35, "cached_tokens_details": {"text_tokens": 100}},
         "output_token_details": {"text_tokens": 12, "audio_tokens": 60}}


def delta(rid: str) -> dict:
    return {"type": "response.output_audio.delta", "response_id": rid, "item_id": "item_a", "delta": "AAAA"}


def done(rid: str, usage: object = USAGE, status: str = "completed") -> dict:
    return {"type": "response.done", "response": {"id": rid, "status": status, "usage": usage}}


def created(rid: str) -> dict:
    return {"type": "response.created", "response": {"id": rid}}


def test_time_to_first_audio_from_speech_stopped_to_the_first_audio_sent() -> None:
    t = ResponseTiming("call_1", "gpt-realtime", {"time_to_first_audio": 1000.0})
    assert t.on_upstream({"type": "input_audio_buffer.speech_stopped", "item_id": "u"}, 1000.0, user_seq=1) == []
    assert t.on_upstream(created("resp_1"), 1100.0) == []
    assert t.on_upstream({"type": "response.output_item.added", "response_id": "resp_1"}, 1150.0, turn_seq=2) == []
    assert t.on_upstream(delta("resp_1"), 1400.0) == [] and t.awaiting_release
    assert t.released([delta("resp_1")], 1400.0) == [] and not t.awaiting_release
    (m,) = t.on_upstream(done("resp_1"), 3000.0)
    assert isinstance(m, ResponseMetrics)
    assert (m.seq, m.turn_seq, m.user_seq, m.reference, m.ttfa_ms, m.gate_ms, m.over_budget) == (0, 2, 1, "speech_stopped", 400.0, 0.0, None)
    assert (m.input_text_tokens, m.cached_text_tokens, m.input_audio_tokens, m.output_audio_tokens) == (120, 100, 35, 60)
    assert m.record_id == "call_1/response/0"


def test_hold_mode_records_at_the_release_after_response_done_and_marks_budgets() -> None:
    t = ResponseTiming("call_1", "gpt-realtime", {"time_to_first_audio": 500.0, "gate_hold": 300.0})
    t.on_upstream({"type": "input_audio_buffer.speech_stopped"}, 0.0, user_seq=1)
    t.on_upstream(created("resp_1"), 50.0)
    t.on_upstream(delta("resp_1"), 200.0)
    t.released([{"type": "response.output_audio_transcript.delta", "response_id": "resp_1"}], 210.0)  # not audio
    assert t.on_upstream(done("resp_1"), 900.0) == []  # held: the caller has heard nothing yet
    (m,) = t.released([delta("resp_1")], 1200.0)
    assert (m.ttfa_ms, m.gate_ms, m.over_budget, m.at_ms) == (1200.0, 1000.0, "time_to_first_audio,gate_hold", 900.0)


def test_audio_never_released_is_recorded_at_the_next_response_and_at_the_end() -> None:
    t = ResponseTiming("call_1", "gpt-realtime", {"time_to_first_audio": 1.0})
    t.on_upstream(created("resp_1"), 0.0)
    t.on_upstream(delta("resp_1"), 100.0)
    assert t.on_upstream(done("resp_1"), 500.0) == []
    (blocked,) = t.on_upstream(created("resp_2"), 600.0)  # the gate blocked it: never released
    assert blocked.released_ms is None and blocked.ttfa_ms is None and blocked.over_budget is None
    assert blocked.reference == "response_created"
    t.on_upstream(delta("resp_2"), 700.0)
    (open_one,) = t.flush(800.0)
    assert open_one.status == "incomplete" and open_one.seq == 1


def test_push_to_talk_uses_the_commit_and_no_speech_uses_response_created() -> None:
    t = ResponseTiming("call_1", "m")
    t.on_upstream({"type": "input_audio_buffer.committed"}, 100.0, user_seq=3)
    t.on_upstream(created("resp_1"), 150.0)
    t.on_upstream(delta("resp_1"), 300.0)
    t.released([delta("resp_1")], 300.0)
    (m,) = t.on_upstream(done("resp_1"), 400.0)
    assert (m.reference, m.reference_ms, m.user_seq, m.ttfa_ms) == ("committed", 100.0, 3, 200.0)
    t.on_upstream(created("resp_2"), 500.0)
    (text_only,) = t.on_upstream(done("resp_2"), 600.0)  # no audio: recorded at once
    assert (text_only.reference, text_only.ttfa_ms, text_only.user_seq) == ("response_created", None, None)


def test_malformed_usage_counts_as_zero_and_unknown_responses_are_ignored() -> None:
    assert usage_tokens({"input_token_details": {"text_tokens": "lots", "audio_tokens": -5},
                         "output_token_details": [1, 2]}) == dict.fromkeys(usage_tokens({}), 0)
    assert set(usage_tokens(None).values()) == {0}
    t = ResponseTiming("call_1", "m")
    assert t.on_upstream(done("resp_unknown"), 1.0) == []
    assert t.on_upstream(delta("resp_unknown"), 1.0) == [] and not t.awaiting_release


def test_open_responses_are_bounded() -> None:
    t = ResponseTiming("call_1", "m")
    out = []
    for i in range(40):
        out += t.on_upstream(created(f"resp_{i}"), float(i))
    assert len(out) == 40 - 16 and len(t.flush(100.0)) == 16


# ============================================================================ more cases, and through CallSession
FULL_USAGE = {
    "total_tokens": 1_300,
    "input_tokens": 700,
    "output_tokens": 600,
    "input_token_details": {
        "text_tokens": 80, "audio_tokens": 600, "image_tokens": 20,
        "cached_tokens": 250, "cached_tokens_details": {"text_tokens": 50, "audio_tokens": 200},
    },
    "output_token_details": {"text_tokens": 30, "audio_tokens": 570},
}
FULL_TOKENS = {
    "input_text_tokens": 80, "input_audio_tokens": 600, "input_image_tokens": 20,
    "cached_text_tokens": 50, "cached_audio_tokens": 200,
    "output_text_tokens": 30, "output_audio_tokens": 570,
}
ZERO = dict.fromkeys(FULL_TOKENS, 0)


# ---------------------------------------------------------------------------- events
def ev_stopped(item: str = "u1") -> dict[str, Any]:
    return {"type": "input_audio_buffer.speech_stopped", "event_id": "e", "item_id": item, "audio_end_ms": 900}


def ev_committed(item: str = "u1") -> dict[str, Any]:
    return {"type": "input_audio_buffer.committed", "event_id": "e", "item_id": item, "previous_item_id": None}


def ev_created(rid: str) -> dict[str, Any]:
    return {"type": "response.created", "event_id": "e", "response": {"id": rid, "object": "realtime.response", "status": "in_progress"}}


def ev_item_added(rid: str, item: str = "a1") -> dict[str, Any]:
    return {"type": "response.output_item.added", "event_id": "e", "response_id": rid, "output_index": 0,
            "item": {"id": item, "type": "message", "role": "assistant", "status": "in_progress", "content": []}}


def ev_delta(rid: str, item: str = "a1") -> dict[str, Any]:
    return {"type": "response.output_audio.delta", "event_id": "e", "response_id": rid, "item_id": item,
            "output_index": 0, "content_index": 0, "delta": "AAAA"}


def ev_done(rid: str, usage: Any = None, status: str = "completed", **extra: Any) -> dict[str, Any]:
    response: dict[str, Any] = {"id": rid, "object": "realtime.response", "status": status, **extra}
    if usage is not None:
        response["usage"] = usage
    return {"type": "response.done", "event_id": "e", "response": response}


def tokens_of(r: ResponseMetrics) -> dict[str, int]:
    return {k: getattr(r, k) for k in FULL_TOKENS}


def timing(**budgets: float) -> ResponseTiming:
    return ResponseTiming("call_T", "gpt-realtime", budgets, audio_ms_of=lambda rid: {"resp_1": 1_250.0}.get(rid, 0.0))


# ---------------------------------------------------------------------------- unit
def test_answer_released_at_once_is_recorded_at_response_done() -> None:
    t = timing()
    assert t.on_upstream(ev_stopped(), 1_000.0, user_seq=1) == []
    assert t.on_upstream(ev_created("resp_1"), 1_100.0) == []
    assert t.on_upstream(ev_item_added("resp_1"), 1_110.0, turn_seq=2) == []
    d = ev_delta("resp_1")
    assert t.on_upstream(d, 1_300.0) == []
    assert t.awaiting_release
    assert t.released([d], 1_300.0) == []  # not done yet: the usage is still to come
    assert not t.awaiting_release
    assert t.released([ev_delta("resp_1")], 1_350.0) == []  # only the first delta counts
    [r] = t.on_upstream(ev_done("resp_1", FULL_USAGE), 1_800.0)
    assert isinstance(r, ResponseMetrics)
    assert (r.call_id, r.seq, r.model, r.status, r.response_id) == ("call_T", 0, "gpt-realtime", "completed", "resp_1")
    assert (r.reference, r.reference_ms, r.user_seq, r.turn_seq) == ("speech_stopped", 1_000.0, 1, 2)
    assert (r.first_audio_ms, r.released_ms, r.at_ms) == (1_300.0, 1_300.0, 1_800.0)
    assert r.ttfa_ms == 300.0 and r.gate_ms == 0.0 and r.over_budget is None
    assert r.audio_ms == 1_250.0
    assert tokens_of(r) == FULL_TOKENS
    assert r.record_id == "call_T/response/0"
    # nothing left open
    assert t.flush(5_000.0) == []


def test_held_answer_is_recorded_only_when_its_audio_is_released() -> None:
    t = timing()
    t.on_upstream(ev_stopped(), 1_000.0, user_seq=1)
    t.on_upstream(ev_created("resp_1"), 1_050.0)
    d = ev_delta("resp_1")
    t.on_upstream(d, 1_200.0)
    assert t.released([], 1_200.0) == []  # the gate holds it: nothing to the caller
    assert t.released([None, {"type": "response.output_audio_transcript.delta", "response_id": "resp_1"}], 1_300.0) == []
    assert t.on_upstream(ev_done("resp_1", FULL_USAGE), 1_500.0) == []  # done, but the caller has heard nothing yet
    assert t.awaiting_release
    [r] = t.released([d], 2_000.0)
    assert (r.first_audio_ms, r.released_ms, r.at_ms) == (1_200.0, 2_000.0, 1_500.0)
    assert r.ttfa_ms == 1_000.0 and r.gate_ms == 800.0
    assert tokens_of(r) == FULL_TOKENS
    assert not t.awaiting_release
    assert t.released([d], 2_100.0) == []  # recorded once


def test_answer_never_released_is_recorded_when_the_next_response_is_created() -> None:
    t = timing()
    t.on_upstream(ev_stopped(), 1_000.0, user_seq=1)
    t.on_upstream(ev_created("resp_1"), 1_100.0)
    t.on_upstream(ev_delta("resp_1"), 1_200.0)
    assert t.on_upstream(ev_done("resp_1", FULL_USAGE, status="cancelled"), 1_400.0) == []
    t.on_upstream(ev_stopped("u3"), 2_900.0, user_seq=3)
    [r] = t.on_upstream(ev_created("resp_2"), 3_000.0)
    assert (r.seq, r.response_id, r.status, r.at_ms) == (0, "resp_1", "cancelled", 1_400.0)
    assert r.first_audio_ms == 1_200.0 and r.released_ms is None and r.ttfa_ms is None and r.gate_ms is None
    assert tokens_of(r) == FULL_TOKENS  # the usage is billed even though the caller heard nothing
    # the next one was timed from its own caller turn
    d2 = ev_delta("resp_2")
    t.on_upstream(d2, 3_400.0)
    t.released([d2], 3_400.0)
    [r2] = t.on_upstream(ev_done("resp_2"), 3_600.0)
    assert (r2.seq, r2.reference_ms, r2.user_seq, r2.ttfa_ms) == (1, 2_900.0, 3, 500.0)


def test_flush_records_what_is_still_open() -> None:
    t = timing(time_to_first_audio=100.0)
    t.on_upstream(ev_stopped(), 1_000.0, user_seq=1)
    t.on_upstream(ev_created("resp_1"), 1_100.0)
    t.on_upstream(ev_delta("resp_1"), 1_200.0)  # the call ends mid-answer: no response.done
    assert t.on_upstream(ev_created("resp_2"), 1_250.0) == []  # resp_1 not done: stays open
    [r2] = t.on_upstream(ev_done("resp_2", FULL_USAGE), 1_400.0)  # no audio: recorded at once
    assert r2.response_id == "resp_2" and r2.seq == 1
    t.on_upstream(ev_created("resp_3"), 1_500.0)
    t.on_upstream(ev_delta("resp_3"), 1_600.0)
    t.on_upstream(ev_done("resp_3", FULL_USAGE), 1_700.0)  # done, its audio still held by the gate
    r1, r3 = t.flush(9_000.0)
    assert (r1.response_id, r1.status, r1.at_ms, r1.seq) == ("resp_1", "incomplete", 9_000.0, 0)
    assert r1.first_audio_ms == 1_200.0 and r1.ttfa_ms is None and r1.over_budget is None and tokens_of(r1) == ZERO
    assert (r3.response_id, r3.status, r3.at_ms, r3.released_ms) == ("resp_3", "completed", 1_700.0, None)
    assert tokens_of(r3) == FULL_TOKENS
    assert t.flush(9_100.0) == []


def test_response_without_audio_is_recorded_at_done_with_no_ttfa() -> None:
    t = timing(time_to_first_audio=1.0)
    [r] = t.on_upstream(ev_created("resp_1"), 500.0) + t.on_upstream(ev_done("resp_1", FULL_USAGE), 900.0)
    assert (r.reference, r.reference_ms, r.user_seq) == ("response_created", 500.0, None)
    assert r.first_audio_ms is None and r.ttfa_ms is None and r.gate_ms is None
    assert r.over_budget is None  # nothing measured, nothing over


def test_audio_of_an_unknown_response_and_done_of_an_unknown_response_are_ignored() -> None:
    t = timing()
    assert t.on_upstream(ev_delta("resp_nope"), 10.0) == []
    assert not t.awaiting_release
    assert t.on_upstream(ev_done("resp_nope", FULL_USAGE), 20.0) == []
    assert t.on_upstream({"type": "response.done"}, 30.0) == []
    assert t.on_upstream({"type": "response.done", "response": "oops"}, 40.0) == []
    assert t.released([ev_delta("resp_nope")], 50.0) == []
    assert t.flush(60.0) == []


def test_committed_is_the_reference_for_push_to_talk() -> None:
    t = timing()
    t.on_upstream(ev_committed(), 2_000.0, user_seq=4)
    t.on_upstream(ev_created("resp_1"), 2_050.0)
    d = ev_delta("resp_1")
    t.on_upstream(d, 2_400.0)
    t.released([d], 2_450.0)
    [r] = t.on_upstream(ev_done("resp_1"), 2_600.0)
    assert (r.reference, r.reference_ms, r.user_seq, r.ttfa_ms, r.gate_ms) == ("committed", 2_000.0, 4, 450.0, 50.0)


def test_server_vad_commit_after_speech_stopped_keeps_speech_stopped() -> None:
    t = timing()
    t.on_upstream(ev_stopped(), 1_000.0, user_seq=1)
    t.on_upstream(ev_committed(), 1_005.0, user_seq=1)
    t.on_upstream(ev_created("resp_1"), 1_010.0)
    d = ev_delta("resp_1")
    t.on_upstream(d, 1_200.0)
    t.released([d], 1_200.0)
    [r] = t.on_upstream(ev_done("resp_1"), 1_300.0)
    assert (r.reference, r.reference_ms, r.ttfa_ms) == ("speech_stopped", 1_000.0, 200.0)


def test_a_caller_turn_is_the_reference_of_one_response_only() -> None:
    t = timing()
    t.on_upstream(ev_stopped(), 1_000.0, user_seq=1)
    t.on_upstream(ev_created("resp_1"), 1_010.0)
    [r1] = t.on_upstream(ev_done("resp_1"), 1_100.0)
    t.on_upstream(ev_created("resp_2"), 5_000.0)  # e.g. after a tool result: no caller turn prompted it
    [r2] = t.on_upstream(ev_done("resp_2"), 5_100.0)
    assert (r1.reference, r1.user_seq) == ("speech_stopped", 1)
    assert (r2.reference, r2.reference_ms, r2.user_seq, r2.seq) == ("response_created", 5_000.0, None, 1)


def _timed(t: ResponseTiming, first_audio_at: float, released_at: float) -> ResponseMetrics:
    t.on_upstream(ev_stopped(), 1_000.0, user_seq=1)
    t.on_upstream(ev_created("resp_1"), 1_010.0)
    d = ev_delta("resp_1")
    t.on_upstream(d, first_audio_at)
    t.on_upstream(ev_done("resp_1"), first_audio_at + 1)
    [r] = t.released([d], released_at)
    return r


@pytest.mark.parametrize(
    ("budgets", "first_audio_at", "released_at", "over"),
    [
        ({"time_to_first_audio": 500.0, "gate_hold": 200.0}, 1_300.0, 1_900.0, "time_to_first_audio,gate_hold"),
        ({"time_to_first_audio": 500.0, "gate_hold": 200.0}, 1_300.0, 1_400.0, None),
        ({"time_to_first_audio": 500.0, "gate_hold": 200.0}, 1_200.0, 1_450.0, "gate_hold"),
        ({"time_to_first_audio": 500.0}, 1_600.0, 1_600.0, "time_to_first_audio"),
        ({"time_to_first_audio": 500.0}, 1_500.0, 1_500.0, None),  # at the budget is not over it
        ({"gate_hold": 200.0}, 1_100.0, 2_900.0, "gate_hold"),  # only budgeted stages are marked
        ({}, 1_300.0, 9_000.0, None),
        # a stage with no response meaning (counted by the adapter) never marks a response
        ({"tool_run": 1.0, "policy": 1.0}, 1_300.0, 9_000.0, None),
    ],
)
def test_over_budget(budgets: dict[str, float], first_audio_at: float, released_at: float, over: str | None) -> None:
    r = _timed(ResponseTiming("c", "m", budgets), first_audio_at, released_at)
    assert r.ttfa_ms == released_at - 1_000.0 and r.gate_ms == released_at - first_audio_at
    assert r.over_budget == over


@pytest.mark.parametrize(
    "usage",
    [
        None,
        "lots",
        [],
        {},
        {"input_token_details": None, "output_token_details": 7},
        {"input_token_details": {"text_tokens": "80", "audio_tokens": -600, "image_tokens": 1.5,
                                 "cached_tokens_details": "x"},
         "output_token_details": {"text_tokens": True, "audio_tokens": None}},
        {"input_token_details": {"cached_tokens_details": {"text_tokens": -1, "audio_tokens": "200"}},
         "output_token_details": {"audio_tokens": float("nan"), "text_tokens": [3]}},
    ],
)
def test_malformed_usage_counts_as_zero(usage: Any) -> None:
    assert usage_tokens(usage) == ZERO
    t = timing()
    t.on_upstream(ev_created("resp_1"), 0.0)
    [r] = t.on_upstream(ev_done("resp_1", usage) if usage is not None else ev_done("resp_1"), 10.0)
    assert tokens_of(r) == ZERO


def test_partly_malformed_usage_keeps_the_good_counts() -> None:
    usage = {"input_token_details": {"text_tokens": 12, "audio_tokens": "600"}, "output_token_details": {"audio_tokens": 40}}
    assert usage_tokens(usage) == {**ZERO, "input_text_tokens": 12, "output_audio_tokens": 40}
    assert usage_tokens(FULL_USAGE) == FULL_TOKENS


def test_odd_status_is_kept_short_and_missing_status_is_completed() -> None:
    t = timing()
    t.on_upstream(ev_created("resp_1"), 0.0)
    [r] = t.on_upstream({"type": "response.done", "response": {"id": "resp_1", "status": "x" * 100}}, 1.0)
    assert r.status == "x" * 32
    t.on_upstream(ev_created("resp_2"), 2.0)
    [r2] = t.on_upstream({"type": "response.done", "response": {"id": "resp_2"}}, 3.0)
    assert r2.status == "completed"


def test_the_oldest_open_responses_are_recorded_first() -> None:
    from hybrid_agent.session.response_timing import MAX_OPEN

    t = timing()
    out: list[ResponseMetrics] = []
    for i in range(MAX_OPEN + 5):  # created, never done
        out += t.on_upstream(ev_created(f"resp_{i}"), float(i))
    assert [r.response_id for r in out] == [f"resp_{i}" for i in range(5)]
    assert len(t.flush(100.0)) == MAX_OPEN


# ---------------------------------------------------------------------------- through CallSession
def b64(n: int) -> str:
    return base64.b64encode(b"\x00" * n).decode()


def answer(rid: str, item: str, words: list[str]) -> list[dict[str, Any]]:
    evs: list[dict[str, Any]] = [ev_created(rid), ev_item_added(rid, item)]
    for w in words:
        evs.append({"type": "response.output_audio_transcript.delta", "event_id": "e", "response_id": rid, "item_id": item,
                    "output_index": 0, "content_index": 0, "delta": w})
        evs.append({**ev_delta(rid, item), "delta": b64(4800)})  # 100 ms of PCM16 24 kHz
    evs.append({"type": "response.output_audio_transcript.done", "event_id": "e", "response_id": rid, "item_id": item,
                "output_index": 0, "content_index": 0, "transcript": "".join(words)})
    evs.append({"type": "response.output_item.done", "event_id": "e", "response_id": rid, "output_index": 0,
                "item": {"id": item, "type": "message", "role": "assistant", "status": "completed", "content": []}})
    return evs


def caller_turn(s: CallSession, item: str, start: float, stop: float, text: str) -> list[Any]:
    out: list[Any] = []
    out += s.feed_upstream({"type": "input_audio_buffer.speech_started", "event_id": "e", "item_id": item,
                            "audio_start_ms": int(start)}, start)
    out += s.feed_upstream({**ev_stopped(item), "audio_end_ms": int(stop)}, stop)
    out += s.feed_upstream(ev_committed(item), stop + 1)
    out += s.feed_upstream({"type": "conversation.item.input_audio_transcription.completed", "event_id": "e",
                            "item_id": item, "content_index": 0, "transcript": text}, stop + 50)
    return out


def test_call_session_records_response_metrics_tied_to_the_turns() -> None:
    s = CallSession(CallConfig(call_id="call_rt", model="gpt-realtime", latency_budgets={"time_to_first_audio": 1_000.0}))
    s.start(0.0, 1_700_000_000.0)
    out: list[Any] = []
    out += caller_turn(s, "u1", 100.0, 1_100.0, "What's my balance?")
    evs = answer("resp_1", "a1", ["Your ", "balance ", "is ", "fine."])
    first_delta_at = 1_400.0
    for i, ev in enumerate(evs):
        at = first_delta_at if ev["type"] == "response.output_audio.delta" else 1_200.0 + i
        out += s.feed_upstream(ev, at)
    # no gate: the first delta went to the caller with the actions of its own event
    sent = [a for a in out if isinstance(a, SendClient) and a.event and a.event["type"] == "response.output_audio.delta"]
    assert len(sent) == 4
    assert not [a for a in out if isinstance(a, Audit) and isinstance(a.record, ResponseMetrics)]  # usage not yet in
    out += s.feed_upstream(ev_done("resp_1", FULL_USAGE), 2_000.0)

    # a second caller turn, answered slowly (over the budget)
    out += caller_turn(s, "u2", 3_000.0, 4_000.0, "And my card?")
    for i, ev in enumerate(answer("resp_2", "a2", ["One ", "moment."])):
        at = 5_500.0 if ev["type"] == "response.output_audio.delta" else 4_100.0 + i
        out += s.feed_upstream(ev, at)
    out += s.feed_upstream(ev_done("resp_2", {"output_token_details": {"audio_tokens": 40}}), 5_600.0)
    out += s.client_closed(6_000.0)

    records = [a.record for a in out if isinstance(a, Audit)]
    turns = {(t.role, t.item_id): t for t in records if isinstance(t, TurnRecord)}
    metrics = [r for r in records if isinstance(r, ResponseMetrics)]
    assert [m.seq for m in metrics] == [0, 1] and len({m.record_id for m in metrics}) == 2
    m1, m2 = metrics
    assert m1.call_id == "call_rt" and m1.model == "gpt-realtime" and m1.response_id == "resp_1"
    assert m1.user_seq == turns[("user", "u1")].seq
    assert m1.turn_seq == turns[("assistant", "a1")].seq
    assert (m1.reference, m1.reference_ms, m1.first_audio_ms, m1.released_ms) == ("speech_stopped", 1_100.0, 1_400.0, 1_400.0)
    assert m1.ttfa_ms == 300.0 and m1.gate_ms == 0.0 and m1.over_budget is None
    assert m1.audio_ms == pytest.approx(400.0)  # 4 x 100 ms: the assistant turn's audio
    assert m1.audio_ms == pytest.approx(turns[("assistant", "a1")].audio_ms)
    assert tokens_of(m1) == FULL_TOKENS
    assert m2.user_seq == turns[("user", "u2")].seq and m2.turn_seq == turns[("assistant", "a2")].seq
    assert m2.ttfa_ms == 1_500.0 and m2.over_budget == "time_to_first_audio"
    assert m2.output_audio_tokens == 40 and m2.input_audio_tokens == 0
    # the metrics come before the call's end
    kinds = [type(r).__name__ for r in records]
    assert kinds.index("CallEnded") > max(i for i, k in enumerate(kinds) if k == "ResponseMetrics")


def test_call_session_flushes_an_open_response_at_the_call_end() -> None:
    s = CallSession(CallConfig(call_id="call_rt2", model="gpt-realtime-mini"))
    s.start(0.0, 1_700_000_000.0)
    caller_turn(s, "u1", 100.0, 1_000.0, "Hello?")
    s.feed_upstream(ev_created("resp_1"), 1_100.0)
    s.feed_upstream(ev_item_added("resp_1", "a1"), 1_101.0)
    s.feed_upstream({**ev_delta("resp_1", "a1"), "delta": b64(4800)}, 1_250.0)
    out = s.client_closed(2_000.0)
    [m] = [a.record for a in out if isinstance(a, Audit) and isinstance(a.record, ResponseMetrics)]
    assert (m.response_id, m.status, m.model, m.ttfa_ms, m.at_ms) == ("resp_1", "incomplete", "gpt-realtime-mini", 250.0, 2_000.0)
    assert s.client_closed(2_100.0) == []


def test_call_session_hold_mode_times_the_gate_hold() -> None:
    """Hold mode: the answer's audio waits for the speech check; its release (a verdict, later) ends
    the time to first audio, and the hold over its budget is marked."""
    from pathlib import Path

    from hybrid_agent.policy import load_pack
    from hybrid_agent.policy.gate import PolicyGate
    from hybrid_agent.session import CheckSpeech, GateConfig

    gate = PolicyGate(load_pack(Path(__file__).resolve().parents[1] / "policies" / "retail-banking"))
    pack = gate.pack
    cfg = GateConfig(pack.name, pack.version, "hold", pack.manifest.history_turns, dict(pack.manifest.disclosures),
                     tools=dict(pack.manifest.tools))
    s = CallSession(CallConfig(call_id="call_hold", model="gpt-realtime", gate=cfg, transcription_model=None,
                               latency_budgets={"gate_hold": 300.0, "time_to_first_audio": 5_000.0}))
    s.start(0.0, 1.0)
    pending: list[Any] = []
    records: list[Any] = []
    sent: list[dict[str, Any]] = []

    def run(actions: list[Any]) -> None:
        for a in actions:
            if isinstance(a, CheckSpeech):
                pending.append(a.check)
            elif isinstance(a, Audit):
                records.append(a.record)
            elif isinstance(a, SendClient) and a.event is not None:
                sent.append(a.event)

    run(caller_turn(s, "u1", 100.0, 1_100.0, "How is my balance?"))
    text = "Your balance is fine."
    ids = {"response_id": "resp_1", "item_id": "a1", "output_index": 0, "content_index": 0}
    run(s.feed_upstream(ev_created("resp_1"), 1_200.0))
    run(s.feed_upstream(ev_item_added("resp_1", "a1"), 1_201.0))
    run(s.feed_upstream({"type": "response.output_audio_transcript.delta", "event_id": "e", **ids, "delta": text}, 1_300.0))
    for _ in range(3):
        run(s.feed_upstream({"type": "response.output_audio.delta", "event_id": "e", **ids, "delta": b64(4800)}, 1_400.0))
    run(s.feed_upstream({"type": "response.output_audio_transcript.done", "event_id": "e", **ids, "transcript": text}, 1_500.0))
    run(s.feed_upstream({"type": "response.output_item.done", "event_id": "e", "response_id": "resp_1", "output_index": 0,
                         "item": {"id": "a1", "type": "message", "role": "assistant", "status": "completed",
                                  "content": [{"type": "output_audio", "transcript": text}]}}, 1_550.0))
    run(s.feed_upstream(ev_done("resp_1", FULL_USAGE), 1_600.0))
    assert pending, "hold mode asks for a speech check"
    assert not [e for e in sent if e["type"] == "response.output_audio.delta"]  # held
    assert not [r for r in records if isinstance(r, ResponseMetrics)]  # done, but not yet heard
    while pending:
        run(s.feed_speech_verdict(gate.decide_speech(pending.pop(0)), 2_000.0))
    assert [e for e in sent if e["type"] == "response.output_audio.delta"]  # released by the verdict
    [m] = [r for r in records if isinstance(r, ResponseMetrics)]
    assert (m.first_audio_ms, m.released_ms, m.at_ms) == (1_400.0, 2_000.0, 1_600.0)
    assert m.gate_ms == 600.0 and m.ttfa_ms == 900.0 and m.over_budget == "gate_hold"
    turns = {t.item_id: t for t in records if isinstance(t, TurnRecord)}
    assert m.user_seq == turns["u1"].seq and m.turn_seq == turns["a1"].seq
    assert tokens_of(m) == FULL_TOKENS


def test_an_evicted_open_response_is_recorded_as_incomplete() -> None:
    from hybrid_agent.session.response_timing import MAX_OPEN

    t = timing()
    out: list[ResponseMetrics] = []
    for i in range(MAX_OPEN + 1):
        out += t.on_upstream(ev_created(f"resp_{i}"), 100.0 + i)
    [evicted] = out
    assert evicted.response_id == "resp_0"
    assert evicted.status == "incomplete" and evicted.at_ms == 100.0 + MAX_OPEN
