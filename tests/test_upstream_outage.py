"""An upstream outage as the caller lives it: the pack's apology, then the call resumes, nothing lost.

The simulator closes the upstream socket and then refuses connections (HTTP 503) for a while,
as a provider outage does; the caller streams audio all along.  The bridge keeps the caller
connected, plays the pack's outage apology once the gap passes ``outage_after_ms``, reconnects
as soon as the provider is back, replays the call, and hands over every frame the caller sent
meanwhile.  The audit records the gap.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import yaml
from websockets.asyncio.client import connect as ws_connect

from hybrid_agent.audit.records import CallEnded, CallEventRecord
from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.policy.loader import load_pack
from hybrid_agent.protocol.events import validate_server_event
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.simulator.scenario import parse_scenario
from hybrid_agent.simulator.server import RealtimeSimulator
from hybrid_agent.simulator.synth import silence, speech

from bridge_helpers import TOKEN, bridge_settings

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "policies" / "retail-banking"
OUTAGE_MS = 2500


class CountingSimulator(RealtimeSimulator):
    """Keeps the caller audio that reached the service, by connection."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.audio: dict[int, bytearray] = {}

    def client_event_received(self, event: dict) -> None:
        if event.get("type") == "input_audio_buffer.append":
            self.audio.setdefault(self.connections - 1, bytearray()).extend(base64.b64decode(event["audio"]))


async def test_an_outage_plays_the_apology_resumes_within_a_second_and_loses_no_caller_frame() -> None:
    scenario = parse_scenario(yaml.safe_dump({
        "name": "outage", "faults": [{"kind": "close", "after_events": 3, "close_code": None,
                                      "outage_ms": OUTAGE_MS, "connections": [0]}],
    }))
    audit = MemoryAuditSink()
    clip = load_pack(PACK).clips["outage_apology"]
    async with CountingSimulator(scenario) as sim:
        settings = bridge_settings(upstream=sim.ws_url, policy_pack=PACK, gate_mode="observe")
        async with BridgeServer(settings, audit=audit) as bridge:
            async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime",
                                  additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
                received: list[dict] = []

                async def listen() -> None:
                    async for message in ws:
                        received.append(json.loads(message))

                listener = asyncio.create_task(listen())
                await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
                # the caller talks and pauses for 5 s, paced at twice real time, through the outage
                audio = (speech(700) + silence(800)) * 5
                for off in range(0, len(audio), 4800):  # 100 ms frames
                    chunk = audio[off:off + 4800]
                    await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()}))
                    await asyncio.sleep(0.05)
                deadline = time.monotonic() + 10
                while len(sim.audio.get(1, b"")) < len(audio) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                listener.cancel()
    for event in received:
        validate_server_event(event)
    assert sim.connections == 2 and sim.refused_during_outage >= 1  # the bridge retried through the outage
    # the socket dropped before the first caller turn was committed: the new session got all the caller
    # said, in order (what was in flight to the dead socket and what waited during the outage)
    assert bytes(sim.audio[1]) == audio, f"caller audio lost: {len(audio) - len(sim.audio[1])} of {len(audio)} bytes"
    # the apology reached the caller as a response of its own, all of the clip's audio with its words
    said = [e for e in received if e["type"] == "response.output_audio_transcript.done" and e["item_id"].startswith("item_bridge_said_")]
    assert [e["transcript"] for e in said] == [clip.text]
    apology_audio = sum(len(base64.b64decode(e["delta"])) for e in received
                        if e["type"] == "response.output_audio.delta" and e["item_id"] == said[0]["item_id"])
    assert apology_audio == len(clip.pcm)
    assert not [e for e in received if e["type"] == "error"]
    facts = {r.kind: r for r in audit.records if isinstance(r, CallEventRecord)}
    assert facts["outage_apology"].message.endswith(clip.text)
    resumed = facts["upstream_resumed"].message
    gap_ms = float(resumed.split("after ")[1].split(" ms")[0])
    assert OUTAGE_MS <= gap_ms < OUTAGE_MS + 1000, resumed  # back within a second of the provider
    assert "the outage apology was played" in resumed and "0 ms dropped" in resumed
    assert [r.outcome for r in audit.records if isinstance(r, CallEnded)] == ["completed"]


async def test_a_short_drop_resumes_without_an_apology() -> None:
    scenario = parse_scenario(yaml.safe_dump({
        "name": "blip", "faults": [{"kind": "close", "after_events": 3, "close_code": None, "connections": [0]}],
    }))
    audit = MemoryAuditSink()
    async with RealtimeSimulator(scenario) as sim:
        settings = bridge_settings(upstream=sim.ws_url, policy_pack=PACK, gate_mode="observe")
        async with BridgeServer(settings, audit=audit) as bridge:
            async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime",
                                  additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
                await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
                deadline = time.monotonic() + 5
                while sim.connections < 2 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.0)
    facts = {r.kind: r for r in audit.records if isinstance(r, CallEventRecord)}
    assert "upstream_resumed" in facts and "outage_apology" not in facts
    resumed = facts["upstream_resumed"].message
    assert float(resumed.split("after ")[1].split(" ms")[0]) < 1000, resumed  # the first retry is 50 ms after the drop
