"""One hostile message must not stall other calls: a 64,000-letter typed message through the real socket.

It once froze every call for 23 s (a quadratic e-mail pattern in the audit writer's
scrubber holding the interpreter lock).  A concurrent call's audio events must keep
flowing; the bound asserted is generous (the healthy gap is the simulator's 50 ms chunk).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

from websockets.asyncio.client import connect as ws_connect

from hybrid_agent.audit.store import upgrade
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.settings import Settings
from hybrid_agent.simulator.synth import silence, speech

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "t"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LONG_REPLY = " ".join(["Your statement lists every payment made this month in order."] * 8)
SCENARIO = f"""
name: long_answer
transcription_delay_ms: 50
audio: {{words_per_minute: 150, speed: 1.0, chunk_ms: 50}}
turns:
  - user: "Read me my statement."
    assistant: "{LONG_REPLY}"
"""
#: generous: the healthy gap is one 50 ms chunk; the defect stalled for 23 s
MAX_GAP_S = 2.0


async def test_a_64000_letter_message_leaves_other_calls_audio_flowing(tmp_path: Path) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(SCENARIO)
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(db)
    settings = Settings(
        upstream="sim", host="127.0.0.1", port=0, bridge_tokens=[TOKEN], sim_scenario=scenario,
        database_url=db, audit_spool=tmp_path / "spool", policy_pack=ROOT / "policies" / "retail-banking",
        gate_mode="observe",  # relay timing as the caller sees it; hold mode releases audio in phrases by design
    )
    async with BridgeServer(settings) as bridge:
        url = f"{bridge.ws_base_url}/realtime?model=gpt-realtime"
        async with ws_connect(url, additional_headers=AUTH) as a, ws_connect(url, additional_headers=AUTH, max_size=None) as b:
            pcm = silence(200) + speech(800) + silence(700)
            for i in range(0, len(pcm), 4800):
                await a.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i:i + 4800]).decode()}))
            arrivals: list[float] = []
            hostile_sent = False
            while True:
                event = json.loads(await asyncio.wait_for(a.recv(), 30))
                if event["type"] == "response.output_audio.delta":
                    arrivals.append(time.monotonic())
                    if len(arrivals) == 5 and not hostile_sent:
                        hostile_sent = True
                        for text in ("a" * 64_000, "ab" * 32_000 + "@", "1 " * 32_000):
                            await b.send(json.dumps({
                                "type": "conversation.item.create",
                                "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
                            }))
                if event["type"] == "response.done":
                    break
            assert hostile_sent and len(arrivals) > 20
            gaps = [y - x for x, y in zip(arrivals, arrivals[1:])]
            assert max(gaps) < MAX_GAP_S, f"longest gap between audio events {max(gaps):.2f} s"
            # the hostile caller's call goes on too
            await b.send(json.dumps({"type": "response.create"}))
            while json.loads(await asyncio.wait_for(b.recv(), 30))["type"] != "response.done":
                pass
