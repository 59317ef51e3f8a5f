"""The caller's session configuration: model choice and rewrite, merge, bounded memory, errors as audit facts."""

from __future__ import annotations

import json
import sys

from hybrid_agent.audit.records import CallEventRecord
from hybrid_agent.session import Audit, CallConfig, CallSession, SendClient, SendUpstream
from hybrid_agent.session.call_events import CallEventLog
from hybrid_agent.session.client_config import ClientSessionConfig, merge_session
from hybrid_agent.upstream.models import choose_model, model_allowed


def facts(actions: list) -> list[CallEventRecord]:
    return [a.record for a in actions if isinstance(a, Audit) and isinstance(a.record, CallEventRecord)]


def session(**kw: object) -> CallSession:
    s = CallSession(CallConfig(call_id="c", **kw))  # type: ignore[arg-type]
    s.start(0.0, 1.0)
    return s


# ---------------------------------------------------------------- model choice
def test_configured_model_and_its_snapshots_are_allowed_by_default() -> None:
    assert model_allowed("gpt-realtime", "gpt-realtime")
    assert model_allowed("gpt-realtime-2025-08-28", "gpt-realtime")
    assert not model_allowed("gpt-realtime-mini", "gpt-realtime")
    assert not model_allowed("gpt-realtime-2025-08-28x", "gpt-realtime")
    assert not model_allowed("gpt-4o-realtime-preview", "gpt-realtime")


def test_allow_list_replaces_the_default() -> None:
    assert choose_model("gpt-realtime-mini", "gpt-realtime", ["gpt-realtime", "gpt-realtime-mini"]).used == "gpt-realtime-mini"
    mapped = choose_model("gpt-4o-realtime-preview", "gpt-realtime", ["gpt-realtime", "gpt-realtime-mini"])
    assert mapped.used == "gpt-realtime" and mapped.mapped and mapped.requested == "gpt-4o-realtime-preview"
    assert not choose_model(None, "gpt-realtime").mapped
    assert choose_model("x" * 10_000, "gpt-realtime").requested == "x" * 128  # bounded before anything looks at it


def test_mapped_model_is_an_audit_fact_at_call_start() -> None:
    s = CallSession(CallConfig(call_id="c", model="gpt-realtime", requested_model="gpt-4o-realtime-preview"))
    [fact] = facts(s.start(0.0, 1.0))
    assert fact.source == "bridge" and fact.kind == "model_mapped" and "gpt-4o-realtime-preview" in (fact.message or "")


def test_client_session_model_is_rewritten_not_refused() -> None:
    s = session(model="gpt-realtime")
    update = {
        "type": "session.update",
        "event_id": "evt_1",
        "session": {"type": "realtime", "model": "gpt-4o-realtime-preview", "instructions": "Be brief.", "tools": []},
    }
    out = s.receive_client_frame(json.dumps(update), 1.0)
    [sent] = [a for a in out if isinstance(a, SendUpstream)]
    assert sent.event["session"]["model"] == "gpt-realtime"
    assert sent.event["session"]["instructions"] == "Be brief."  # the rest of the configuration goes through
    [fact] = facts(out)
    assert fact.kind == "session_rewritten" and fact.param == "session.model" and fact.client_event_id == "evt_1"


def test_matching_session_model_is_relayed_untouched() -> None:
    s = session(model="gpt-realtime")
    raw = json.dumps({"type": "session.update", "session": {"type": "realtime", "model": "gpt-realtime"}})
    [sent] = s.receive_client_frame(raw, 1.0)
    assert isinstance(sent, SendUpstream) and sent.raw == raw


