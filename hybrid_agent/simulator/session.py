"""One simulated Realtime session: the state behind one WebSocket connection.

Why this module is long: it is the whole simulated service for one connection (session merge, VAD, conversation, responses, truncate, faults), kept as one class like the real service's state.

:class:`SimSession` reads client events, keeps the session configuration, the
input audio buffer (with an energy VAD), the conversation item list and the
scenario cursor, and emits GA server events.  Responses and delayed
transcriptions run as tasks; every emission goes through :meth:`SimSession.emit`
(one lock, so events never interleave mid-send), which also fires the
scenario's faults.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import logging
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed

from hybrid_agent.protocol.audio import SAMPLE_RATE, duration_ms, rms, to_pcm16
from hybrid_agent.protocol.events import (
    EventValidationError,
    error_event,
    new_id,
    unknown_parameters,
    validate_client_event,
    validate_server_event,
)
from hybrid_agent.simulator import synth
from hybrid_agent.simulator.scenario import Fault, Scenario, ToolCall

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

    from hybrid_agent.simulator.server import RealtimeSimulator

log = logging.getLogger("hybrid_agent.simulator")

FRAME_MS = 10
FORMATS = ("audio/pcm", "audio/pcmu", "audio/pcma")
DELTA_TYPES = frozenset(
    {"response.output_audio.delta", "response.output_text.delta", "response.function_call_arguments.delta"}
)
SERVER_VAD_DEFAULTS: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,  # what the GA service reports in session.created (its docs say 500)
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}
SEMANTIC_VAD_DEFAULTS: dict[str, Any] = {
    "type": "semantic_vad",
    "eagerness": "auto",
    "create_response": True,
    "interrupt_response": True,
}
#: semantic_vad is simulated as server VAD with these settings
SEMANTIC_AS_SERVER = {"threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
MIN_COMMIT_MS = 100
#: conversation items one connection keeps; beyond it the oldest are forgotten (as ``truncation: auto``
#: drops them from the model's context), so a long or fuzzing connection stays bounded
MAX_CONVERSATION_ITEMS = 1024
DEFAULT_INSTRUCTIONS = (
    "You are a helpful, witty, and friendly AI. Act like a human, but remember that you aren't a human "
    "and that you can't do human things in the real world."
)


class SimulatorValidationError(AssertionError):
    """The simulator produced a server event that does not validate (a simulator bug)."""


class _Closed(Exception):
    """The connection is gone (closed by a fault or by the peer)."""


def default_session(model: str, limit_s: float = 3600.0) -> dict[str, Any]:
    """The session object the service reports in ``session.created``."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": int(time.time() + limit_s),
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": dict(SERVER_VAD_DEFAULTS),
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
        },
    }


class _ClientError(Exception):
    """A client event is refused; becomes an ``error`` event."""

    def __init__(self, message: str, *, code: str | None = "invalid_value", param: str | None = None):
        super().__init__(message)
        self.code = code
        self.param = param


#: response.create instructions the simulated model repeats word for word (the bridge's fallback utterances)
SAY_EXACTLY = "Say exactly this, word for word, and nothing else: "


def _verbatim(params: dict[str, Any] | None) -> str | None:
    instructions = (params or {}).get("instructions")
    if isinstance(instructions, str) and instructions.startswith(SAY_EXACTLY):
        return instructions[len(SAY_EXACTLY):].strip() or None
    return None


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _fill_format(fmt: dict[str, Any]) -> dict[str, Any]:
    return {"type": "audio/pcm", "rate": 24000} if fmt.get("type", "audio/pcm") == "audio/pcm" else {"type": fmt["type"]}


@dataclass
class _ItemInfo:
    """What the simulator knows about a conversation item beyond its JSON."""

    item: dict[str, Any]
    audio_ms: float = 0.0
    word_starts: list[float] = field(default_factory=list)
    words: list[str] = field(default_factory=list)


@dataclass
class _Response:
    id: str
    index: int
    cancel_event: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str | None = None
    finished: bool = False
    deltas: int = 0
    task: asyncio.Task[None] | None = None


