"""What the end-to-end tests do on a raw Realtime socket: speak a turn, wait for an answer."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable

from hybrid_agent.simulator.synth import silence, speech

AUTH = {"Authorization": "Bearer t"}


async def speak(ws: object) -> None:
    """One caller turn: speech long enough for turn detection, then the silence that ends it."""
    pcm = silence(200) + speech(800) + silence(700)
    for i in range(0, len(pcm), 4800):
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i:i + 4800]).decode()}))  # type: ignore[attr-defined]


async def until(ws: object, predicate: Callable[[dict], bool], timeout_s: float = 20) -> list[dict]:
    """Every event up to and including the first that ``predicate`` accepts."""
    seen = []
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))  # type: ignore[attr-defined]
        seen.append(event)
        if predicate(event):
            return seen


async def until_transcript(ws: object, needle: str) -> list[dict]:
    """Every event up to the answer whose final transcript contains ``needle``."""
    return await until(ws, lambda e: e["type"] == "response.output_audio_transcript.done" and needle in e["transcript"])
