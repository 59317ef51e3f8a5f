"""A scripted caller that uses only the ``openai`` SDK: the demo's and the end-to-end tests' client.

It plays the part of a phone caller on a Realtime connection: speaks synthetic
audio for each turn, plays the assistant's audio back on a real-time clock,
runs function tools itself (until the bridge runs them), and barges in when a
turn says so, truncating the assistant item at the audio it actually heard.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hybrid_agent.protocol.audio import BYTES_PER_MS, duration_ms
from hybrid_agent.simulator.synth import silence, speech

ToolFn = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class CallerTurn:
    """One thing the caller says.  ``barge_in_after_ms``: say it while the previous reply plays, after that much was heard."""

    speech_ms: float = 900.0
    barge_in_after_ms: float | None = None
    #: the truncate of this barge-in claims this much more than was heard: a client that estimates
    #: playback by the wall clock (openai-agents#2009, pipecat#3677) -- the bridge must clamp it
    truncate_overshoot_ms: float = 0.0


@dataclass
class CallLog:
    events: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]


class ScriptedCaller:
    def __init__(
        self,
        connection: Any,
        turns: list[CallerTurn],
        *,
        tools: dict[str, ToolFn] | None = None,
        audio_format: str = "audio/pcm",
        greeting: bool = True,
        on_line: Callable[[str], None] | None = None,
        chunk_ms: float = 100.0,
        trailing_silence_ms: float = 800.0,
        idle_timeout_s: float = 10.0,
        playback_rate: float = 1.0,
        pause_ms: float = 0.0,
    ) -> None:
        self.conn = connection
        self.turns = turns
        self.tools = tools or {}
        self.fmt = audio_format
        self.greeting = greeting
        self.on_line = on_line or (lambda line: None)
        self.chunk_ms = chunk_ms
        self.trailing_silence_ms = trailing_silence_ms
        self.idle_timeout_s = idle_timeout_s
        self.playback_rate = playback_rate  # >1 plays the assistant's audio faster than real time (tests)
        self.pause_ms = pause_ms  # a person's pause before answering, once the reply finished playing
        self.log = CallLog()
        # playback of the current assistant item
        self._item: str | None = None
        self._item_audio_ms = 0.0
        self._play_start: float | None = None
        self._truncated: set[str] = set()
        self._overshoot_ms = 0.0

    # ------------------------------------------------------------------ public
    async def run(self) -> CallLog:
        await self._send(self._session_update())
        await self._until(lambda e: e["type"] == "session.updated")
        if self.greeting:
            await self._send({"type": "response.create"})
            await self._until_reply_done()
            await self._until_quiet()  # the bridge may speak first (a required disclosure): wait for every opening answer
        i = 0
        while i < len(self.turns):
            await self._speak(self.turns[i])
            nxt = self.turns[i + 1] if i + 1 < len(self.turns) else None
            if nxt is not None and nxt.barge_in_after_ms is not None:
                await self._until_reply_done(barge_in=nxt)
                i += 1  # the barge-in turn was spoken during the reply
            await self._until_reply_done()
            i += 1
        await self._drain(0.5)
        return self.log

    # ------------------------------------------------------------------ speaking
    def _session_update(self) -> dict[str, Any]:
        tools = [
            {"type": "function", "name": name, "description": f"demo tool {name}", "parameters": {"type": "object", "properties": {}}}
            for name in self.tools
        ]
        fmt: dict[str, Any] = {"type": self.fmt}
        if self.fmt == "audio/pcm":
            fmt["rate"] = 24000
        return {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": "You are a helpful bank assistant.",
                "audio": {
                    "input": {"format": fmt, "transcription": {"model": "gpt-4o-transcribe"}},
                    "output": {"format": fmt},
                },
                "tools": tools,
            },
        }

    async def _speak(self, turn: CallerTurn) -> None:
        if turn.barge_in_after_ms is None:  # a turn taken after the previous reply finished playing
            self._item, self._item_audio_ms, self._play_start = None, 0.0, None
            if self.pause_ms:
                await self._drain(self.pause_ms / 1000.0)
        self._overshoot_ms = turn.truncate_overshoot_ms
        audio = speech(turn.speech_ms, self.fmt) + silence(self.trailing_silence_ms, self.fmt)
        step = int(self.chunk_ms * BYTES_PER_MS[self.fmt])
        for off in range(0, len(audio), step):
            await self._send({"type": "input_audio_buffer.append", "audio": base64.b64encode(audio[off : off + step]).decode()})

    # ------------------------------------------------------------------ listening
    async def _send(self, event: dict[str, Any]) -> None:
        await self.conn.send(event)

    async def _recv(self, timeout: float) -> dict[str, Any] | None:
        try:
            data = await asyncio.wait_for(self.conn.recv_bytes(), timeout)
        except asyncio.TimeoutError:
            return None
        event = json.loads(data)
        self.log.events.append(event)
        await self._react(event)
        return event

    async def _until(self, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        while True:
            event = await self._recv(self.idle_timeout_s)
            if event is None:
                raise TimeoutError(f"no event for {self.idle_timeout_s} s")
            if done(event):
                return event

    async def _until_reply_done(self, barge_in: CallerTurn | None = None) -> None:
        """Wait for a response that spoke (not a function-call round), barging in on the way if asked."""
        deadline = time.monotonic() + self.idle_timeout_s
        reply_done = False
        spoke_over = False
        while True:
            if barge_in is not None and self._heard_ms() >= barge_in.barge_in_after_ms:  # type: ignore[operator]
                self.on_line(f"caller: (interrupts after {self._heard_ms() / 1000:.1f} s of the answer)")
                await self._speak(barge_in)
                barge_in = None
                spoke_over = True
                if reply_done:  # all audio had arrived; the truncate follows speech_started
                    return
            event = await self._recv(0.05 if barge_in is not None else max(0.0, deadline - time.monotonic()))
            if event is None:
                if time.monotonic() > deadline:
                    raise TimeoutError("no reply from the assistant")
                continue
            deadline = time.monotonic() + self.idle_timeout_s
            if event["type"] == "response.done":
                response = event["response"]
                kinds = {o.get("type") for o in response.get("output") or []}
                # a spoken answer ends the turn; "let me check" + a function call does not (the tool round follows)
                # failed: the bridge lost the upstream mid-answer and reconnected; the caller moves on
                ours = any(o.get("id") in self._truncated for o in response.get("output") or [])
                if response.get("status") == "cancelled" and not ours and not spoke_over and barge_in is None:
                    continue  # the bridge stopped this answer (a gate block): its fallback follows
                if response.get("status") in ("cancelled", "failed") or ("message" in kinds and "function_call" not in kinds):
                    if barge_in is None:
                        await self._finish_playback()
                        return
                    reply_done = True

    async def _until_quiet(self, quiet_s: float = 0.3) -> None:
        """Listen until nothing arrives for ``quiet_s``; an answer that starts meanwhile is heard out."""
        while True:
            event = await self._recv(quiet_s)
            if event is None:
                return
            if event["type"] == "response.created":
                await self._until_reply_done()

    async def _drain(self, quiet_s: float) -> None:
        while await self._recv(quiet_s) is not None:
            pass

    def _heard_ms(self) -> float:
        if self._play_start is None:
            return 0.0
        return min(self._item_audio_ms, (time.monotonic() - self._play_start) * 1000.0 * self.playback_rate)

    async def _finish_playback(self) -> None:
        """A polite caller lets the answer finish playing before speaking again."""
        while self._play_start is not None and self._heard_ms() < self._item_audio_ms:
            remaining = (self._item_audio_ms - self._heard_ms()) / 1000.0 / self.playback_rate
            if await self._recv(min(remaining, 0.05) + 0.001) is None:
                continue

    async def _react(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "response.output_audio.delta":
            if event["item_id"] != self._item:
                self._item, self._item_audio_ms, self._play_start = event["item_id"], 0.0, time.monotonic()
            self._item_audio_ms += duration_ms(len(base64.b64decode(event["delta"])), self.fmt)
        elif kind == "input_audio_buffer.speech_started":
            # a wall-clock client (overshoot) believes the answer is still playing and always truncates
            playing = self._heard_ms() < self._item_audio_ms or self._overshoot_ms > 0
            if self._item is not None and self._item not in self._truncated and playing:
                heard = int(self._heard_ms() + self._overshoot_ms)
                self._truncated.add(self._item)
                await self._send({"type": "conversation.item.truncate", "item_id": self._item, "content_index": 0, "audio_end_ms": heard})
            self._play_start = None
        elif kind == "conversation.item.input_audio_transcription.completed":
            self.on_line(f"caller: {event['transcript']}")
        elif kind == "response.output_audio_transcript.done":
            self.on_line(f"agent:  {event['transcript']}")
        elif kind == "conversation.item.truncated":
            self.on_line(f"        (caller heard {event['audio_end_ms'] / 1000:.1f} s of that answer)")
        elif kind == "response.function_call_arguments.done":
            args = json.loads(event.get("arguments") or "{}")
            fn = self.tools.get(event["name"])
            result = fn(args) if fn else {"error": f"unknown tool {event['name']}"}
            output = json.dumps(result)
            self.on_line(f"tool:   {event['name']}({event.get('arguments')}) -> {output}")
            await self._send({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": event["call_id"], "output": output}})
            await self._send({"type": "response.create"})
        elif kind == "error":
            self.on_line(f"error:  {event['error'].get('message')}")
