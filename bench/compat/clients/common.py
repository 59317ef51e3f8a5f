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
- ``--mode``: ``client-tool`` (phase 1, ``scenario.yaml``: the client declares and runs
  ``get_balance``, then a barge-in) or ``server-tool`` (phase 2, ``scenario_hold.yaml``: the
  bridge runs the retail-banking pack's tools in hold gate mode; the client declares only its own
  ``get_branch_hours``, triggers the greeting, and must never see a server tool's function call).
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

# --mode server-tool (phase 2): the tools the bridge runs itself (policies/retail-banking, over the
# DEMO bank); the client never declares them and must never hear of them
MODES = ("client-tool", "server-tool")
SERVER_TOOLS = ("verify_identity", "get_balance", "transfer_funds", "block_card")
# the client's own tool in phase 2: declared beside the bridge's, never called by the scenario
CLIENT_TOOL = "get_branch_hours"
CLIENT_TOOL_DESCRIPTION = "Opening hours of one of the bank's branches."
CLIENT_TOOL_OUTPUT = {"branch": "High Street", "hours": "9:00-17:00"}
CLIENT_TOOL_SCHEMA = {
    "type": "function",
    "name": CLIENT_TOOL,
    "description": CLIENT_TOOL_DESCRIPTION,
    "parameters": {"type": "object", "properties": {"branch": {"type": "string"}}, "required": ["branch"]},
}
# the retail-banking pack's recording notice: the scenario's greeting speaks it, word for word
DISCLOSURE = "This call is recorded for quality, training and compliance purposes."
# the end of the scenario's greeting: the answer to the client's own response.create (the bridge
# may speak the recording notice on its own before it)
GREETING_MARKER = "How can I help?"
# the DEMO bank's balance of DEMO-ACC-0001-CUR, as the model speaks it from get_balance's output
BALANCE_MARKER = "1234.56"


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
    p.add_argument("--mode", choices=MODES, default="client-tool",
                   help="client-tool: the client runs its get_balance (scenario.yaml); server-tool: the bridge runs "
                        "the pack's tools, the client declares only its own (scenario_hold.yaml)")
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

    def playback_end(self) -> float:
        """When (``time.monotonic()``) all the assistant audio received so far has played: each delta
        after the one before it, in real time, from when it arrived (a phone's playout)."""
        end = 0.0
        for t, d, e in self.frames:
            if d == "recv" and e.get("type") == "response.output_audio.delta":
                end = max(end, self.t0 + t) + len(e.get("delta") or "") * 3 // 4 / BYTES_PER_MS / 1000.0
        return end

    async def until_played(self, margin_s: float = 0.1) -> None:
        await asyncio.sleep(max(0.0, self.playback_end() - time.monotonic()) + margin_s)

    def open_responses(self, since: int = 0) -> set[str]:
        """Responses created at or after frame ``since`` without their response.done yet."""
        created, done = set(), set()
        for _, d, e in self.frames[since:]:
            if d == "recv" and e.get("type") in ("response.created", "response.done"):
                rid = str((e.get("response") or {}).get("id"))
                (created if e["type"] == "response.created" else done).add(rid)
        return created - done

    async def wait_answered(self, timeout: float, since: int = 0, needle: str | None = None,
                            settle_s: float = 0.3) -> list[str]:
        """The assistant finished answering: a spoken transcript (containing ``needle``) arrived
        after frame ``since``, every response begun since is done, and none began for ``settle_s``
        (the bridge may speak a turn of its own first, e.g. a required disclosure, and then run the
        client's request).  The transcripts spoken since ``since``."""
        def spoken(d: str, e: dict[str, Any]) -> bool:
            return (d == "recv" and e.get("type") == "response.output_audio_transcript.done"
                    and (needle is None or needle in str(e.get("transcript") or "")))
        await self.wait_for(spoken, timeout, since, what=f"a spoken reply{f' with {needle!r}' if needle else ''}")
        deadline = time.monotonic() + timeout
        while True:
            if not self.open_responses(since):
                m = self.mark()
                await asyncio.sleep(settle_s)
                if not any(d == "recv" and e.get("type") == "response.created" for _, d, e in self.frames[m:]):
                    return [str(e.get("transcript")) for _, d, e in self.frames[since:]
                            if d == "recv" and e.get("type") == "response.output_audio_transcript.done"]
            else:
                await asyncio.sleep(0.05)
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for responses "
                                   f"{sorted(self.open_responses(since))} to finish")

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


async def server_tool_call(tap: FrameTap, greet: Callable[[], Any], speak: Callable[[], Any],
                           summary: "Summary", timeout: float) -> None:
    """Phase 2's call, the same for every client: the greeting the client asks for (the bridge may
    speak the pack's recording notice itself first), then two caller turns the bridge answers with
    its own tools.  Each answer is heard to its end before the caller speaks again: no barge-in."""
    for what, act, needle in (("greeting", greet, DISCLOSURE),
                              ("answer after the server tool verify_identity", speak, None),
                              ("answer after the server tool get_balance", speak, None)):
        m = tap.mark()
        await act()
        said = await tap.wait_answered(timeout, m, needle)
        await tap.until_played()
        summary.step(f"{what}: {said}")
        summary.data.setdefault("answers", []).append(said)
    await asyncio.sleep(0.3)


