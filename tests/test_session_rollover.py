"""Session rollover without I/O: ``UpstreamRollover`` alone and as ``CallSession`` routes it."""

from __future__ import annotations

import base64
import json

from hybrid_agent.audit.records import CallEventRecord, GateActionRecord
from hybrid_agent.session import (
    Audit,
    CallConfig,
    CallSession,
    OpenStandbyUpstream,
    ReconnectUpstream,
    SendClient,
    SendUpstream,
    StartTimer,
    SwitchUpstream,
)
from hybrid_agent.session.rollover import (
    CARRY_AUDIO_MS,
    ROLLOVER_CHECK_TIMER,
    ROLLOVER_TIMER,
    STRICT_WAIT_MS,
    UNCOMMITTED_MAX_MS,
    UpstreamRollover,
)

WALL = 1_700_000_000.0


def make_session(**kw: object) -> CallSession:
    s = CallSession(CallConfig(call_id="call_roll", transcription_model=None, max_reconnects=0, **kw))  # type: ignore[arg-type]
    s.start(0.0, WALL)
    return s


def created(expires_in_s: float | None = None) -> dict:
    session: dict = {"type": "realtime", "object": "realtime.session", "id": "sess_1", "model": "gpt-realtime"}
    if expires_in_s is not None:
        session["expires_at"] = int(WALL + expires_in_s)
    return {"type": "session.created", "event_id": "e0", "session": session}


def append(ms: int) -> str:
    return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x00" * (48 * ms)).decode()})


def timers(actions: list, name: str) -> list[StartTimer]:
    return [a for a in actions if isinstance(a, StartTimer) and a.name == name]


def bridge_facts(actions: list, kind: str) -> list[CallEventRecord]:
    return [a.record for a in actions if isinstance(a, Audit) and isinstance(a.record, CallEventRecord) and a.record.kind == kind]


def answer(s: CallSession, now: float, rid: str = "resp_1", item: str = "item_a", audio_ms: int = 200) -> list:
    out: list = []
    for event in [
        {"type": "response.created", "event_id": "e", "response": {"id": rid, "object": "realtime.response", "status": "in_progress"}},
        {"type": "response.output_item.added", "event_id": "e", "response_id": rid, "output_index": 0,
         "item": {"id": item, "type": "message", "role": "assistant", "status": "in_progress", "content": []}},
        {"type": "response.output_audio.delta", "event_id": "e", "response_id": rid, "item_id": item, "output_index": 0,
         "content_index": 0, "delta": base64.b64encode(b"\x00" * 48 * audio_ms).decode()},
        {"type": "response.output_audio_transcript.done", "event_id": "e", "response_id": rid, "item_id": item,
         "output_index": 0, "content_index": 0, "transcript": "Hello there."},
    ]:
        out += s.feed_upstream(event, now)
    return out


def done(s: CallSession, now: float, rid: str = "resp_1") -> list:
    return s.feed_upstream({"type": "response.done", "event_id": "e", "response": {
        "id": rid, "object": "realtime.response", "status": "completed", "output": []}}, now)


def due_and_open(s: CallSession, now: float) -> list:
    opened = s.timer_fired(ROLLOVER_TIMER, now)
    assert [type(a) for a in opened] == [OpenStandbyUpstream]
    ready = s.standby_ready(now)
    assert ready is not None
    return ready


# ---------------------------------------------------------------------------- the plan alone

def test_the_plan_is_the_configured_age_or_sooner_when_the_service_says_so() -> None:
    r = UpstreamRollover(after_ms=55 * 60_000)
    assert r.session_created(0.0, None) == 55 * 60_000
    assert r.session_created(0.0, 30 * 60) == 30 * 60_000 * 55 / 60  # Azure's 30 minutes: 27.5
    assert r.session_created(0.0, 3600) == 55 * 60_000  # OpenAI's hour: the configured 55 minutes
    assert UpstreamRollover(after_ms=0).session_created(0.0, 3600) is None  # off


def test_the_carried_audio_is_the_newest_and_bounded() -> None:
    r = UpstreamRollover(after_ms=1000)
    for i in range(100):
        r.caller_audio(f"frame{i}", 20.0)
    carried, ms = r.carried()
    assert carried[-1] == "frame99" and ms == len(carried) * 20.0 == CARRY_AUDIO_MS
    assert r.carried() == ([], 0.0)  # taken once
    for i in range(500):
        r.caller_audio(f"frame{i}", 20.0)
    everything, ms = r.carried(None)  # after a drop: all the uncommitted audio kept, within its bound
    assert everything[-1] == "frame499" and ms <= UNCOMMITTED_MAX_MS and len(everything) == UNCOMMITTED_MAX_MS // 20
    r.caller_audio("x", 20.0)
    r.buffer_reset()  # a commit: what came before is the old session's turn
    assert r.carried() == ([], 0.0)


