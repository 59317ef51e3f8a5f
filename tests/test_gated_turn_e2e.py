"""Gated user turn through the real socket: turn detection runs with ``create_response: false`` and
the bridge creates the model's answer only after the caller's words passed ``user_text``; an
escalating turn is answered with the rule's utterance (flag + webhook); a spoken card number is
flagged and the model told not to repeat it."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

from websockets.asyncio.client import connect as ws_connect

from hybrid_agent.audit.records import GateActionRecord
from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.session.actions import NotifyEscalation
from hybrid_agent.settings import Settings
from socket_helpers import AUTH, speak, until

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = """
name: gated
transcription_delay_ms: 30
audio: {words_per_minute: 300, speed: 0, chunk_ms: 200}
turns:
  - user: "What are your opening hours?"
    assistant: "We are open from nine to five."
  - user: "This is unacceptable, I want to make a formal complaint."
    assistant: "I understand, let me see what I can do."
  - user: "My card number is 4111 1111 1111 1111, is it blocked?"
    assistant: "Your card is not blocked."
"""


def gated_pack(tmp_path: Path) -> Path:
    pack = tmp_path / "pack"
    shutil.copytree(ROOT / "policies" / "retail-banking", pack)
    manifest = pack / "pack.yaml"
    manifest.write_text(manifest.read_text().replace("user_turn: immediate", "user_turn: gated"))
    shutil.rmtree(pack / "tests")
    return pack


def transcript_done(e: dict) -> bool:
    return e["type"] == "response.output_audio_transcript.done"


async def test_gated_user_turns_through_the_socket(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    audit = MemoryAuditSink()
    notified: list[NotifyEscalation] = []
    settings = Settings(upstream="sim", host="127.0.0.1", port=0, bridge_tokens=["t"], sim_scenario=scenario,
                        policy_pack=gated_pack(tmp_path), gate_mode="hold")
    async with BridgeServer(settings, audit=audit, escalations=SimpleNamespace(notify=notified.append)) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime", additional_headers=AUTH) as ws:
            # a client at its defaults asks for server VAD answering on its own: the bridge keeps it gated
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
                "turn_detection": {"type": "server_vad", "create_response": True}}}}}))
            opening = await until(ws, transcript_done)  # the disclosure, spoken by the bridge
            await speak(ws)
            first = await until(ws, transcript_done)
            await speak(ws)
            second = await until(ws, transcript_done)
            await speak(ws)
            third = await until(ws, transcript_done)
    events = opening + first + second + third
    assert not [e for e in events if e["type"] == "error"], [e for e in events if e["type"] == "error"]
    updated = [e for e in events if e["type"] == "session.updated"]
    assert updated and updated[-1]["session"]["audio"]["input"]["turn_detection"]["create_response"] is False
    said = [e["transcript"] for e in events if transcript_done(e)]
    assert said[0] == "This call is recorded for quality, training and compliance purposes."
    assert said[1] == "We are open from nine to five."  # released after user_text allowed it
    assert said[2] == "I'm sorry about this. I'll transfer you to a colleague who can take your complaint."  # the rule's words
    assert said[3] == "Your card is not blocked."
    leaked = [e for e in events if "item_bridge_note_" in json.dumps(e) or "sensitive number" in json.dumps(e)]
    assert not leaked, leaked
    await asyncio.sleep(0.2)
    gated = [r for r in audit.records if isinstance(r, GateActionRecord) and r.action == "user_turn_gated"]
    assert [r.status for r in gated] == ["released", "refused", "flagged"]
    assert gated[1].rule_id == "banking.escalation.complaint" and gated[2].rule_id == "pii:CREDIT_CARD"
    assert all(r.held_ms is not None and r.held_ms >= 0 for r in gated)
    escalated = [r for r in audit.records if isinstance(r, GateActionRecord) and r.action == "escalated"]
    assert [r.rule_id for r in escalated] == ["banking.escalation.complaint"]
    assert [(n.rule_id, n.stage) for n in notified] == [("banking.escalation.complaint", "user_text")]
    assert "4111" not in repr(notified)
