"""Barge-in that is always valid: a client's truncate is checked against the audio the bridge relayed.

Named after the peers' bugs: clients that estimate playback by the wall clock ask to truncate
beyond the audio they were sent (openai-agents#2009 and PR #4122, pipecat#3677 and #2106,
livekit#6157), and the service answers with an error the client then treats as fatal."""

from __future__ import annotations

import base64
import json

from hybrid_agent.audit.records import GateActionRecord
from hybrid_agent.session import Audit, CallConfig, CallSession, SendUpstream


def answering(audio_ms: float = 0.0) -> CallSession:
    s = CallSession(CallConfig(call_id="c", transcription_model=None))
    s.start(0.0, 1.0)
    s.feed_upstream({"type": "response.created", "event_id": "e", "response": {"id": "r1", "status": "in_progress"}}, 1)
    s.feed_upstream({"type": "response.output_item.added", "event_id": "e", "response_id": "r1",
                     "item": {"id": "item_a", "type": "message", "role": "assistant", "content": []}}, 2)
    if audio_ms:
        n = int(audio_ms * 48)
        s.feed_upstream({"type": "response.output_audio.delta", "event_id": "e", "response_id": "r1", "item_id": "item_a",
                         "output_index": 0, "content_index": 0, "delta": base64.b64encode(b"\x00" * n).decode()}, 3)
    return s


def truncate(s: CallSession, ms: int) -> list:
    return s.receive_client_frame(json.dumps({"type": "conversation.item.truncate", "item_id": "item_a",
                                              "content_index": 0, "audio_end_ms": ms}), 10)


def gate_actions(actions: list) -> list[GateActionRecord]:
    return [a.record for a in actions if isinstance(a, Audit) and isinstance(a.record, GateActionRecord)]


def test_openai_agents_2009_truncate_beyond_the_relayed_audio_is_clamped() -> None:
    s = answering(audio_ms=1240)
    out = truncate(s, 5000)  # the wall clock says 5 s; only 1.24 s of audio was ever sent
    [sent] = [a for a in out if isinstance(a, SendUpstream)]
    assert sent.event["audio_end_ms"] == 1240
    [clamped] = gate_actions(out)
    assert (clamped.action, clamped.requested_ms, clamped.audio_end_ms) == ("truncate_clamped", 5000, 1240)


def test_pipecat_3677_truncate_within_the_audio_is_relayed_as_sent() -> None:
    s = answering(audio_ms=1240)
    frame = json.dumps({"type": "conversation.item.truncate", "item_id": "item_a", "content_index": 0, "audio_end_ms": 800})
    [sent] = s.receive_client_frame(frame, 10)
    assert isinstance(sent, SendUpstream) and sent.raw == frame


def test_livekit_6157_truncate_before_any_audio_cancels_instead() -> None:
    s = answering(audio_ms=0)
    out = truncate(s, 300)
    assert [a.event["type"] for a in out if isinstance(a, SendUpstream)] == ["response.cancel"]
    [refused] = gate_actions(out)
    assert refused.action == "truncate_refused" and refused.requested_ms == 300


def test_truncate_of_an_unknown_item_goes_to_the_upstream() -> None:
    s = answering(audio_ms=100)
    frame = json.dumps({"type": "conversation.item.truncate", "item_id": "item_zzz", "content_index": 0, "audio_end_ms": 50})
    [sent] = s.receive_client_frame(frame, 10)
    assert isinstance(sent, SendUpstream) and sent.raw == frame
