"""A scripted phone caller that speaks Twilio's Media Streams protocol: the Twilio side of a call.

For the tests and ``hybrid-agent demo --twilio``.  It plays Twilio: sends ``connected`` and
``start`` (with the stream token the voice webhook issued, as a custom parameter), the caller's
synthesized mu-law speech as 20 ms ``media`` messages in real time (``speed`` > 1 runs faster),
and plays what the bridge sends on a real-time clock: each ``mark`` is echoed once the audio
before it has played, a ``clear`` drops what was not played yet (its marks echoed at once, as
Twilio does).  It records what it heard per mark, so a test can compare the bridge's truncate
with the audio the marks confirmed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from hybrid_agent.simulator.synth import silence, speech

FRAME_MS = 20
BYTES_PER_MS = 8


@dataclass
class PhoneLog:
    received: list[dict[str, Any]] = field(default_factory=list)
    marks_echoed: list[str] = field(default_factory=list)
    clears: int = 0
    heard_ms: float = 0.0  # audio played to the caller in total
    played_by_mark: dict[str, float] = field(default_factory=dict)  # mark name -> audio played when it was echoed
    heard_at_clear: list[float] = field(default_factory=list)  # audio played in total when each clear came


class PhoneCaller:
    def __init__(self, url: str, token: str, *, call_sid: str = "CA00000000000000000000000000000001",
                 stream_sid: str = "MZ00000000000000000000000000000001", caller: str = "+15550100",
                 speed: float = 1.0) -> None:
        self.url = url
        self.token = token
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self.caller = caller
        self.speed = speed
        self.log = PhoneLog()
        self._queue: deque[tuple[str, float]] = deque()  # ("audio", ms) or ("mark", name)
        self._chunk_end: float | None = None  # when the chunk playing now ends
        self._last_end = 0.0  # when the chunk played last ended
        self._echo_later: list[str] = []  # marks of cleared audio, echoed next
        self._seq = 0
        self.ws: Any = None

    def _next(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def open(self, websocket: Any, custom: dict[str, str] | None = None) -> None:
        self.ws = websocket
        await self.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        params = {"token": self.token, "from": self.caller, **(custom or {})}
        await self.ws.send(json.dumps({
            "event": "start", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
            "start": {"accountSid": "AC00000000000000000000000000000001", "streamSid": self.stream_sid,
                      "callSid": self.call_sid, "tracks": ["inbound"], "customParameters": params,
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
        }))

    async def say(self, speech_ms: float, silence_after_ms: float = 700.0) -> None:
        """Speak (synthetic speech, then silence so turn detection ends the turn), paced in real time."""
        audio = speech(speech_ms, "audio/pcmu") + silence(silence_after_ms, "audio/pcmu")
        step = FRAME_MS * BYTES_PER_MS
        started = time.monotonic()
        for n, off in enumerate(range(0, len(audio), step)):
            await self.ws.send(json.dumps({"event": "media", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                                           "media": {"track": "inbound", "chunk": str(n + 1), "timestamp": str(n * FRAME_MS),
                                                     "payload": base64.b64encode(audio[off:off + step]).decode()}}))
            due = started + (n + 1) * FRAME_MS / 1000 / self.speed
            await self._pump(max(0.0, due - time.monotonic()))

    async def press(self, digits: str) -> None:
        for digit in digits:
            await self.ws.send(json.dumps({"event": "dtmf", "streamSid": self.stream_sid, "sequenceNumber": self._next(),
                                           "dtmf": {"track": "inbound_track", "digit": digit}}))

    async def listen(self, seconds: float) -> None:
        """Receive and play for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self._pump(min(0.02, deadline - time.monotonic()))

    async def listen_until_quiet(self, quiet_s: float = 1.0, limit_s: float = 30.0) -> None:
        """Until nothing arrived and nothing is left to play for ``quiet_s``."""
        deadline = time.monotonic() + limit_s
        last = time.monotonic()
        while time.monotonic() < deadline:
            n = len(self.log.received)
            await self._pump(0.02)
            if len(self.log.received) != n or self._queue:
                last = time.monotonic()
            elif time.monotonic() - last >= quiet_s:
                return

    async def hang_up(self) -> None:
        await self.ws.send(json.dumps({"event": "stop", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                                       "stop": {"accountSid": "AC00000000000000000000000000000001", "callSid": self.call_sid}}))

    async def _pump(self, timeout: float) -> None:
        """Take what the bridge sent within ``timeout``, and play the queue up to now."""
        try:
            data = await asyncio.wait_for(self.ws.recv(), max(0.0, timeout))
            self._on_message(json.loads(data))
        except (asyncio.TimeoutError, TimeoutError):
            pass
        await self._play()

    def _on_message(self, message: dict[str, Any]) -> None:
        self.log.received.append(message)
        kind = message.get("event")
        if kind == "media":
            ms = len(base64.b64decode(message["media"]["payload"])) / BYTES_PER_MS
            self._queue.append(("audio", ms))
        elif kind == "mark":
            self._queue.append(("mark", message["mark"]["name"]))  # type: ignore[arg-type]
        elif kind == "clear":
            self.log.clears += 1
            self.log.heard_at_clear.append(self.log.heard_ms)
            self._echo_later = [str(name) for what, name in self._queue if what == "mark"]  # Twilio echoes them
            self._queue.clear()
            self._chunk_end, self._last_end = None, 0.0

    async def _play(self) -> None:
        for name in self._echo_later:
            await self._echo(str(name), cleared=True)
        self._echo_later = []
        now = time.monotonic()
        while self._queue:
            what, value = self._queue[0]
            if what == "mark":
                self._queue.popleft()
                await self._echo(str(value))
                continue
            if self._chunk_end is None:  # this chunk starts when the one before it ended (or now)
                self._chunk_end = max(now, self._last_end) + float(value) / 1000 / self.speed
            if self._chunk_end > now:
                return
            self._queue.popleft()
            self.log.heard_ms += float(value)
            self._last_end, self._chunk_end = self._chunk_end, None

    async def _echo(self, name: str, cleared: bool = False) -> None:
        self.log.marks_echoed.append(name)
        if not cleared:
            self.log.played_by_mark[name] = self.log.heard_ms
        await self.ws.send(json.dumps({"event": "mark", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                                       "mark": {"name": name}}))
