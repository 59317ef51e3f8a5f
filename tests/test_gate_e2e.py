"""The enforcing gate through the real socket: hold mode never sends the caller audio that covers a
blocked phrase, speaks the fallback instead, and records what it did; monitor mode records the leak."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import os
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect

from hybrid_agent.audit.records import GateActionRecord
from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.audit.store import upgrade
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.settings import Settings
from hybrid_agent.simulator.synth import silence, speech

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "t"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CARD = "4111 1111 1111 1111"
SAFE = "Thanks for waiting, I have your card details here."
REPLY = f"{SAFE} Your card number is {CARD}. Is there anything else?"
FALLBACK = "For your security I can't read out card numbers"
WPM = 150.0
SCENARIO = f"""
name: card_leak
transcription_delay_ms: 50
audio: {{words_per_minute: {WPM}, speed: 4.0, chunk_ms: 100, transcript_lead_words: 6}}
turns:
  - user: "What is my card number?"
    assistant: "{REPLY}"
"""


async def call(bridge: BridgeServer) -> list[dict]:
    """Speak one turn; collect everything up to the fallback answer's response.done."""
    events: list[dict] = []
    async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime", additional_headers=AUTH) as ws:
        pcm = silence(200) + speech(800) + silence(700)
        for i in range(0, len(pcm), 4800):
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i:i + 4800]).decode()}))
        done = 0
        while done < 2:
            event = json.loads(await asyncio.wait_for(ws.recv(), 30))
            events.append(event)
            if event["type"] == "response.done":
                done += 1
    return events


def audio_ms(events: list[dict], response_id: str) -> float:
    return sum(len(base64.b64decode(e["delta"])) / 48 for e in events
               if e["type"] == "response.output_audio.delta" and e["response_id"] == response_id)


def settings(tmp_path: Path, mode: str, **kw: object) -> Settings:
    scenario = tmp_path / "card.yaml"
    scenario.write_text(SCENARIO)
    return Settings(upstream="sim", host="127.0.0.1", port=0, bridge_tokens=[TOKEN], sim_scenario=scenario,
                    policy_pack=ROOT / "policies" / "retail-banking", gate_mode=mode, **kw)  # type: ignore[arg-type]


async def test_hold_mode_never_sends_audio_covering_a_blocked_phrase(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(db)
    async with BridgeServer(settings(tmp_path, "hold", database_url=db, audit_spool=tmp_path / "spool")) as bridge:
        events = await call(bridge)
    first, second = [e["response"] for e in events if e["type"] == "response.done"]
    # the caller never got the card: not in any transcript, not in any event
    assert not any(form in json.dumps(events) for form in (CARD, CARD.replace(" ", ""), "1111 1111"))
    # audio: the simulator speaks WPM words a minute; the card sentence starts after SAFE's words
    blocked_starts_ms = len(SAFE.split()) * 60000.0 / WPM
    assert 0 < audio_ms(events, first["id"]) <= blocked_starts_ms
    # the fallback was spoken, as audio
    said = "".join(e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta" and e["response_id"] == second["id"])
    assert said.startswith(FALLBACK) and audio_ms(events, second["id"]) > 0
    assert not [e for e in events if e["type"] == "error"]  # the bridge's own cancel/truncate never surface
    # the audit: blocked with 0 ms leaked, the fallback, and no raw card number anywhere in the database
    env = {**os.environ, "HYBRID_AGENT_DATABASE_URL": db}
    [row] = json.loads(subprocess.run([sys.executable, "-m", "hybrid_agent", "audit", "calls", "--json"], env=env,
                                      capture_output=True, text=True, timeout=60).stdout)
    assert row["blocked"] == 1 and row["leaked_ms"] == 0
    shown = subprocess.run([sys.executable, "-m", "hybrid_agent", "audit", "show", row["call_id"]], env=env,
                           capture_output=True, text=True, timeout=60).stdout
    assert "GATE speech_blocked [hold]" in shown and "fallback_spoken" in shown
    stored = (tmp_path / "audit.db").read_bytes()  # (a bare "4111" can occur inside a hex hash)
    assert not any(form.encode() in stored for form in (CARD, CARD.replace(" ", ""), "1111 1111"))


async def test_monitor_mode_blocks_and_records_the_leaked_milliseconds(tmp_path: Path) -> None:
    audit = MemoryAuditSink()
    async with BridgeServer(settings(tmp_path, "monitor"), audit=audit) as bridge:
        events = await call(bridge)
    first, second = [e["response"] for e in events if e["type"] == "response.done"]
    said = "".join(e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta" and e["response_id"] == second["id"])
    assert said.startswith(FALLBACK)
    await asyncio.sleep(0.1)
    [blocked] = [r for r in audit.records if isinstance(r, GateActionRecord) and r.action == "speech_blocked"]
    assert blocked.mode == "monitor" and blocked.leaked_ms is not None and blocked.leaked_ms >= 0
    assert blocked.rule_id and blocked.rule_id.startswith("banking.speech.card")


@pytest.mark.parametrize("mode", ["hold", "monitor"])
async def test_a_clean_answer_passes_the_gate_whole(tmp_path: Path, mode: str) -> None:
    scenario = tmp_path / "clean.yaml"
    scenario.write_text(SCENARIO.replace(REPLY, "Your balance is fine, and your card is active. Anything else?"))
    audit = MemoryAuditSink()
    s = settings(tmp_path, mode).model_copy(update={"sim_scenario": scenario})
    async with BridgeServer(s, audit=audit) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime", additional_headers=AUTH) as ws:
            pcm = silence(200) + speech(800) + silence(700)
            for i in range(0, len(pcm), 4800):
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i:i + 4800]).decode()}))
            events = []
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 30))
                events.append(event)
                if event["type"] == "response.done":
                    break
    said = "".join(e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta")
    assert said == "Your balance is fine, and your card is active. Anything else?"
    assert audio_ms(events, events[-1]["response"]["id"]) == pytest.approx(len(said.split()) * 60000.0 / WPM, rel=0.05)
    assert not [r for r in audit.records if isinstance(r, GateActionRecord) and r.action == "speech_blocked"]