# ---------------------------------------------------------------------------- through the session

def test_session_created_plans_the_rollover_and_the_timer_opens_a_standby() -> None:
    s = make_session(rollover_after_ms=50_000)
    assert [t.delay_ms for t in timers(s.feed_upstream(created(expires_in_s=3600), 10.0), ROLLOVER_TIMER)] == [50_000]
    s2 = make_session(rollover_after_ms=3_300_000)
    [t] = timers(s2.feed_upstream(created(expires_in_s=60), 10.0), ROLLOVER_TIMER)
    assert 54_000 <= t.delay_ms <= 55_000  # the service's own 60 s limit wins


def test_at_a_boundary_the_call_switches_restores_replays_and_carries_the_latest_audio() -> None:
    s = make_session(rollover_after_ms=5_000)
    s.feed_upstream(created(), 0.0)
    s.receive_client_frame(json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}}), 1.0)
    answer(s, 10.0)
    done(s, 20.0)
    frames = [append(100) for _ in range(3)]
    for i, f in enumerate(frames):
        s.receive_client_frame(f, 30.0 + i)
    actions = due_and_open(s, 5_000.0)
    kinds = [type(a) for a in actions if not isinstance(a, Audit)]
    assert kinds[0] is SwitchUpstream and all(k is SendUpstream for k in kinds[1:])
    sent = [a for a in actions if isinstance(a, SendUpstream)]
    events = [json.loads(a.text()) for a in sent]
    assert events[0]["type"] == "session.update" and events[0]["session"]["instructions"] == "Be brief."
    assert [e["item"]["content"][0]["text"] for e in events if e["type"] == "conversation.item.create"] == ["Hello there."]
    assert [a.raw for a in sent[-3:]] == frames  # the caller's newest audio, as it came
    assert "300 ms of caller audio carried" in bridge_facts(actions, "upstream_rollover")[0].message
    [fact] = bridge_facts(actions, "upstream_rollover")
    assert "upstream session 2 after 5.0 s, at a turn boundary" in fact.message and fact.redacted
    # the new session's session.created is the bridge's: hidden, and it plans the next rollover
    again = s.feed_upstream(created(), 5_010.0)
    assert not [a for a in again if isinstance(a, SendClient)] and timers(again, ROLLOVER_TIMER)


def test_no_switch_while_an_answer_streams_or_plays_then_one_after() -> None:
    s = make_session(rollover_after_ms=1_000)
    s.feed_upstream(created(), 0.0)
    answer(s, 900.0, audio_ms=2_000)
    actions = due_and_open(s, 1_000.0)
    assert timers(actions, ROLLOVER_CHECK_TIMER) and not [a for a in actions if isinstance(a, SwitchUpstream)]
    done(s, 1_010.0)
    fresh = s.timer_fired(ROLLOVER_CHECK_TIMER, 1_100.0)  # 90 ms after the last event: not quiet yet
    assert timers(fresh, ROLLOVER_CHECK_TIMER) and not [a for a in fresh if isinstance(a, SwitchUpstream)]
    playing = s.timer_fired(ROLLOVER_CHECK_TIMER, 1_500.0)  # quiet, but 2 s of audio from 900 still playing
    assert timers(playing, ROLLOVER_CHECK_TIMER) and not [a for a in playing if isinstance(a, SwitchUpstream)]
    later = s.timer_fired(ROLLOVER_CHECK_TIMER, 2_950.0)  # played to the end
    assert [a for a in later if isinstance(a, SwitchUpstream)]


