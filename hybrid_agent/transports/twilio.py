"""``WS /twilio/media``: a phone call over Twilio Media Streams, bridged like any Realtime client.

The thin asyncio adapter: it reads Twilio's ``connected`` and ``start``, checks the stream token
the voice webhook put in the TwiML (a ``<Parameter>``: Twilio passes it back in
``start.customParameters``; it must be valid, unexpired and bound to this ``callSid``), and then
runs the same call session and runner as the Realtime transport, with a client socket that
translates (``transports.twilio_media``): Twilio's messages in, Realtime events to the session;
the session's events out, ``media`` + ``mark`` / ``clear`` to Twilio.  The session runs in
``audio/pcmu`` both ways and the transport asks for the opening answer itself (a phone caller
expects the agent to speak first).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from hybrid_agent.transports.twilio_transfer import TwilioTransfer
from hybrid_agent.transports.twilio_media import PCMU_SESSION, StreamError, StreamStart, TwilioMediaStream, parse_start

log = logging.getLogger(__name__)

#: how long Twilio has to send ``connected`` and ``start`` after the socket opened
START_TIMEOUT_S = 10.0
#: translated events waiting for the session (Twilio sends 50 media messages a second)
MAX_PENDING = 512
#: ignored messages logged per stream (the rest only counted)
LOGGED_IGNORED = 10
#: WebSocket close codes
POLICY_VIOLATION = 1008


class TwilioClientSocket:
    """What the call runner sees as its client: Realtime events in and out, Twilio on the wire."""

    def __init__(self, websocket: WebSocket, stream: TwilioMediaStream, transfer: TwilioTransfer | None = None) -> None:
        self.ws = websocket
        self.stream = stream
        self.transfer = transfer
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_PENDING)
        self._reader: asyncio.Task[None] | None = None
        self.dropped = 0

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    await self._events.put({"type": "websocket.disconnect", "code": message.get("code", 1000)})
                    return
                inbound = self.stream.from_twilio(message.get("text") if message.get("text") is not None else message.get("bytes") or b"")
                if inbound.ignored and self.stream.ignored <= LOGGED_IGNORED:  # a hostile stream cannot flood the log
                    log.info("twilio stream %s: ignored a message: %s", self.stream.start.call_sid, inbound.ignored)
                if inbound.digit is not None:  # to the session's keypad capture, in memory only
                    try:
                        self._events.put_nowait({"type": "keypad", "digit": inbound.digit})
                    except asyncio.QueueFull:
                        self.dropped += 1
                for event in inbound.events:
                    self._put(json.dumps(event))
                if inbound.stop:
                    await self._events.put({"type": "websocket.disconnect", "code": 1000, "reason": "twilio stop"})
                    return
        except (WebSocketDisconnect, RuntimeError):
            await self._events.put({"type": "websocket.disconnect", "code": 1006})

    def _put(self, text: str) -> None:
        try:
            self._events.put_nowait({"type": "websocket.receive", "text": text})
        except asyncio.QueueFull:
            self.dropped += 1  # the session fell behind by seconds of audio: drop, count, never block the reader

    async def receive(self) -> dict[str, Any]:
        return await self._events.get()

    async def send_text(self, text: str) -> None:
        """An event the session sends its client: translated for Twilio (most have no Twilio form)."""
        try:
            event = json.loads(text)
        except ValueError:
            return
        out = self.stream.from_session(event)
        for message in out.twilio:
            await self.ws.send_text(json.dumps(message))
        for feed in out.feed:  # the bridge's own barge-in: it reaches the session as the client's events
            self._put(json.dumps(feed))

    def played_ms(self, item_id: str) -> float | None:
        """Ms of ``item_id`` Twilio confirmed played (marks); None for an item never sent here."""
        return self.stream.played_ms(item_id) if item_id in self.stream.items else None

    def escalate(self, done: Any) -> None:
        """A rule escalated: once the utterance has played, hand the call to a person (when configured)."""
        if self.transfer is not None:
            self.transfer.start(self.stream.start.call_sid, self.stream.start.account_sid, self.stream.quiet, done)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._reader is not None:
            self._reader.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close(code, reason)


async def read_start(websocket: WebSocket) -> StreamStart:
    """Twilio's ``connected`` then ``start``; raises :class:`StreamError` (or a timeout)."""
    async with asyncio.timeout(START_TIMEOUT_S):
        for _ in range(3):
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise StreamError("the stream closed before 'start'")
            start = parse_start(message.get("text") if message.get("text") is not None else message.get("bytes") or b"")
            if start is not None:
                return start
    raise StreamError("no 'start' after 'connected'")


#: CallSids whose stream this process took (the newest): a token lets in one stream, not a replay
MAX_STREAMED = 10_000


async def serve_twilio_media(websocket: WebSocket, *, stream_tokens: Any, run_call: Any,
                             streamed: OrderedDict[str, None] | None = None,
                             transfer: Callable[[], TwilioTransfer | None] | None = None) -> None:
    """One phone call: the stream checked, then bridged.  ``run_call(client, caller_id, metadata, first_events)``
    runs the call (``realtime_ws.run_bridged_call`` with the app's settings)."""
    await websocket.accept()
    try:
        start = await read_start(websocket)
    except (StreamError, TimeoutError) as exc:
        log.warning("twilio stream refused: %s", exc)
        with contextlib.suppress(Exception):
            await websocket.close(POLICY_VIOLATION, "bad stream start")
        return
    if stream_tokens is None or stream_tokens.verify(start.custom.get("token", ""), start.call_sid) is None:
        log.warning("twilio stream for call %s refused: no valid stream token for that call", start.call_sid)
        with contextlib.suppress(Exception):
            await websocket.close(POLICY_VIOLATION, "invalid stream token")
        return
    if streamed is not None:
        if start.call_sid in streamed:
            log.warning("twilio stream for call %s refused: that call already had its stream", start.call_sid)
            with contextlib.suppress(Exception):
                await websocket.close(POLICY_VIOLATION, "stream already taken")
            return
        streamed[start.call_sid] = None
        while len(streamed) > MAX_STREAMED:
            streamed.popitem(last=False)
    stream = TwilioMediaStream(start)
    client = TwilioClientSocket(websocket, stream, transfer() if transfer is not None else None)
    client.start()
    log.info("twilio stream %s for call %s started", start.stream_sid, start.call_sid)
    opening = [PCMU_SESSION, {"type": "response.create"}]  # the agent speaks first on the phone
    metadata = {"call_sid": start.call_sid, "stream_sid": start.stream_sid}
    if start.custom.get("to"):
        metadata["to"] = start.custom["to"]
    await run_call(client, start.custom.get("from") or None, metadata, opening)
