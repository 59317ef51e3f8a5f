"""A standalone Realtime client that uses only the ``openai`` SDK (and the stdlib).

Point it at a running bridge:

    HYBRID_AGENT_BRIDGE_TOKENS=secret hybrid-agent serve --upstream sim --port 8080
    python examples/sdk_client.py --url ws://127.0.0.1:8080/v1 --token secret

It configures the session, speaks (a tone the simulator's VAD hears as speech) then
silence, and prints every server event type until the response is done.  Exit code
0 when speech_started, speech_stopped, the user transcription, assistant transcript
and audio deltas and response.done all arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import struct
import sys

from openai import AsyncOpenAI

REQUIRED = [
    "session.updated",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "conversation.item.input_audio_transcription.completed",
    "response.output_audio_transcript.delta",
    "response.output_audio.delta",
    "response.done",
]


def pcm16(ms: int, amplitude: int) -> bytes:
    n = 24 * ms
    return b"".join(struct.pack("<h", int(amplitude * math.sin(2 * math.pi * 400 * i / 24000))) for i in range(n))


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="bridge WebSocket base URL, e.g. ws://127.0.0.1:8080/v1")
    parser.add_argument("--token", required=True, help="bridge token")
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()

    client = AsyncOpenAI(api_key=args.token, websocket_base_url=args.url)
    seen: list[str] = []
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(
            session={
                "type": "realtime",
                "instructions": "Be brief.",
                "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}},
            }
        )
        audio = pcm16(800, 8000) + pcm16(900, 0)
        for off in range(0, len(audio), 4800):
            await conn.input_audio_buffer.append(audio=base64.b64encode(audio[off : off + 4800]).decode())

        async def listen() -> None:
            async for event in conn:
                seen.append(event.type)
                detail = getattr(event, "transcript", None) or getattr(event, "delta", "")
                print(event.type, (detail[:60] if isinstance(detail, str) and "audio." not in event.type else ""))
                if all(t in seen for t in REQUIRED):
                    return

        await asyncio.wait_for(listen(), args.timeout)
    missing = [t for t in REQUIRED if t not in seen]
    if missing:
        print("missing:", ", ".join(missing), file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
