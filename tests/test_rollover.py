"""Session rollover: a call outlives the upstream's session limit (``session/rollover.py``).

End to end on the embedded simulator, which enforces its session limit like the real service
(``error`` ``session_expired``, then close 1001): the bridge moves the call to a new session at
a turn boundary before the limit, or at once when the limit comes first; the caller (the
unmodified openai SDK) sees one unbroken call.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from openai import AsyncOpenAI

from hybrid_agent.audit.records import CallEnded, CallEventRecord, TurnRecord
from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.caller import ScriptedCaller
from hybrid_agent.demo import caller_turns
from hybrid_agent.protocol.events import validate_server_event
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.simulator.scenario import load_scenario

from bridge_helpers import TOKEN, bridge_settings

TURNS = [
    {"user": "Hello, is anyone there?", "assistant": "Yes, I am here."},
    {"user": "What time do you open tomorrow?", "assistant": "We open at nine."},
    {"user": "And on Saturday?", "assistant": "At ten on Saturdays."},
    {"user": "Thank you, goodbye.", "assistant": "Goodbye!"},
]


def scenario_file(tmp_path: Path, limit_s: float) -> Path:
    path = tmp_path / "short_sessions.yaml"
    path.write_text(yaml.safe_dump({
        "name": "short_sessions", "greeting": "Hello, how can I help?", "session_limit_s": limit_s,
        "audio": {"words_per_minute": 150, "speed": 4.0, "chunk_ms": 100}, "turns": TURNS,
    }))
    return path


async def run_call(tmp_path: Path, limit_s: float, pause_ms: float = 800.0, **settings: object) -> tuple[MemoryAuditSink, list[dict], int]:
    path = scenario_file(tmp_path, limit_s)
    audit = MemoryAuditSink()
    async with BridgeServer(bridge_settings(sim_scenario=path, **settings), audit=audit) as bridge:
        client = AsyncOpenAI(api_key=TOKEN, websocket_base_url=bridge.ws_base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            log = await ScriptedCaller(conn, caller_turns(load_scenario(path)), playback_rate=1.0, pause_ms=pause_ms).run()
        await client.close()
        await asyncio.sleep(0.2)
        connections = bridge.connector._simulator.connections
    return audit, log.events, connections


def bridge_events(audit: MemoryAuditSink, kind: str) -> list[CallEventRecord]:
    return [r for r in audit.records if isinstance(r, CallEventRecord) and r.kind == kind]


def assert_one_unbroken_call(audit: MemoryAuditSink, events: list[dict]) -> None:
    for event in events:
        validate_server_event(event)
    assert not [e for e in events if e["type"] == "error"], "the caller saw an error"
    statuses = [e["response"]["status"] for e in events if e["type"] == "response.done"]
    assert statuses and set(statuses) == {"completed"}, statuses  # no answer was cut
    said = [r.text for r in audit.records if isinstance(r, TurnRecord) and r.role == "user"]
    assert said == [t["user"] for t in TURNS]  # every caller turn transcribed whole, once
    answers = [e["transcript"] for e in events if e["type"] == "response.output_audio_transcript.done"]
    assert answers[1:] == [t["assistant"] for t in TURNS]  # each answered in order across the sessions
    assert [r.outcome for r in audit.records if isinstance(r, CallEnded)] == ["completed"]


async def test_a_call_rolls_over_to_new_sessions_at_turn_boundaries_before_the_limit(tmp_path: Path) -> None:
    audit, events, connections = await run_call(tmp_path, limit_s=6.0, rollover_s=2.0, max_reconnects=0)
    assert_one_unbroken_call(audit, events)
    rollovers = bridge_events(audit, "upstream_rollover")
    assert rollovers and connections == 1 + len(rollovers)
    assert all("at a turn boundary" in r.message for r in rollovers)
    assert not [r for r in audit.records if isinstance(r, CallEventRecord) and r.kind == "session_expired"], \
        "a session reached its limit"
    assert "upstream session 2 after" in rollovers[0].message and "items replayed" in rollovers[0].message


async def test_a_session_that_expires_first_is_replaced_without_using_the_reconnect_budget(tmp_path: Path) -> None:
    # rollover off: the simulator's limit ends each session; the bridge reconnects and replays,
    # and with max_reconnects=0 a real drop would have ended the call
    audit, events, connections = await run_call(tmp_path, limit_s=3.0, rollover_s=0, max_reconnects=0)
    for event in events:
        validate_server_event(event)
    assert not [e for e in events if e["type"] == "error"], "the session's expiry reached the caller"
    expired = [r for r in audit.records if isinstance(r, CallEventRecord) and r.kind == "session_expired"]
    assert expired and connections == 1 + len(expired)
    said = [r.text for r in audit.records if isinstance(r, TurnRecord) and r.role == "user"]
    assert said == [t["user"] for t in TURNS]
    assert [r.outcome for r in audit.records if isinstance(r, CallEnded)] == ["completed"]