def test_a_caller_mid_turn_or_untranscribed_holds_the_switch_even_when_relaxed() -> None:
    s = make_session(rollover_after_ms=1_000)
    s.feed_upstream(created(), 0.0)
    s.feed_upstream({"type": "input_audio_buffer.speech_started", "event_id": "e", "item_id": "item_u", "audio_start_ms": 0}, 500.0)
    due_and_open(s, 1_000.0)
    late = 1_000.0 + STRICT_WAIT_MS + 1
    assert not [a for a in s.timer_fired(ROLLOVER_CHECK_TIMER, late) if isinstance(a, SwitchUpstream)]
    s.feed_upstream({"type": "input_audio_buffer.speech_stopped", "event_id": "e", "item_id": "item_u", "audio_end_ms": 900}, late)
    s.feed_upstream({"type": "input_audio_buffer.committed", "event_id": "e", "item_id": "item_u", "previous_item_id": None}, late)
    assert not [a for a in s.timer_fired(ROLLOVER_CHECK_TIMER, late + 1) if isinstance(a, SwitchUpstream)]  # transcript to come
    s.feed_upstream({"type": "conversation.item.input_audio_transcription.completed", "event_id": "e", "item_id": "item_u",
                     "content_index": 0, "transcript": "Hi."}, late + 2)
    assert [a for a in s.timer_fired(ROLLOVER_CHECK_TIMER, late + 3) if isinstance(a, SwitchUpstream)]  # relaxed: no quiet needed


def test_session_expired_is_hidden_from_the_caller_and_a_ready_standby_takes_over_at_once() -> None:
    s = make_session(rollover_after_ms=1_000)
    s.feed_upstream(created(), 0.0)
    answer(s, 900.0)
    due_and_open(s, 1_000.0)  # ready, but an answer is streaming
    expired = {"type": "error", "event_id": "e", "error": {"type": "invalid_request_error", "code": "session_expired",
                                                          "message": "Your session hit the maximum duration of 60 minutes."}}
    actions = s.feed_upstream(expired, 1_100.0)
    to_client = [a.event for a in actions if isinstance(a, SendClient) and a.event]
    assert [e["type"] for e in to_client] == ["response.done"] and to_client[0]["response"]["status"] == "failed"
    assert [a for a in actions if isinstance(a, SwitchUpstream)] and bridge_facts(actions, "session_expired")
    assert "the session expired before a turn boundary came" in bridge_facts(actions, "upstream_rollover")[0].message


def test_an_expiry_without_a_standby_reconnects_without_spending_the_reconnect_budget() -> None:
    s = make_session(rollover_after_ms=0)  # rollover off: the service's limit ends the session
    s.feed_upstream(created(), 0.0)
    expired = {"type": "error", "event_id": "e", "error": {"type": "invalid_request_error", "code": "session_expired", "message": "x"}}
    assert not [a for a in s.feed_upstream(expired, 10.0) if isinstance(a, SendClient)]
    actions = s.upstream_closed(11.0, "code 1001")
    assert [a for a in actions if isinstance(a, ReconnectUpstream)] and s.reconnects == 0  # max_reconnects=0 kept
    # a real drop after that: the budget (0) is spent, the call ends
    s.upstream_reconnected(20.0)
    s.feed_upstream(created(), 21.0)
    assert not [a for a in s.upstream_closed(30.0, "code 1011") if isinstance(a, ReconnectUpstream)]


def test_a_barge_in_on_an_answer_of_the_old_session_is_kept_by_the_bridge() -> None:
    s = make_session(rollover_after_ms=1_000)
    s.feed_upstream(created(), 0.0)
    answer(s, 100.0)
    done(s, 110.0)
    switched = due_and_open(s, 1_000.0)
    assert [a for a in switched if isinstance(a, SwitchUpstream)]
    truncate = json.dumps({"type": "conversation.item.truncate", "item_id": "item_a", "content_index": 0, "audio_end_ms": 100})
    actions = s.receive_client_frame(truncate, 1_010.0)
    assert not [a for a in actions if isinstance(a, SendUpstream)]  # the new session does not know item_a
    assert [a.record.action for a in actions if isinstance(a, Audit) and isinstance(a.record, GateActionRecord)] == ["truncate_replayed"]


def test_a_standby_is_refused_after_the_call_ended_and_a_failed_one_is_retried() -> None:
    s = make_session(rollover_after_ms=1_000)
    s.feed_upstream(created(), 0.0)
    assert s.timer_fired(ROLLOVER_TIMER, 1_000.0)
    failed = s.standby_failed(1_100.0, "cannot connect")
    assert bridge_facts(failed, "rollover_failed") and timers(failed, ROLLOVER_TIMER)
    assert [type(a) for a in s.timer_fired(ROLLOVER_TIMER, 31_100.0)] == [OpenStandbyUpstream]
    s.client_closed(31_200.0)
    assert s.standby_ready(31_300.0) is None
