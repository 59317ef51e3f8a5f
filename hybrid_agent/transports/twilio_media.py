"""Twilio Media Streams <-> Realtime events: a sans-I/O translator (``TwilioMediaStream``).

Twilio sends ``connected``, ``start``, ``media`` (base64 mu-law, 8 kHz, mono), ``dtmf``, ``mark``
and ``stop``; the bridge sends ``media``, ``mark`` and ``clear``.  The call session runs with
``audio/pcmu`` both ways, so caller audio is relayed as it came (``input_audio_buffer.append``
with Twilio's payload: no transcoding, no resampling) and the model's audio goes to Twilio as it
came, cut into ``CHUNK_MS`` pieces each followed by a ``mark``.

Here the bridge owns playback: Twilio plays what it was sent and echoes each mark once the audio
before it has played, so the marks say exactly how much of each answer the caller heard (8
bytes of mu-law = 1 ms).  When the caller starts speaking (``input_audio_buffer.speech_started``)
while an answer is still queued at Twilio, the translator barges in: ``clear`` to Twilio, and to
the session a ``response.cancel`` (if the answer is still being generated) and a
``conversation.item.truncate`` at exactly the marked position.  Marks of cleared audio, which
Twilio echoes after a ``clear``, do not count as heard.  What it tracks is bounded per call.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

#: audio per outgoing media message (each followed by a mark): the played position's resolution
CHUNK_MS = 100
BYTES_PER_MS = 8  # mu-law 8 kHz mono
#: marks in flight remembered (the newest); Twilio echoes them in order
MAX_MARKS = 4096
#: items whose positions are remembered (the newest)
MAX_ITEMS = 64
#: the largest caller media payload accepted (Twilio sends 20 ms = 160 bytes)
MAX_MEDIA_B64 = 64 * 1024

PCMU_SESSION = {
    "type": "session.update",
    "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}},
                                              "output": {"format": {"type": "audio/pcmu"}}}},
}


@dataclass(frozen=True, slots=True)
class StreamStart:
    """Twilio's ``start`` message: which stream, which call, what the TwiML passed."""

    stream_sid: str
    call_sid: str
    account_sid: str
    custom: dict[str, str]
    media_format: dict[str, Any]


class StreamError(ValueError):
    """A Twilio message the stream cannot use; the message is safe to log (never frame contents)."""


def parse_start(data: str | bytes) -> StreamStart | None:
    """The ``start`` message, ``None`` for any other (``connected``); raises :class:`StreamError`."""
    message = _load(data)
    if message.get("event") != "start":
        if message.get("event") == "connected":
            return None
        raise StreamError(f"expected 'connected' or 'start', got {str(message.get('event'))[:32]!r}")
    start = message.get("start")
    if not isinstance(start, dict):
        raise StreamError("'start' without its 'start' object")
    sid = message.get("streamSid") or start.get("streamSid")
    call = start.get("callSid")
    if not isinstance(sid, str) or not sid or not isinstance(call, str) or not call:
        raise StreamError("'start' without streamSid or callSid")
    fmt = start.get("mediaFormat") if isinstance(start.get("mediaFormat"), dict) else {}
    if fmt and (fmt.get("encoding") != "audio/x-mulaw" or int(fmt.get("sampleRate") or 8000) != 8000):
        raise StreamError(f"unsupported media format {str(fmt.get('encoding'))[:32]} at {fmt.get('sampleRate')} Hz")
    custom = start.get("customParameters") if isinstance(start.get("customParameters"), dict) else {}
    return StreamStart(sid, call, str(start.get("accountSid") or ""), {str(k): str(v) for k, v in custom.items()}, dict(fmt))


