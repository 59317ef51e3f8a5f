"""The plain ``openai`` SDK's Realtime client against the bridge (runs in the project's own .venv).

``AsyncOpenAI(api_key=<bridge token>, websocket_base_url=<bridge>/v1).realtime.connect(model=...)``:
the SDK builds ``{websocket_base_url}/realtime?model=...`` and sends ``Authorization: Bearer``.
The session is configured the way the SDK's own examples do it (``session.update`` with
instructions and one function tool; server defaults otherwise), the caller speaks, runs the
tool the model calls, and barges in on a long answer, truncating it at the audio it heard
(played back on a real-time clock, as a phone would).

``--mode server-tool`` (phase 2): the same connection and the same kind of ``session.update``,
with only the client's own ``get_branch_hours`` tool; a ``response.create`` asks for the
greeting (as the SDK's examples do for a bot that speaks first), then the caller speaks twice and
hears each answer out.  The bridge runs its own tools; this client must never see them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    CLIENT_TOOL,
    CLIENT_TOOL_OUTPUT,
    CLIENT_TOOL_SCHEMA,
    barge_in,
    server_tool_call,
    INSTRUCTIONS,
    TOOL_NAME,
    TOOL_OUTPUT,
    FrameTap,
    Summary,
    b64,
    chunks,
    parse_args,
    utterance,
)
from openai import AsyncOpenAI  # noqa: E402

MODEL = "gpt-realtime"
TOOL_SCHEMA = {
    "type": "function",
    "name": TOOL_NAME,
    "description": "Look up the balance of one of the caller's accounts.",
    "parameters": {"type": "object", "properties": {"account_id": {"type": "string"}}, "required": ["account_id"]},
}


class Player:
    """Plays the assistant's audio on a real-time clock; knows how much of the current item was heard."""

    def __init__(self) -> None:
        self.item: str | None = None
        self.audio_ms = 0.0
        self.start = 0.0
        self.bytes = 0

    def delta(self, item_id: str, pcm: bytes) -> None:
        self.bytes += len(pcm)
        if item_id != self.item:
            self.item, self.audio_ms, self.start = item_id, 0.0, time.monotonic()
        self.audio_ms += len(pcm) / 48.0

    def heard_ms(self) -> float:
        return 0.0 if self.item is None else min(self.audio_ms, (time.monotonic() - self.start) * 1000.0)

    def playing(self) -> bool:
        return self.item is not None and self.heard_ms() < self.audio_ms

    async def until_played(self) -> None:
        while self.playing():
            await asyncio.sleep(0.05)


async def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    tap = FrameTap().install()
    summary = Summary("openai", version("openai"))
    player = Player()
    failures: list[str] = []
    client = AsyncOpenAI(api_key=args.token, websocket_base_url=args.url)
    try:
        async with client.realtime.connect(model=MODEL) as conn:

            async def listen() -> None:
                async for event in conn:
                    if event.type == "response.output_audio.delta":
                        player.delta(event.item_id, base64.b64decode(event.delta))
                    elif event.type == "input_audio_buffer.speech_started":
                        if player.playing():  # barge-in: cut the answer at what the caller heard
                            await conn.conversation.item.truncate(
                                item_id=player.item, content_index=0, audio_end_ms=int(player.heard_ms()))
                        player.item = None
                    elif event.type == "response.function_call_arguments.done":
                        fn_args = json.loads(event.arguments or "{}")
                        outputs = {TOOL_NAME: TOOL_OUTPUT} if args.mode == "client-tool" else {CLIENT_TOOL: CLIENT_TOOL_OUTPUT}
                        output = json.dumps(outputs.get(event.name, {"error": "unknown tool"}))
                        summary.tool_call(event.name, fn_args, output)
                        await conn.conversation.item.create(
                            item={"type": "function_call_output", "call_id": event.call_id, "output": output})
                        await conn.response.create()

            listener = asyncio.create_task(listen())

            async def speak() -> None:
                for chunk in chunks(utterance()):
                    await conn.input_audio_buffer.append(audio=b64(chunk))

            t = args.timeout
            tool = TOOL_SCHEMA if args.mode == "client-tool" else CLIENT_TOOL_SCHEMA
            await conn.session.update(session={"type": "realtime", "instructions": INSTRUCTIONS, "tools": [tool]})
            await tap.wait_recv("session.updated", t)
            summary.step("session configured")

            if args.mode == "server-tool":
                await server_tool_call(tap, conn.response.create, speak, summary, t)
            else:
                m = tap.mark()
                await speak()
                await tap.wait_recv("response.function_call_arguments.done", t, m)
                summary.step("tool called")
                await tap.wait_spoken_reply(t, m)
                summary.step("answer after the tool")
                await player.until_played()

                await barge_in(tap, speak, summary, t)
            listener.cancel()
    except Exception as exc:  # noqa: BLE001 - the summary reports it
        summary.data["exception"] = f"{type(exc).__name__}: {exc}"
        failures.append(f"client failed: {type(exc).__name__}: {exc}")
    rc = summary.finish(tap, player.bytes, extra_failures=failures, mode=args.mode)
    summary.emit(args.out)
    if args.frames:
        tap.dump(args.frames)
    return rc


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