def server_tool_leaks(tap: FrameTap) -> tuple[list[str], list[str]]:
    """What the client received about the bridge's own tools.

    First list, leaks: a ``response.function_call_arguments.*`` event; a ``function_call`` or
    ``function_call_output`` item in any event (``item``, ``response.output``); a server tool in
    ``session.tools``; a server tool's name anywhere else in an event.  Second list: the events
    whose ``session.instructions`` name a server tool (the pack's instructions, which the bridge
    puts before the client's, come back in ``session.updated``).
    """
    leaks: list[str] = []
    in_instructions: list[str] = []
    for i, (t, d, e) in enumerate(tap.frames):
        if d != "recv":
            continue
        kind = str(e.get("type"))
        where = f"frame {i} (t={t:.2f} s) {kind}"
        if kind.startswith("response.function_call_arguments"):
            leaks.append(f"{where}: name={e.get('name')} call_id={e.get('call_id')}")
        items = [e["item"]] if isinstance(e.get("item"), dict) else []
        response = e.get("response") if isinstance(e.get("response"), dict) else {}
        items += [o for o in response.get("output") or [] if isinstance(o, dict)]
        for item in items:
            if item.get("type") in ("function_call", "function_call_output"):
                leaks.append(f"{where}: {item.get('type')} item {item.get('id')} "
                             f"name={item.get('name')} call_id={item.get('call_id')}")
        session = e.get("session") if isinstance(e.get("session"), dict) else None
        rest = dict(e)
        if session is not None:
            names = [x.get("name") for x in session.get("tools") or [] if isinstance(x, dict)]
            if any(n in SERVER_TOOLS for n in names):
                leaks.append(f"{where}: session.tools {names}")
            if any(n in str(session.get("instructions") or "") for n in SERVER_TOOLS):
                in_instructions.append(where)
            rest["session"] = {k: v for k, v in session.items() if k not in ("tools", "instructions")}
        text = json.dumps(rest)
        named = [n for n in SERVER_TOOLS if n in text]
        if named and not any(x.startswith(where) for x in leaks):
            leaks.append(f"{where}: names {named}: {text[:300]}")
    return leaks, in_instructions


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

    def finish(self, tap: FrameTap, audio_bytes: int, *, extra_failures: list[str] | None = None,
               mode: str = "client-tool") -> int:
        d = self.data
        d["mode"] = mode
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
        # server-tool mode: the pack's instructions come first upstream, the client's after them
        d["instructions_in_session_updated"] = any(
            s.get("instructions") == INSTRUCTIONS
            or (mode == "server-tool" and str(s.get("instructions") or "").endswith("\n\n" + INSTRUCTIONS))
            for s in updated)
        d["session_updated_tools"] = [[str(t.get("name")) for t in s.get("tools") or [] if isinstance(t, dict)]
                                      for s in updated]
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
        if mode == "server-tool":
            fails += self._server_tool_failures(tap)
        else:
            fails += self._client_tool_failures()
        if not d["instructions_in_session_updated"]:
            fails.append("the client's instructions never came back in session.updated")
        d["failures"] = fails
        d["ok"] = not fails
        return 0 if d["ok"] else 1

    def _server_tool_failures(self, tap: FrameTap) -> list[str]:
        d = self.data
        fails: list[str] = []
        d["server_tool_leaks"], d["server_tools_named_in_session_instructions"] = server_tool_leaks(tap)
        if d["server_tool_leaks"]:
            fails.append(f"{len(d['server_tool_leaks'])} event(s) about the bridge's tools reached the client: "
                         + "; ".join(d["server_tool_leaks"][:3]))
        if d["tool_calls"] or d["tool_output_function_call_outputs_sent"]:
            fails.append(f"the client ran a tool: {d['tool_calls']}, outputs sent: "
                         f"{d['tool_output_function_call_outputs_sent']}")
        if not any(DISCLOSURE in (t or "") for t in d["assistant_transcripts"]):
            fails.append("the recording notice never reached the client")
        if not any(GREETING_MARKER in (t or "") for t in d["assistant_transcripts"]):
            fails.append("the greeting the client asked for (its response.create) was never spoken")
        if not any(BALANCE_MARKER in (t or "") for t in d["assistant_transcripts"]):
            fails.append(f"the balance {BALANCE_MARKER} (get_balance's output, run by the bridge) was never spoken to the client")
        if not any(CLIENT_TOOL in names for names in d["session_updated_tools"]):
            fails.append(f"the client's own {CLIENT_TOOL} never came back in session.updated's tools")
        return fails

    def _client_tool_failures(self) -> list[str]:
        d = self.data
        fails: list[str] = []
        if not any(c["name"] == TOOL_NAME for c in d["tool_calls"]):
            fails.append(f"the client's {TOOL_NAME} tool never ran")
        if not any(TOOL_OUTPUT_MARKER in (o or "") for o in d["tool_output_function_call_outputs_sent"]):
            fails.append("no function_call_output with the tool's output was sent")
        if not any(TOOL_OUTPUT_MARKER in (t or "") for t in d["assistant_transcripts"]):
            fails.append("the assistant's reply never used the tool's output (it did not reach the upstream)")
        if not (d["truncates_sent"] or d["cancels_sent"] or d["cancelled_responses"]):
            fails.append("no barge-in: no truncate or cancel sent, no response cancelled")
        return fails

    def emit(self, out: str | None) -> None:
        text = json.dumps(self.data, indent=2, default=str)
        print(text, flush=True)
        if out:
            with open(out, "w", encoding="utf-8") as f:
                f.write(text)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