def _load(data: str | bytes) -> dict[str, Any]:
    if isinstance(data, (bytes, bytearray)):
        raise StreamError("binary frame (Twilio sends JSON text)")
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):
        raise StreamError("not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("event"), str):
        raise StreamError("no 'event'")
    return message


@dataclass
class Inbound:
    """What one Twilio message means: Realtime events for the session, and the end of the stream."""

    events: list[dict[str, Any]] = field(default_factory=list)
    stop: bool = False
    ignored: str | None = None  # why the message was ignored (safe to log)
    digit: str | None = None  # a keypad press


@dataclass
class Outbound:
    """What one session event means here: messages to Twilio, and events for the session itself."""

    twilio: list[dict[str, Any]] = field(default_factory=list)
    feed: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Playback:
    sent_ms: float = 0.0  # audio sent to Twilio
    played_ms: float = 0.0  # audio Twilio confirmed played (marks)
    cleared: bool = False  # a clear dropped the rest: later marks are not heard audio


class TwilioMediaStream:
    def __init__(self, start: StreamStart) -> None:
        self.start = start
        self.stream_sid = start.stream_sid
        self.items: OrderedDict[str, _Playback] = OrderedDict()
        self.marks: OrderedDict[str, tuple[str, float]] = OrderedDict()  # mark name -> (item, position)
        self.playing: str | None = None  # the item whose audio went out last
        self.response_active = False
        self.vad_interrupts = True  # server turn detection cancels the answer itself on speech (interrupt_response)
        self.barge_ins = 0
        self.ignored = 0
        self._marks_sent = 0

    # ------------------------------------------------------------------ from Twilio
    def from_twilio(self, data: str | bytes) -> Inbound:
        try:
            message = _load(data)
        except StreamError as exc:
            return self._ignore(str(exc))
        kind = message["event"]
        if kind != "connected" and message.get("streamSid") not in (None, self.stream_sid):
            return self._ignore(f"{kind[:16]} for another stream")
        if kind == "media":
            media = message.get("media")
            payload = media.get("payload") if isinstance(media, dict) else None
            if not isinstance(payload, str) or not payload:
                return self._ignore("media without a payload")
            if len(payload) > MAX_MEDIA_B64:
                return self._ignore("media payload too large")
            if media.get("track") not in (None, "inbound", "inbound_track"):
                return self._ignore("media of another track")
            try:
                binascii.a2b_base64(payload, strict_mode=True)
            except (binascii.Error, ValueError):
                return self._ignore("media payload is not base64")
            return Inbound(events=[{"type": "input_audio_buffer.append", "audio": payload}])
        if kind == "mark":
            mark = message.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            placed = self.marks.pop(name, None) if isinstance(name, str) else None
            if placed is None:
                return self._ignore("mark the bridge did not send")
            item_id, position = placed
            playback = self.items.get(item_id)
            if playback is not None and not playback.cleared:
                playback.played_ms = max(playback.played_ms, position)
            return Inbound()
        if kind == "dtmf":
            dtmf = message.get("dtmf")
            digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
            if not isinstance(digit, str) or len(digit) != 1 or digit not in "0123456789*#ABCD":
                return self._ignore("dtmf without a key")
            return Inbound(digit=digit)
        if kind == "stop":
            return Inbound(stop=True)
        if kind in ("connected", "start"):
            return self._ignore(f"a second '{kind}'")
        return self._ignore(f"unknown event {kind[:32]!r}")

    def _ignore(self, why: str) -> Inbound:
        self.ignored += 1
        return Inbound(ignored=why)

    # ------------------------------------------------------------------ from the session
    def from_session(self, event: dict[str, Any]) -> Outbound:
        kind = event.get("type")
        if kind == "response.output_audio.delta":
            return self._audio(str(event.get("item_id") or ""), str(event.get("delta") or ""))
        if kind == "input_audio_buffer.speech_started":
            return self.barge_in()
        if kind in ("session.created", "session.updated"):
            audio = (event.get("session") or {}).get("audio") or {}
            td = (audio.get("input") or {}).get("turn_detection") if isinstance(audio, dict) else None
            self.vad_interrupts = isinstance(td, dict) and td.get("interrupt_response", True) is not False
        elif kind == "response.created":
            self.response_active = True
        elif kind == "response.done":
            self.response_active = False
            status = (event.get("response") or {}).get("status")
            if status in ("cancelled", "failed", "incomplete"):
                return Outbound(twilio=self._clear())  # the answer was stopped: nothing more of it plays
        return Outbound()

    def _audio(self, item_id: str, delta: str) -> Outbound:
        try:
            audio = base64.b64decode(delta, validate=True)
        except (binascii.Error, ValueError):
            return Outbound()
        playback = self.items.get(item_id)
        if playback is None:
            playback = self.items[item_id] = _Playback()
            while len(self.items) > MAX_ITEMS:
                self.items.popitem(last=False)
        if playback.cleared:
            return Outbound()  # the caller interrupted this answer: the rest of it is not played
        self.playing = item_id
        out = Outbound()
        step = CHUNK_MS * BYTES_PER_MS
        for off in range(0, len(audio), step):
            chunk = audio[off:off + step]
            playback.sent_ms += len(chunk) / BYTES_PER_MS
            self._marks_sent += 1
            name = f"m{self._marks_sent}"
            self.marks[name] = (item_id, playback.sent_ms)
            while len(self.marks) > MAX_MARKS:
                self.marks.popitem(last=False)
            out.twilio.append({"event": "media", "streamSid": self.stream_sid,
                               "media": {"payload": base64.b64encode(chunk).decode("ascii")}})
            out.twilio.append({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})
        return out

    def quiet(self) -> bool:
        """Nothing is being generated and everything sent has played (the marks came back)."""
        playback = self.items.get(self.playing or "")
        return not self.response_active and (playback is None or playback.cleared or playback.played_ms >= playback.sent_ms)

    def played_ms(self, item_id: str) -> float:
        playback = self.items.get(item_id)
        return playback.played_ms if playback is not None else 0.0

    def barge_in(self) -> Outbound:
        """The caller speaks: stop what is still queued at Twilio and cut the answer where they stopped hearing it.

        Also when Twilio has played everything it got but the answer is still running (in hold mode the
        rest may be held by the gate): the model generated more than the caller heard either way."""
        item_id = self.playing
        playback = self.items.get(item_id or "")
        if item_id is None or playback is None or playback.cleared:
            return Outbound()
        queued = playback.played_ms < playback.sent_ms
        if not queued and not self.response_active:
            return Outbound()  # the answer is over and was heard whole: nothing to interrupt
        self.barge_ins += 1
        out = Outbound(twilio=self._clear())
        playback.cleared = True  # whatever of it is still to come, or still echoed, was not heard
        if self.response_active and not self.vad_interrupts:  # else the service cancelled it when it saw the speech
            out.feed.append({"type": "response.cancel", "event_id": f"event_twilio_cancel_{self.barge_ins}"})
        out.feed.append({"type": "conversation.item.truncate", "event_id": f"event_twilio_truncate_{self.barge_ins}",
                         "item_id": item_id, "content_index": 0, "audio_end_ms": int(playback.played_ms)})
        return out

    def _clear(self) -> list[dict[str, Any]]:
        playback = self.items.get(self.playing or "")
        if playback is None or playback.cleared or playback.played_ms >= playback.sent_ms:
            return []
        playback.cleared = True
        return [{"event": "clear", "streamSid": self.stream_sid}]
