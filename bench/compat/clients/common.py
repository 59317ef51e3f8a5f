"""Shared by the compatibility clients; stdlib only (each client runs in its own venv).

- :func:`speech` / :func:`silence`: PCM16 mono 24 kHz audio.  The "speech" is a 400 Hz
  tone at about -12 dBFS, the same signal ``hybrid_agent.simulator.synth`` makes, far
  above the simulator's energy-VAD threshold.
- :class:`FrameTap`: records every JSON frame the client sends and receives on its
  ``websockets`` asyncio connection, by wrapping ``ClientConnection.send``/``recv``
  at class level.  It only observes: frames pass through unchanged.  The frameworks
  hide the wire, and the suite has to assert on it (was a truncate sent, did an
  ``error`` event arrive, what did ``session.update`` carry).
- :class:`Summary`: the JSON summary every client prints and writes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import sys
import time
from array import array
from collections import Counter
from typing import Any, Callable

RATE = 24000
BYTES_PER_MS = RATE * 2 // 1000  # PCM16 mono
TONE_HZ = 400
AMPLITUDE = 8192

INSTRUCTIONS = "You are the Example Bank compatibility-suite assistant. Answer briefly."
TOOL_NAME = "get_balance"
TOOL_OUTPUT = {"balance": "1234.56", "currency": "USD"}
# what the scenario's reply after the tool says when the tool's output reached the upstream
TOOL_OUTPUT_MARKER = "1234.56"


def speech(ms: float, rate: int = RATE) -> bytes:
    n = int(round(ms * rate / 1000))
    period = rate // TONE_HZ
    return array("h", (int(AMPLITUDE * math.sin(2 * math.pi * (i % period) / period)) for i in range(n))).tobytes()


def silence(ms: float, rate: int = RATE) -> bytes:
    return b"\x00\x00" * int(round(ms * rate / 1000))


def utterance(speech_ms: float = 900.0, trailing_silence_ms: float = 1000.0, rate: int = RATE) -> bytes:
    """One caller utterance: speech, then enough silence for server_vad (200 ms) and semantic_vad (500 ms)."""
    return speech(speech_ms, rate) + silence(trailing_silence_ms, rate)


def chunks(audio: bytes, chunk_ms: float = 100.0, rate: int = RATE) -> list[bytes]:
    step = int(chunk_ms * rate * 2 // 1000)
    return [audio[off : off + step] for off in range(0, len(audio), step)]


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--url", required=True, help="bridge WebSocket base URL, e.g. ws://127.0.0.1:8080/v1")
    p.add_argument("--token", required=True, help="bridge token (the client's API key)")
    p.add_argument("--out", help="write the JSON summary here too")
    p.add_argument("--frames", help="write every frame sent and received here (JSON lines, audio elided)")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds any one step may take")
    return p.parse_args()


def _elide(event: Any) -> Any:
    if isinstance(event, dict):
        out = {}
        for k, v in event.items():
            if k in ("audio", "delta") and isinstance(v, str) and len(v) > 64:
                out[k] = f"<{len(v)} base64 chars>"
            else:
                out[k] = _elide(v)
        return out
    if isinstance(event, list):
        return [_elide(v) for v in event]
    return event


class RealtimeErrorSeen(RuntimeError):
    """An ``error`` event arrived and the call went no further."""


class FrameTap:
    """Every JSON frame on the client's websockets connection(s), both ways, in order."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, str, dict[str, Any]]] = []  # (t, "send"|"recv", event)
        self._changed = asyncio.Event()
        self.t0 = time.monotonic()

    def install(self) -> FrameTap:
        from websockets.asyncio.client import ClientConnection

        tap = self
        orig_send, orig_recv = ClientConnection.send, ClientConnection.recv

        async def send(conn: Any, message: Any, *args: Any, **kwargs: Any) -> Any:
            tap._record("send", message)
            return await orig_send(conn, message, *args, **kwargs)

        async def recv(conn: Any, *args: Any, **kwargs: Any) -> Any:
            message = await orig_recv(conn, *args, **kwargs)
            tap._record("recv", message)
            return message

        ClientConnection.send = send  # type: ignore[method-assign]
        ClientConnection.recv = recv  # type: ignore[method-assign]
        return self

    def _record(self, direction: str, message: Any) -> None:
        try:
            event = json.loads(message)
        except (TypeError, ValueError):
            event = {"type": f"<non-JSON {type(message).__name__} frame>"}
        if not isinstance(event, dict):
            event = {"type": "<non-object JSON>", "value": event}
        self.frames.append((time.monotonic() - self.t0, direction, event))
        self._changed.set()

    # ------------------------------------------------------------ queries
    def sent(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [e for _, d, e in self.frames if d == "send" and (kind is None or e.get("type") == kind)]

    def received(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [e for _, d, e in self.frames if d == "recv" and (kind is None or e.get("type") == kind)]

    def mark(self) -> int:
        return len(self.frames)

    async def wait_for(self, pred: Callable[[str, dict[str, Any]], bool], timeout: float, since: int = 0,
                       what: str = "", stuck_after_error_s: float = 2.0) -> dict[str, Any]:
        """The first frame at index >= ``since`` with ``pred(direction, event)``.

        TimeoutError after ``timeout``; RealtimeErrorSeen sooner when an ``error`` event arrived
        after ``since`` and nothing awaited followed it for ``stuck_after_error_s`` (a client the
        error left stuck: report it now rather than at the timeout).
        """
        deadline = time.monotonic() + timeout
        i = since
        error: tuple[float, dict[str, Any]] | None = None
        while True:
            while i < len(self.frames):
                t, d, e = self.frames[i]
                i += 1
                if pred(d, e):
                    return e
                if d == "recv" and e.get("type") == "error" and error is None:
                    error = (self.t0 + t, e)
            now = time.monotonic()
            if error is not None and now - error[0] > stuck_after_error_s:
                raise RealtimeErrorSeen(f"waiting for {what or 'a frame'}: stuck after the error event "
                                        f"{json.dumps(error[1].get('error'))}")
            left = deadline - now
            if left <= 0:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what or 'a frame'}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.25))
            except asyncio.TimeoutError:
                pass

    async def wait_recv(self, kind: str, timeout: float, since: int = 0,
                        where: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        return await self.wait_for(lambda d, e: d == "recv" and e.get("type") == kind and (where is None or where(e)),
                                   timeout, since, what=f"server event {kind}")

    async def wait_spoken_reply(self, timeout: float, since: int = 0) -> dict[str, Any]:
        """The next completed response.done with an assistant message (not a function-call round, not cancelled)."""
        def spoken(e: dict[str, Any]) -> bool:
            resp = e.get("response") or {}
            return resp.get("status") == "completed" and any(o.get("type") == "message" for o in resp.get("output") or [])
        return await self.wait_recv("response.done", timeout, since, where=spoken)

    def reply_audio_ms(self, response_done: dict[str, Any]) -> float:
        """How long the audio of a response plays (from the deltas received for its items)."""
        items = {o.get("id") for o in (response_done.get("response") or {}).get("output") or []}
        n = sum(len(e.get("delta") or "") * 3 // 4 for e in self.received("response.output_audio.delta")
                if e.get("item_id") in items)
        return n / BYTES_PER_MS

    def dump(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for t, d, e in self.frames:
                f.write(json.dumps({"t": round(t, 3), "dir": d, "event": _elide(e)}) + "\n")


async def barge_in(tap: FrameTap, speak: Callable[[], Any], summary: "Summary", timeout: float) -> None:
    """The suite's barge-in, the same for every client: speak into the long answer after a second
    of its audio, then wait for the answer to the interruption."""
    m = tap.mark()
    await speak()
    await tap.wait_recv("response.output_audio.delta", timeout, m)
    await asyncio.sleep(1.0)  # the caller hears a second of the long answer, then interrupts
    summary.step("barge-in")
    m2 = tap.mark()
    await speak()
    await tap.wait_recv("input_audio_buffer.speech_started", timeout, m2)
    await tap.wait_spoken_reply(timeout, m2)
    summary.step("answer to the interruption")
    await asyncio.sleep(0.3)


class Summary:
    """What a client saw; printed as JSON and checked by bench/compat/run.py."""

    def __init__(self, client: str, version: str) -> None:
        self.data: dict[str, Any] = {"client": client, "version": version, "ok": False, "failures": [],
                                     "steps": [], "tool_calls": [], "audio_bytes": 0, "exception": None}

    def step(self, name: str) -> None:
        self.data["steps"].append(name)
        print(f"[{self.data['client']}] {name}", file=sys.stderr, flush=True)

    def tool_call(self, name: str, arguments: Any, output: Any) -> None:
        self.data["tool_calls"].append({"name": name, "arguments": arguments, "output": output})

    def finish(self, tap: FrameTap, audio_bytes: int, *, extra_failures: list[str] | None = None) -> int:
        d = self.data
        d["audio_bytes"] = audio_bytes
        d["server_events"] = dict(Counter(e.get("type") for e in tap.received()))
        d["client_events"] = dict(Counter(e.get("type") for e in tap.sent()))
        d["errors"] = [e.get("error") for e in tap.received("error")]
        d["truncates_sent"] = [_elide(e) for e in tap.sent("conversation.item.truncate")]
        d["cancels_sent"] = len(tap.sent("response.cancel"))
        d["cancelled_responses"] = sum(1 for e in tap.received("response.done")
                                       if (e.get("response") or {}).get("status") == "cancelled")
        d["session_updates_sent"] = [_elide(e.get("session")) for e in tap.sent("session.update")]
        updated = [e.get("session") or {} for e in tap.received("session.updated")]
        d["instructions_in_session_updated"] = any(s.get("instructions") == INSTRUCTIONS for s in updated)
        d["tool_output_function_call_outputs_sent"] = [
            e["item"].get("output") for e in tap.sent("conversation.item.create")
            if (e.get("item") or {}).get("type") == "function_call_output"]
        d["assistant_transcripts"] = [e.get("transcript") for e in tap.received("response.output_audio_transcript.done")]
        d["user_transcripts"] = [e.get("transcript")
                                 for e in tap.received("conversation.item.input_audio_transcription.completed")]
        fails = list(extra_failures or [])
        if audio_bytes <= 0:
            fails.append("no assistant audio reached the client")
        if d["errors"]:
            fails.append(f"{len(d['errors'])} Realtime error event(s) reached the client: "
                         + "; ".join(str((e or {}).get("message")) for e in d["errors"]))
        if not any(c["name"] == TOOL_NAME for c in d["tool_calls"]):
            fails.append(f"the client's {TOOL_NAME} tool never ran")
        if not any(TOOL_OUTPUT_MARKER in (o or "") for o in d["tool_output_function_call_outputs_sent"]):
            fails.append("no function_call_output with the tool's output was sent")
        if not any(TOOL_OUTPUT_MARKER in (t or "") for t in d["assistant_transcripts"]):
            fails.append("the assistant's reply never used the tool's output (it did not reach the upstream)")
        if not (d["truncates_sent"] or d["cancels_sent"] or d["cancelled_responses"]):
            fails.append("no barge-in: no truncate or cancel sent, no response cancelled")
        if not d["instructions_in_session_updated"]:
            fails.append("the client's instructions never came back in session.updated")
        d["failures"] = fails
        d["ok"] = not fails
        return 0 if d["ok"] else 1

    def emit(self, out: str | None) -> None:
        text = json.dumps(self.data, indent=2, default=str)
        print(text, flush=True)
        if out:
            with open(out, "w", encoding="utf-8") as f:
                f.write(text)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
