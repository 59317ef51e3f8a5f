"""The socket shape of a peer middle: the app serves its callers a WebSocket (``common.py --listen PORT``).

An openai-agents or pipecat voice app in production receives each caller's audio over a socket (their
Twilio Media Streams / WebSocket server examples), so, like our bridge, it pays for two hops per frame:
caller -> app and app -> model.  Here the app is a plain ``websockets`` server (the package each
framework venv already has, at its defaults) speaking the Realtime API's two audio events, so the bench's
load generator reaches it exactly as it reaches our bridge:

- per caller connection, one framework session pointed at the simulator;
- each ``input_audio_buffer.append`` is parsed (``json.loads``, as the examples do), its audio
  base64-decoded and handed to the framework as it comes (no re-batching, as our bridge);
- each audio chunk the framework yields goes back as a ``response.output_audio.delta`` event
  (``json.dumps`` of its base64), so the bench reads the same stamps at both ends as for ours.

The run protocol with the bench: a ``ready`` line once listening; at each ``drain`` on stdin (after the
warm-up caller, after the measured run) the app waits for every open call to finish closing, then writes a
``drained`` line with the errors since the last one and what the sessions reported of their shape (so
the bench's CPU readings bracket whole calls, teardown included); EOF on stdin ends the process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys

from common import Play, Session, Tally, emit
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

DRAIN_TIMEOUT_S = 30.0


class Calls:
    """The calls open now, so a drain can wait for them all to close."""

    def __init__(self) -> None:
        self.open = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def opened(self) -> None:
        self.open += 1
        self.idle.clear()

    def closed(self) -> None:
        self.open -= 1
        if not self.open:
            self.idle.set()


def player(ws: ServerConnection) -> Play:
    """The framework's audio to the caller; a caller who hung up hears nothing, as on a phone line."""
    async def play(pcm: bytes) -> None:
        try:
            await ws.send(json.dumps({"type": "response.output_audio.delta",
                                      "delta": base64.b64encode(pcm).decode("ascii")}))
        except ConnectionClosed:
            pass

    return play


async def serve_callers(session: Session, url: str, api_key: str, port: int) -> None:
    """Serve callers on ``127.0.0.1:port`` until stdin closes, each one framework session."""
    tally, calls = Tally(), Calls()

    async def caller(ws: ServerConnection) -> None:
        calls.opened()
        try:
            async with session(url, api_key, tally, player(ws)) as send:
                async for message in ws:
                    event = json.loads(message)
                    if event.get("type") == "input_audio_buffer.append":
                        await send(base64.b64decode(event["audio"]))
        except ConnectionClosed:
            pass
        except Exception as exc:  # noqa: BLE001 - reported to the bench
            tally.errors.append(f"{type(exc).__name__}: {exc}"[:300])
        finally:
            calls.closed()

    async with serve(caller, "127.0.0.1", port):
        emit("ready", {"port": port})
        while (await asyncio.to_thread(sys.stdin.readline)).strip() == "drain":
            try:
                await asyncio.wait_for(calls.idle.wait(), DRAIN_TIMEOUT_S)
            except asyncio.TimeoutError:
                tally.errors.append(f"{calls.open} calls still open {DRAIN_TIMEOUT_S:g} s after the last caller left")
            emit("drained", {"errors": tally.errors[:5], "error_count": len(tally.errors), "info": tally.info})
            tally.errors = []