# ---------------------------------------------------------------- merge and bounded memory
def test_merge_follows_the_service_partial_update_rules() -> None:
    base = merge_session({}, {
        "type": "realtime", "instructions": "a", "audio": {
            "input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": {"type": "server_vad", "threshold": 0.5}},
            "output": {"voice": "alloy"},
        },
    })
    new = merge_session(base, {
        "instructions": "b",
        "audio": {"input": {"turn_detection": {"silence_duration_ms": 700}}, "output": {"speed": 1.1}},
        "not_a_session_field": "x" * 100,
    })
    assert new["instructions"] == "b"
    assert new["audio"]["input"]["turn_detection"] == {"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 700}
    assert new["audio"]["output"] == {"voice": "alloy", "speed": 1.1}
    assert "not_a_session_field" not in new
    other = merge_session(new, {"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}})
    assert other["audio"]["input"]["turn_detection"] == {"type": "semantic_vad"}  # a new type replaces, never mixes


def test_many_large_updates_keep_one_merged_configuration() -> None:
    s = session()
    big = "x" * 200_000
    for i in range(50):
        s.receive_client_frame(json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": f"{i}{big}"}}), i)
    size = len(json.dumps(s.client_config.merged))
    assert size < 2 * len(big)  # one update's worth, not fifty
    assert s.client_config.merged["instructions"].startswith("49")
    assert not hasattr(s, "_client_sessions")
    assert sys.getsizeof(s.client_config.merged) < 10_000


def test_reconnect_restores_the_merged_configuration_in_one_update() -> None:
    s = session(model="gpt-realtime")
    s.receive_client_frame(json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": "a"}}), 1)
    s.receive_client_frame(json.dumps({"type": "session.update", "session": {"type": "realtime", "tools": [{"type": "function", "name": "f"}]}}), 2)
    s.upstream_closed(3, "drop")
    out = s.upstream_reconnected(4)
    restores = [a.event for a in out if isinstance(a, SendUpstream) and a.event and a.event["event_id"].startswith("event_bridge_replay_session")]
    assert len(restores) == 1
    assert restores[0]["session"]["instructions"] == "a" and restores[0]["session"]["tools"][0]["name"] == "f"


def test_config_keeps_only_session_fields() -> None:
    c = ClientSessionConfig("gpt-realtime", None)
    c.client_update({"type": "realtime", "bogus": 1})
    assert c.merged == {"type": "realtime"}


# ---------------------------------------------------------------- errors as audit facts
def test_upstream_refusal_of_a_client_event_is_attributed_to_its_type() -> None:
    s = session()
    s.receive_client_frame(json.dumps({"type": "session.update", "event_id": "evt_7", "session": {"type": "realtime", "voice": 1}}), 1)
    err = {"type": "error", "event_id": "e", "error": {"type": "invalid_request_error", "code": "unknown_parameter",
                                                     "message": "Unknown parameter: 'session.voice'.", "param": "session.voice",
                                                     "event_id": "evt_7"}}
    out = s.feed_upstream(err, 2)
    assert isinstance(out[0], SendClient)  # the caller sees it too
    [fact] = facts(out)
    assert (fact.source, fact.kind, fact.event_type, fact.param) == ("upstream_refused", "unknown_parameter", "session.update", "session.voice")


def test_upstream_error_without_an_event_is_an_upstream_fact() -> None:
    s = session()
    [fact] = facts(s.feed_upstream({"type": "error", "event_id": "e", "error": {"type": "server_error", "message": "boom"}}, 1))
    assert fact.source == "upstream" and fact.event_type is None


def test_a_flood_of_bad_frames_is_recorded_bounded_with_a_summary() -> None:
    s = session()
    recorded = []
    for i in range(1000):
        recorded += facts(s.receive_client_frame("{nope", i))
    assert len(recorded) == CallEventLog(call_id="x").max_records
    end = facts(s.client_closed(2000))
    assert [f.kind for f in end] == ["events_suppressed"] and "800" in (end[0].message or "")


# ---------------------------------------------------------------- replay bounds
def test_conversation_log_keeps_the_newest_items_within_bounds() -> None:
    from hybrid_agent.session.replay import ConversationLog

    log = ConversationLog(max_items=10, max_chars=1000)
    for i in range(50):
        log.add({"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"{i:03d}" + "x" * 97}]}, f"i{i}")
    assert len(log) == 10 and log.dropped_items == 40
    texts = [item["content"][0]["text"][:3] for item in log]
    assert texts == [f"{i:03d}" for i in range(40, 50)]
    events = log.replay_events()
    assert events[1]["previous_item_id"] == events[0]["item"]["id"]


def test_reconnect_queue_bounds_audio_and_other_events() -> None:
    from hybrid_agent.session.replay import ReconnectQueue

    q = ReconnectQueue(max_audio_ms=100, max_events=3)
    for _ in range(5):
        q.hold({"type": "input_audio_buffer.append"}, 40)
    for _ in range(5):
        q.hold({"type": "response.create"})
    assert q.dropped_audio_ms == 120 and q.dropped_events == 2
    assert len(q.drain()) == 5 and q.drain() == []
