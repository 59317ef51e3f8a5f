"""Relay benchmark: the bridge's cost next to talking to the simulator directly, in one run.

Both paths use the same openai-SDK client and the same simulator (audio pacing off,
so the simulator sends as fast as it can).  Reported side by side with ratios:

- round trip of ``session.update`` -> ``session.updated`` (p50 / p99 ms);
- a long response streamed back (events per second, audio seconds per wall second);
- caller audio in (``input_audio_buffer.append`` frames of 20 ms per second until the
  simulator's VAD reports ``speech_stopped``).

    .venv/bin/python -m bench.relay [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import time
from typing import Any

from openai import AsyncOpenAI
from pydantic import SecretStr

from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.settings import Settings
from hybrid_agent.simulator.scenario import parse_scenario
from hybrid_agent.simulator.server import RealtimeSimulator
from hybrid_agent.simulator.synth import silence, speech

LONG_REPLY = " ".join(["word"] * 600)  # ~4 minutes of synthetic audio
SCENARIO = parse_scenario(
    f"""
name: bench
transcription_delay_ms: 0
audio: {{words_per_minute: 150, speed: 0, chunk_ms: 100}}
greeting: "{LONG_REPLY}"
""",
    "bench",
)
TOKEN = "bench-token"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def measure(client: AsyncOpenAI, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv_bytes()  # session.created
        rtts = []
        for i in range(rounds):
            t0 = time.perf_counter()
            await conn.send({"type": "session.update", "session": {"type": "realtime", "instructions": f"r{i}"}})
            while json.loads(await conn.recv_bytes())["type"] != "session.updated":
                pass
            rtts.append((time.perf_counter() - t0) * 1000)
        out["rtt_p50_ms"] = statistics.median(rtts)
        out["rtt_p99_ms"] = pct(rtts, 0.99)

        t0 = time.perf_counter()
        await conn.send({"type": "response.create"})
        events = 0
        audio_bytes = 0
        while True:
            ev = json.loads(await conn.recv_bytes())
            events += 1
            if ev["type"] == "response.output_audio.delta":
                audio_bytes += len(base64.b64decode(ev["delta"]))
            if ev["type"] == "response.done":
                break
        wall = time.perf_counter() - t0
        out["stream_events_per_s"] = events / wall
        out["stream_audio_x_realtime"] = (audio_bytes / 48000) / wall

        frames = [base64.b64encode(c).decode() for c in _chunks(speech(3000) + silence(1000), 960)]
        t0 = time.perf_counter()
        for f in frames:
            await conn.send({"type": "input_audio_buffer.append", "audio": f})
        while json.loads(await conn.recv_bytes())["type"] != "input_audio_buffer.speech_stopped":
            pass
        out["append_frames_per_s"] = len(frames) / (time.perf_counter() - t0)
    return out


def _chunks(data: bytes, n: int) -> list[bytes]:
    return [data[i : i + n] for i in range(0, len(data), n)]


async def main(rounds: int) -> None:
    import tempfile

    from hybrid_agent.audit.store import upgrade

    tmp = tempfile.TemporaryDirectory()
    db = f"sqlite:///{tmp.name}/relay_audit.db"
    upgrade(db)  # the bridge records every turn to a real audit database, as in production
    async with RealtimeSimulator(SCENARIO) as sim:
        direct_client = AsyncOpenAI(api_key="x", base_url=sim.base_url)
        direct = await measure(direct_client, rounds)
        await direct_client.close()
        settings = Settings(
            upstream=sim.ws_url, host="127.0.0.1", port=0, bridge_tokens=[SecretStr(TOKEN)], openai_api_key=SecretStr("x"),
            database_url=db, pseudonym_key=SecretStr("relay-bench-pseudonym-key"), audit_spool=f"{tmp.name}/relay.spool",
        )
        async with BridgeServer(settings) as bridge:
            bridged_client = AsyncOpenAI(api_key=TOKEN, websocket_base_url=bridge.ws_base_url)
            bridged = await measure(bridged_client, rounds)
            await bridged_client.close()
    tmp.cleanup()
    print(f"{'metric':<26}{'direct':>12}{'via bridge':>12}{'ratio':>8}")
    for key in direct:
        ratio = bridged[key] / direct[key] if direct[key] else float("nan")
        print(f"{key:<26}{direct[key]:>12.2f}{bridged[key]:>12.2f}{ratio:>8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    asyncio.run(main(parser.parse_args().rounds))
