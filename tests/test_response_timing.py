"""ResponseTiming: time to first audio, the gate's hold, budgets and usage, per response (sans-I/O)."""

from __future__ import annotations

from hybrid_agent.audit.records import ResponseMetrics
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