class SimSession:
    """The state and event handlers of one simulated connection."""

    def __init__(self, sim: RealtimeSimulator, ws: ServerConnection, scenario: Scenario, model: str):
        self.sim = sim
        self.connection_index = max(0, sim.connections - 1)  # 0-based: which connection to the simulator this is
        self.ws = ws
        self.sc = scenario
        self.session = default_session(model, scenario.session_limit_s)
        self.conversation_id = new_id("conv")
        self.items: list[dict[str, Any]] = []
        self._billed_items: set[str] = set()  # items an earlier response read (cached input from then on)
        self.info: dict[str, _ItemInfo] = {}
        self.closed = False
        self.count = 0
        self._fired: set[int] = set()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        # input audio
        self.audio_ms = 0.0  # all audio appended since connect
        self.buffer_ms = 0.0  # audio in the input buffer (since last commit/clear)
        self.buffer_start_ms = 0.0
        self._pcm_rest = b""
        self._vad_pos = 0.0
        self._in_speech = False
        self._speech_item: str | None = None
        self._silence_run = 0.0
        # output
        self.response: _Response | None = None
        self.n_responses = 0
        self.audio_out_started = False
        # scenario cursor
        self.turn_idx = -1
        self.answered: set[int] = set()
        self.tools_emitted: set[int] = set()
        self.call_turn: dict[str, int] = {}
        self.outputs: dict[str, str] = {}
        self._last_transcription: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ output

    async def emit(self, event: dict[str, Any], response: _Response | None = None) -> None:
        """Send one server event (validated, logged, then faults checked)."""
        async with self._lock:
            await self._send_locked(event)
            await self._faults_after(event, response)

    async def _send_locked(self, event: dict[str, Any]) -> None:
        if self.closed:
            raise _Closed
        if "event_id" not in event:
            event = {"event_id": self.sim.new_event_id(), **event}
        if self.sim.validate:
            try:
                validate_server_event(event)
            except EventValidationError as exc:
                err = SimulatorValidationError(f"simulator emitted an invalid {event.get('type')!r} event: {exc}")
                self.sim.add_validation_error(err)
                log.error("%s", err)  # never the event itself: it carries what the caller said
                raise err from None
        self.count += 1
        text = json.dumps(event)
        if self.sim.record:
            self.sim.record_event(event, len(text))
        try:
            await self.ws.send(text)
        except ConnectionClosed:
            self.closed = True
            raise _Closed from None

    async def _faults_after(self, event: dict[str, Any], response: _Response | None) -> None:
        for i, fault in enumerate(self.sc.faults):
            if i in self._fired or not self._fault_hit(fault, event, response):
                continue
            self._fired.add(i)
            log.info("simulator fault %s fires after event %d (%s)", fault.kind, self.count, event["type"])
            if fault.kind == "error":
                await self._send_locked(error_event(fault.message, code=fault.code, error_type=fault.error_type))
            elif fault.kind == "stall":
                await asyncio.sleep(fault.ms / 1000)
            else:
                self.closed = True
                if fault.outage_ms:
                    self.sim.refuse_connections(fault.outage_ms / 1000.0)
                if fault.close_code is None:
                    self.ws.transport.abort()
                else:
                    await self.ws.close(fault.close_code, "simulated fault")
                raise _Closed

    def _fault_hit(self, fault: Fault, event: dict[str, Any], response: _Response | None) -> bool:
        if fault.connections is not None and self.connection_index not in fault.connections:
            return False
        if fault.after_events is not None:
            return self.count == fault.after_events
        if response is None or response.index != fault.response:
            return False
        if fault.after_deltas == 0:
            return event["type"] == "response.created"
        return event["type"] in DELTA_TYPES and response.deltas == fault.after_deltas

    async def error(self, message: str, *, code: str | None = "invalid_value", param: str | None = None,
                    event_id: str | None = None) -> None:
        await self.emit(error_event(message, code=code, param=param, event_id=event_id))

    def spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro: Any) -> None:
        try:
            await coro
        except (_Closed, ConnectionClosed):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("simulator task failed")
            self.closed = True
            await self.ws.close(1011, "simulator internal error")

    # ------------------------------------------------------------------- input

    async def run(self) -> None:
        """Serve the connection until it closes."""
        try:
            await self.emit({"type": "session.created", "session": copy.deepcopy(self.session)})
            self.spawn(self._expire(self.sc.session_limit_s))
            async for message in self.ws:
                await self.handle(message)
        except (_Closed, ConnectionClosed):
            pass
        finally:
            self.closed = True
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _expire(self, limit_s: float) -> None:
        """The service's session limit: an ``error`` (``session_expired``), then close 1001 with the same words."""
        await asyncio.sleep(limit_s)
        message = f"Your session hit the maximum duration of {limit_s / 60:g} minutes."
        async with self._lock:
            await self._send_locked(error_event(message, code="session_expired", error_type="invalid_request_error"))
            self.closed = True
            await self.ws.close(1001, message[:120])
        log.info("simulator session expired after %g s", limit_s)

    async def handle(self, message: str | bytes) -> None:
        """Process one client message."""
        if isinstance(message, bytes):
            await self.error("Binary frames are not supported; send JSON text frames.", code="invalid_json")
            return
        try:
            event = json.loads(message)
        except (ValueError, RecursionError):
            await self.error("We could not parse the JSON body of your request.", code="invalid_json")
            return
        if isinstance(event, dict):
            self.sim.client_event_received(event)
        event_id = event.get("event_id") if isinstance(event, dict) and isinstance(event.get("event_id"), str) else None
        try:
            if isinstance(event, dict) and event.get("type") == "session.update":
                self._check_session_update(event.get("session"))
            try:
                model = validate_client_event(event)
            except EventValidationError as exc:
                code = "missing_required_parameter" if "Field required" in str(exc) else "invalid_value"
                raise _ClientError(str(exc), code=code, param=exc.param) from None
            unknown = [p for p in unknown_parameters(model) if p != "event_id"]
            if unknown:  # the real service rejects the whole event
                raise _ClientError(f"Unknown parameter: '{unknown[0]}'.", code="unknown_parameter", param=unknown[0])
            handler = getattr(self, "on_" + event["type"].replace(".", "_"))
            await handler(event)
        except _ClientError as exc:
            await self.error(str(exc), code=exc.code, param=exc.param, event_id=event_id)

    # session -------------------------------------------------------------------

    def _check_session_update(self, s: Any) -> None:
        if not isinstance(s, dict):
            return  # the schema check reports it
        if "type" not in s:
            raise _ClientError("Missing required parameter: 'session.type'.", code="missing_required_parameter",
                               param="session.type")
        if s["type"] != "realtime":
            raise _ClientError(f"Invalid value: {s['type']!r}. This session is a 'realtime' session; "
                               "its type cannot be changed.", param="session.type")
        audio = s.get("audio") if isinstance(s.get("audio"), dict) else {}
        for side in ("input", "output"):
            cfg = audio.get(side) if isinstance(audio.get(side), dict) else {}
            fmt = cfg.get("format")
            if "format" in cfg:
                param = f"session.audio.{side}.format"
                if not isinstance(fmt, dict) or fmt.get("type", "audio/pcm") not in FORMATS:
                    got = fmt.get("type") if isinstance(fmt, dict) else fmt
                    raise _ClientError(f"Invalid value: {got!r}. Supported values are: 'audio/pcm', 'audio/pcmu' "
                                       "and 'audio/pcma'.", param=param + ".type")
                if fmt.get("type", "audio/pcm") == "audio/pcm" and fmt.get("rate", 24000) != 24000:
                    raise _ClientError(f"Invalid value: {fmt.get('rate')!r}. audio/pcm supports only a rate of "
                                       "24000.", param=param + ".rate")
        inp = audio.get("input") if isinstance(audio.get("input"), dict) else {}
        if "turn_detection" in inp and inp["turn_detection"] is not None:
            td = inp["turn_detection"]
            param = "session.audio.input.turn_detection"
            if not isinstance(td, dict) or td.get("type") not in ("server_vad", "semantic_vad"):
                got = td.get("type") if isinstance(td, dict) else td
                raise _ClientError(f"Invalid value: {got!r}. Supported values are: 'server_vad' and "
                                   "'semantic_vad'.", param=param + ".type")
            thr = td.get("threshold")
            if thr is not None and (not isinstance(thr, (int, float)) or not 0.0 <= thr <= 1.0):
                raise _ClientError(f"Invalid value: {thr!r}. threshold must be between 0 and 1.",
                                   param=param + ".threshold")
            for key in ("prefix_padding_ms", "silence_duration_ms"):
                v = td.get(key)
                if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                    raise _ClientError(f"Invalid value: {v!r}. {key} must be a non-negative integer.",
                                       param=f"{param}.{key}")
        out = audio.get("output") if isinstance(audio.get("output"), dict) else {}
        voice = out.get("voice")
        if voice is not None and self.audio_out_started and voice != self.session["audio"]["output"]["voice"]:
            raise _ClientError("Cannot update a conversation's voice if assistant audio is present.",
                               code="cannot_update_voice", param="session.audio.output.voice")
        mods = s.get("output_modalities")
        if mods is not None and (not isinstance(mods, list) or len(mods) != 1 or mods[0] not in ("audio", "text")):
            raise _ClientError(f"Invalid value: {mods!r}. output_modalities must be ['audio'] or ['text'].",
                               param="session.output_modalities")
        if "tracing" in s and self.session["tracing"] is not None and s["tracing"] != self.session["tracing"]:
            raise _ClientError("Tracing configuration cannot be modified once tracing is enabled.",
                               param="session.tracing")
        if "model" in s and s["model"] != self.session["model"]:
            raise _ClientError("The model of a session cannot be changed.", param="session.model")

    async def on_session_update(self, event: dict[str, Any]) -> None:
        update = copy.deepcopy(event["session"])
        cur = self.session
        audio_upd = update.pop("audio", None) or {}
        new = {**copy.deepcopy(cur), **update}  # top-level fields are replaced; audio is merged below
        new["audio"] = copy.deepcopy(cur["audio"])
        for side in ("input", "output"):
            part = dict(audio_upd.get(side) or {})
            if "format" in part:
                new["audio"][side]["format"] = _fill_format(part.pop("format"))
            if side == "input" and "turn_detection" in part:
                td = part.pop("turn_detection")
                old = cur["audio"]["input"]["turn_detection"]
                if td is None:
                    new["audio"]["input"]["turn_detection"] = None
                else:
                    defaults = SERVER_VAD_DEFAULTS if td["type"] == "server_vad" else SEMANTIC_VAD_DEFAULTS
                    base = old if old is not None and old.get("type") == td["type"] else defaults
                    new["audio"]["input"]["turn_detection"] = {**base, **td}
            for key in ("transcription", "noise_reduction"):
                if key in part:
                    new["audio"][side][key] = part.pop(key)
            new["audio"][side] = _deep_merge(new["audio"][side], part)
        if new["audio"]["input"]["format"] != cur["audio"]["input"]["format"]:
            self._pcm_rest = b""
        if new["audio"]["input"]["turn_detection"] is None:
            self._in_speech = False
        self.session = new
        await self.emit({"type": "session.updated", "session": copy.deepcopy(new)})

    # input audio buffer ------------------------------------------------------

    @property
    def in_format(self) -> str:
        return str(self.session["audio"]["input"]["format"]["type"])

    @property
    def out_format(self) -> str:
        return str(self.session["audio"]["output"]["format"]["type"])

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        return self.session["audio"]["input"]["turn_detection"]  # type: ignore[no-any-return]

    async def on_input_audio_buffer_append(self, event: dict[str, Any]) -> None:
        try:
            data = base64.b64decode(event["audio"], validate=True)
        except (binascii.Error, ValueError):
            raise _ClientError("Invalid 'audio'. Expected base64-encoded audio bytes.", param="audio") from None
        fmt = self.in_format
        self.audio_ms += duration_ms(len(data), fmt)
        self.buffer_ms += duration_ms(len(data), fmt)
        if self.turn_detection is not None:
            await self._vad(to_pcm16(data, fmt), fmt)
        else:
            self._vad_pos = self.audio_ms

    async def _vad(self, pcm: bytes, fmt: str) -> None:
        td = self.turn_detection or {}
        if td.get("type") == "semantic_vad":
            td = {**td, **SEMANTIC_AS_SERVER}
        threshold = float(td.get("threshold", 0.5) if td.get("threshold") is not None else 0.5)
        level_min = max(60.0, threshold * 4000.0)
        prefix = float(td.get("prefix_padding_ms") or 0)
        silence_ms = float(td.get("silence_duration_ms") if td.get("silence_duration_ms") is not None else 500)
        frame = SAMPLE_RATE[fmt] * FRAME_MS // 1000 * 2
        data = self._pcm_rest + pcm
        n = len(data) - len(data) % frame
        self._pcm_rest = data[n:]
        for off in range(0, n, frame):
            loud = rms(data[off : off + frame]) >= level_min
            start = self._vad_pos
            self._vad_pos += FRAME_MS
            if not self._in_speech:
                if loud:
                    self._in_speech = True
                    self._silence_run = 0.0
                    self._speech_item = new_id("item")
                    audio_start = max(self.buffer_start_ms, start - prefix)
                    await self.emit({"type": "input_audio_buffer.speech_started",
                                     "audio_start_ms": int(audio_start), "item_id": self._speech_item})
                    if td.get("interrupt_response", True):
                        self._cancel("turn_detected")
            elif loud:
                self._silence_run = 0.0
            else:
                self._silence_run += FRAME_MS
                if self._silence_run >= silence_ms:
                    self._in_speech = False
                    item_id = self._speech_item
                    await self.emit({"type": "input_audio_buffer.speech_stopped",
                                     "audio_end_ms": int(self._vad_pos), "item_id": item_id})
                    await self._commit(item_id)
                    if td.get("create_response", True):
                        await self._start_response(None)

    async def on_input_audio_buffer_commit(self, event: dict[str, Any]) -> None:
        if self.buffer_ms < MIN_COMMIT_MS:
            raise _ClientError(
                f"Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of "
                f"audio, but buffer only has {self.buffer_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty", param=None)
        item_id = self._speech_item if self._in_speech else None
        self._in_speech = False
        await self._commit(item_id)

    async def on_input_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        self.buffer_ms = 0.0
        self.buffer_start_ms = self.audio_ms
        self._in_speech = False
        await self.emit({"type": "input_audio_buffer.cleared"})

    async def _commit(self, item_id: str | None) -> None:
        item_id = item_id or new_id("item")
        prev = self.items[-1]["id"] if self.items else None
        audio_ms = self.buffer_ms
        self.buffer_ms = 0.0
        self.buffer_start_ms = self.audio_ms
        self.turn_idx += 1
        turn_idx = self.turn_idx
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}]}
        self._add_item(item, None, audio_ms=audio_ms)
        await self.emit({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": prev})
        await self.emit({"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": prev})
        await self.emit({"type": "conversation.item.done", "item": copy.deepcopy(item), "previous_item_id": prev})
        if self.session["audio"]["input"].get("transcription") is not None:
            self._last_transcription = self.spawn(
                self._transcribe(item_id, turn_idx, audio_ms, self._last_transcription))

    async def _transcribe(self, item_id: str, turn_idx: int, audio_ms: float,
                          before: asyncio.Task[None] | None) -> None:
        """Deliver the transcript after the delay, never before the previous item's."""
        turn = self.sc.turns[turn_idx] if turn_idx < len(self.sc.turns) else None
        text = turn.user if turn else self.sc.default_transcript
        delay = turn.transcription_delay_ms if turn and turn.transcription_delay_ms is not None else None
        await asyncio.sleep((self.sc.transcription_delay_ms if delay is None else delay) / 1000)
        if before is not None:
            await asyncio.gather(before, return_exceptions=True)
        if item_id not in self.info:
            return  # deleted meanwhile
        if turn is not None and turn.transcription_fails:
            await self.emit({"type": "conversation.item.input_audio_transcription.failed", "item_id": item_id,
                             "content_index": 0,
                             "error": {"type": "transcription_error", "code": "audio_unintelligible",
                                       "message": "Audio file might be corrupted or unsupported", "param": None}})
            return
        words = text.split()
        step = max(1, math.ceil(len(words) / 3))
        for i in range(0, len(words), step):
            chunk = " ".join(words[i : i + step])
            await self.emit({"type": "conversation.item.input_audio_transcription.delta", "item_id": item_id,
                             "content_index": 0, "delta": chunk if i == 0 else " " + chunk})
        model = (self.session["audio"]["input"]["transcription"] or {}).get("model")
        if model == "whisper-1":
            usage: dict[str, Any] = {"type": "duration", "seconds": round(audio_ms / 1000, 3)}
        else:
            audio_tokens = max(1, int(audio_ms / 100))
            text_tokens = _tokens(text)
            usage = {"type": "tokens", "input_tokens": audio_tokens, "output_tokens": text_tokens,
                     "total_tokens": audio_tokens + text_tokens,
                     "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0}}
        info = self.info.get(item_id)
        if info is not None:
            info.item["content"][0]["transcript"] = text
        await self.emit({"type": "conversation.item.input_audio_transcription.completed", "item_id": item_id,
                         "content_index": 0, "transcript": text, "usage": usage})

    # conversation ------------------------------------------------------------

    def _add_item(self, item: dict[str, Any], after: str | None, *, audio_ms: float = 0.0) -> str | None:
        """Insert ``item`` (at the end, at the root for "root", or after ``after``); returns previous id."""
        if after is None:
            index = len(self.items)
        elif after == "root":
            index = 0
        else:
            index = next(i for i, it in enumerate(self.items) if it["id"] == after) + 1
        self.items.insert(index, item)
        self.info[item["id"]] = _ItemInfo(item, audio_ms=audio_ms)
        prev = self.items[index - 1]["id"] if index > 0 else None
        while len(self.items) > MAX_CONVERSATION_ITEMS:
            self._forget(self.items.pop(1 if self.items[0] is item else 0))  # the oldest, never the new one
        return prev

    def _forget(self, item: dict[str, Any]) -> None:
        """Drop what the session keeps about a removed item."""
        self.info.pop(item["id"], None)
        call_id = item.get("call_id")
        if item.get("type") == "function_call" and call_id is not None:
            self.call_turn.pop(call_id, None)
            self.outputs.pop(call_id, None)
        elif item.get("type") == "function_call_output" and call_id is not None:
            self.outputs.pop(call_id, None)

    async def on_conversation_item_create(self, event: dict[str, Any]) -> None:
        item = copy.deepcopy(event["item"])
        after = event.get("previous_item_id")
        if after is not None and after != "root" and after not in self.info:
            raise _ClientError(f"Previous item with id '{after}' not found in the conversation.",
                               param="previous_item_id")
        item.setdefault("id", new_id("item"))
        if item["id"] in self.info:
            raise _ClientError(f"Item with id '{item['id']}' already exists.", param="item.id")
        kind = item["type"]
        if kind not in ("message", "function_call", "function_call_output"):
            raise _ClientError(f"Invalid value: {kind!r}. The simulator supports message, function_call and "
                               "function_call_output items.", param="item.type")
        if kind == "function_call_output":
            known = {it.get("call_id") for it in self.items if it["type"] == "function_call"}
            if item["call_id"] not in known:
                raise _ClientError(f"Tool call ID '{item['call_id']}' not found in conversation.",
                                   param="item.call_id")
        item["object"] = "realtime.item"
        item["status"] = "completed"
        audio_ms = 0.0
        if kind == "message":
            for part in item.get("content", []):
                if part.get("audio") is not None:
                    try:
                        audio_ms += duration_ms(len(base64.b64decode(part["audio"], validate=True)), self.in_format)
                    except (binascii.Error, ValueError):
                        raise _ClientError("Invalid 'audio' in message content.", param="item.content.audio") from None
                    part.pop("audio")
                    part.setdefault("transcript", None)
        prev = self._add_item(item, after, audio_ms=audio_ms)
        # the scenario cursor follows replayed history
        if kind == "message" and item.get("role") == "user":
            self.turn_idx += 1
        elif kind == "message" and item.get("role") == "assistant":
            self._mark(self.answered, self.turn_idx)
        elif kind == "function_call":
            self._mark(self.tools_emitted, self.turn_idx)
            if item.get("call_id"):
                self.call_turn[item["call_id"]] = self.turn_idx
        elif kind == "function_call_output":
            self.outputs[item["call_id"]] = item["output"]
        await self.emit({"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": prev})
        await self.emit({"type": "conversation.item.done", "item": copy.deepcopy(item), "previous_item_id": prev})

    def _item(self, item_id: str, param: str = "item_id") -> _ItemInfo:
        info = self.info.get(item_id)
        if info is None:
            raise _ClientError(f"Conversation item with id '{item_id}' not found.", code="item_not_found",
                               param=param)
        return info

    async def on_conversation_item_delete(self, event: dict[str, Any]) -> None:
        info = self._item(event["item_id"])
        self.items.remove(info.item)
        self._forget(info.item)
        await self.emit({"type": "conversation.item.deleted", "item_id": event["item_id"]})

    async def on_conversation_item_retrieve(self, event: dict[str, Any]) -> None:
        info = self._item(event["item_id"])
        await self.emit({"type": "conversation.item.retrieved", "item": copy.deepcopy(info.item)})

    async def on_conversation_item_truncate(self, event: dict[str, Any]) -> None:
        info = self.info.get(event["item_id"])
        if info is None:
            raise _ClientError(f"Invalid item_id: no item with id '{event['item_id']}' to truncate.",
                               code="item_truncate_invalid_item_id", param="item_id")
        item = info.item
        # like the service: only model audio can be truncated, also while its response still runs
        if item["type"] != "message" or item.get("role") != "assistant" or event["content_index"] != 0 \
                or info.audio_ms <= 0:
            raise _ClientError("Only model output audio messages can be truncated.",
                               code="unsupported_content_type", param="item_id")
        end = event["audio_end_ms"]
        if end < 0 or end > info.audio_ms:
            raise _ClientError(f"Audio content of {info.audio_ms:.0f}ms is already shorter than {end}ms",
                               param="audio_end_ms")
        kept = [w for w, start in zip(info.words, info.word_starts) if start < end]
        info.words, info.word_starts = kept, info.word_starts[: len(kept)]
        info.audio_ms = float(end)
        if item["content"]:
            # "Truncating audio will delete the server-side text transcript" (API reference)
            item["content"][0]["transcript"] = ""
        await self.emit({"type": "conversation.item.truncated", "item_id": item["id"], "content_index": 0,
                         "audio_end_ms": end})

    async def on_output_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        raise _ClientError("output_audio_buffer.clear is only supported for WebRTC sessions.", param="type")

    # responses ---------------------------------------------------------------

    async def on_response_create(self, event: dict[str, Any]) -> None:
        if self.response is not None and not self.response.finished:
            raise _ClientError(
                f"Conversation already has an active response in progress: {self.response.id}. Wait until the "
                "response is finished before creating a new one.", code="conversation_already_has_active_response")
        await self._start_response(event.get("response") or {})

    async def on_response_cancel(self, event: dict[str, Any]) -> None:
        rid = event.get("response_id")
        active = self.response is not None and not self.response.finished and self.response.cancel_reason is None
        if not active or (rid is not None and self.response is not None and rid != self.response.id):
            raise _ClientError("Cancellation failed: no active response found", code="response_cancel_not_active")
        self._cancel("client_cancelled")

    def _cancel(self, reason: str) -> bool:
        r = self.response
        if r is None or r.finished or r.cancel_reason is not None:
            return False
        r.cancel_reason = reason
        r.cancel_event.set()
        return True

    def _mark(self, turns: set[int], turn: int) -> None:
        """Remember ``turn`` in ``answered``/``tools_emitted``: only scenario turns matter to :meth:`_plan`."""
        if turn < len(self.sc.turns):
            turns.add(turn)

    def _plan(self) -> tuple[str, Any, int]:
        """What the next response says: ("tools", calls, turn) or ("message", text, turn)."""
        t = self.turn_idx
        if t < 0:
            if self.sc.greeting and -1 not in self.answered:
                return "message", self.sc.greeting, t
            return "message", self.sc.default_reply, t
        if t < len(self.sc.turns):
            turn = self.sc.turns[t]
            if turn.tool_calls and t not in self.tools_emitted:
                return "tools", turn.tool_calls, t
            if t not in self.answered:
                return "message", self._format_reply(turn.assistant or self.sc.default_reply, t), t
        return "message", self.sc.default_reply, t

    def _format_reply(self, text: str, turn: int) -> str:
        outs = [_parse_output(o) for cid, o in self.outputs.items() if self.call_turn.get(cid) == turn]
        if "{" not in text:
            return text
        try:
            return text.format_map({"output": outs[0] if outs else "", "outputs": outs})
        except (KeyError, IndexError, ValueError, AttributeError, TypeError):
            return text

    async def _start_response(self, params: dict[str, Any] | None) -> None:
        prev = self.response
        if prev is not None and not prev.finished:
            if prev.cancel_reason is None:
                return  # VAD turn while a response runs without interrupt_response: no new response
            if prev.task is not None:
                await asyncio.gather(prev.task, return_exceptions=True)
        verbatim = _verbatim(params)
        if verbatim is not None:  # the model follows a "say exactly" instruction, as the real one does
            kind, what, turn = "message", verbatim, self.turn_idx
        else:
            kind, what, turn = self._plan()
        if kind == "tools":
            self._mark(self.tools_emitted, turn)
        mods = (params or {}).get("output_modalities") or self.session["output_modalities"]
        resp = _Response(id=new_id("resp"), index=self.n_responses)
        self.n_responses += 1
        self.response = resp
        resp.task = self.spawn(self._run_response(resp, kind, what, turn, list(mods), verbatim is None))

    async def _run_response(self, resp: _Response, kind: str, what: Any, turn: int, mods: list[str],
                            answers_turn: bool = True) -> None:
        """``answers_turn``: False for a "say exactly" response (the bridge's own words, not the model's
        answer to the turn: the scenario's answer stays due)."""
        fmt = self.session["audio"]["output"]["format"]
        base = {"object": "realtime.response", "id": resp.id, "conversation_id": self.conversation_id,
                "output_modalities": mods, "max_output_tokens": self.session.get("max_output_tokens", "inf"),
                "metadata": None, "audio": {"output": {"format": copy.deepcopy(fmt),
                                                       "voice": self.session["audio"]["output"]["voice"]}}}
        output: list[dict[str, Any]] = []
        try:
            await self.emit({"type": "response.created", "response": {**base, "status": "in_progress",
                                                                      "status_details": None, "output": [],
                                                                      "usage": None}}, resp)
            await self.emit({"type": "rate_limits.updated", "rate_limits": [
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                {"name": "tokens", "limit": 40000, "remaining": 38000, "reset_seconds": 3.0}]})
            if kind == "tools":
                await self._tool_calls(resp, what, turn, output)
            else:
                await self._message(resp, what, mods, output)
        finally:
            resp.finished = True
            if kind == "message" and answers_turn:
                self._mark(self.answered, turn)
        if resp.cancel_reason is not None:
            status = "cancelled"
            details: dict[str, Any] | None = {"type": "cancelled", "reason": resp.cancel_reason}
        else:
            status, details = "completed", None
        await self.emit({"type": "response.done", "response": {**base, "status": status, "status_details": details,
                                                               "output": output, "usage": self._usage(output)}})

    def _usage(self, output: list[dict[str, Any]]) -> dict[str, Any]:
        """Token counts as the service bills them: the whole context is input to every response (the
        caller's audio at 10 tokens a second), the answer's audio is output at 20 a second, and the
        part of the context an earlier response already read counts as cached input."""
        instructions = _tokens(self.session.get("instructions") or "")
        text = {it["id"]: _tokens(_item_text(it)) for it in self.items}
        audio = {it["id"]: int(self.info[it["id"]].audio_ms / 100) for it in self.items
                 if it.get("role") == "user" and it["id"] in self.info}
        seen = self._billed_items
        in_text, in_audio = instructions + sum(text.values()), sum(audio.values())
        cached_text = sum(n for i, n in text.items() if i in seen) + (instructions if seen else 0)
        cached_audio = sum(n for i, n in audio.items() if i in seen)
        seen.update(text)
        out_text = sum(_tokens(_item_text(it)) for it in output)
        out_audio = sum(int(self.info[it["id"]].audio_ms / 50) for it in output if it["id"] in self.info)
        return {"total_tokens": in_text + in_audio + out_text + out_audio, "input_tokens": in_text + in_audio,
                "output_tokens": out_text + out_audio,
                "input_token_details": {"text_tokens": in_text, "audio_tokens": in_audio, "image_tokens": 0,
                                        "cached_tokens": cached_text + cached_audio,
                                        "cached_tokens_details": {"text_tokens": cached_text, "audio_tokens": cached_audio,
                                                                  "image_tokens": 0}},
                "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio}}

    async def _tool_calls(self, resp: _Response, calls: list[ToolCall], turn: int,
                          output: list[dict[str, Any]]) -> None:
        for index, call in enumerate(calls):
            if resp.cancel_reason is not None:
                break
            call_id = call.call_id or "call_" + secrets.token_hex(8)
            args = json.dumps(call.arguments)
            item = {"id": new_id("item"), "object": "realtime.item", "type": "function_call",
                    "status": "in_progress", "name": call.name, "call_id": call_id, "arguments": ""}
            prev = self._add_item(item, None)
            self.call_turn[call_id] = turn
            ids = {"response_id": resp.id, "item_id": item["id"], "output_index": index}
            await self.emit({"type": "response.output_item.added", "response_id": resp.id, "output_index": index,
                             "item": copy.deepcopy(item)}, resp)
            await self.emit({"type": "conversation.item.added", "item": copy.deepcopy(item),
                             "previous_item_id": prev}, resp)
            half = max(1, len(args) // 2)
            for chunk in (args[:half], args[half:]):
                if chunk:
                    resp.deltas += 1
                    await self.emit({"type": "response.function_call_arguments.delta", **ids, "call_id": call_id,
                                     "delta": chunk}, resp)
            await self.emit({"type": "response.function_call_arguments.done", **ids, "call_id": call_id,
                             "name": call.name, "arguments": args}, resp)
            item["status"] = "completed"
            item["arguments"] = args
            await self.emit({"type": "response.output_item.done", "response_id": resp.id, "output_index": index,
                             "item": copy.deepcopy(item)}, resp)
            await self.emit({"type": "conversation.item.done", "item": copy.deepcopy(item),
                             "previous_item_id": prev}, resp)
            output.append(copy.deepcopy(item))

    async def _message(self, resp: _Response, text: str, mods: list[str], output: list[dict[str, Any]]) -> None:
        audio = "audio" in mods
        item = {"id": new_id("item"), "object": "realtime.item", "type": "message", "role": "assistant",
                "status": "in_progress", "content": []}
        prev = self._add_item(item, None)
        info = self.info[item["id"]]
        ids = {"response_id": resp.id, "item_id": item["id"], "output_index": 0, "content_index": 0}
        await self.emit({"type": "response.output_item.added", "response_id": resp.id, "output_index": 0,
                         "item": copy.deepcopy(item)}, resp)
        await self.emit({"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": prev},
                        resp)
        empty_part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        await self.emit({"type": "response.content_part.added", **ids, "part": empty_part}, resp)
        words = text.split()
        settings = self.sc.audio
        ms_per_word = 60000.0 / settings.words_per_minute
        total_ms = len(words) * ms_per_word
        said: list[str] = []
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        sent_ms = 0.0
        out_fmt = self.out_format
        if not audio:
            for i, word in enumerate(words):
                if resp.cancel_reason is not None:
                    break
                said.append(word)
                resp.deltas += 1
                await self.emit({"type": "response.output_text.delta", **ids,
                                 "delta": word if i == 0 else " " + word}, resp)
        lead_ms = settings.transcript_lead_words * ms_per_word
        while audio and sent_ms < total_ms - 1e-6 and resp.cancel_reason is None:
            chunk_ms = min(settings.chunk_ms, total_ms - sent_ms)
            # the service's transcript runs ahead of its audio, in bursts: no alignment to rely on
            while len(said) < len(words) and len(said) * ms_per_word < sent_ms + chunk_ms + lead_ms:
                i = len(said)
                said.append(words[i])
                info.words.append(words[i])
                info.word_starts.append(i * ms_per_word)
                await self.emit({"type": "response.output_audio_transcript.delta", **ids,
                                 "delta": words[i] if i == 0 else " " + words[i]}, resp)
                if resp.cancel_reason is not None:
                    break
            if resp.cancel_reason is not None:
                break
            chunk = self.sim.output_audio(synth.speech(chunk_ms, out_fmt))
            sent_ms += chunk_ms
            info.audio_ms = sent_ms
            resp.deltas += 1
            self.audio_out_started = True
            await self.emit({"type": "response.output_audio.delta", **ids,
                             "delta": base64.b64encode(chunk).decode("ascii")}, resp)
            if settings.speed > 0:
                wait = t0 + sent_ms / settings.speed / 1000 - loop.time()
                if wait > 0:
                    try:
                        await asyncio.wait_for(resp.cancel_event.wait(), wait)
                    except TimeoutError:
                        pass
        transcript = " ".join(said)
        if audio:
            await self.emit({"type": "response.output_audio.done", **ids}, resp)
            await self.emit({"type": "response.output_audio_transcript.done", **ids, "transcript": transcript}, resp)
            part = {"type": "audio", "transcript": transcript}
            item["content"] = [{"type": "output_audio", "transcript": transcript}]
        else:
            await self.emit({"type": "response.output_text.done", **ids, "text": transcript}, resp)
            part = {"type": "text", "text": transcript}
            item["content"] = [{"type": "output_text", "text": transcript}]
        await self.emit({"type": "response.content_part.done", **ids, "part": part}, resp)
        item["status"] = "incomplete" if resp.cancel_reason is not None else "completed"
        await self.emit({"type": "response.output_item.done", "response_id": resp.id, "output_index": 0,
                         "item": copy.deepcopy(item)}, resp)
        await self.emit({"type": "conversation.item.done", "item": copy.deepcopy(item), "previous_item_id": prev},
                        resp)
        output.append(copy.deepcopy(item))


def _tokens(text: str) -> int:
    return math.ceil(len(text.split()) * 1.3) if text else 0


def _item_text(item: dict[str, Any]) -> str:
    if item.get("type") == "function_call":
        return str(item.get("arguments") or "")
    if item.get("type") == "function_call_output":
        return str(item.get("output") or "")
    parts = []
    for c in item.get("content") or []:
        parts.append(str(c.get("text") or c.get("transcript") or ""))
    return " ".join(parts)


def _parse_output(output: str) -> Any:
    try:
        return json.loads(output)
    except (ValueError, RecursionError):
        return output
