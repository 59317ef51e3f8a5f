"""Turn tracking: what each side said, when, and how much audio went out (``TurnTracker``)."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from hybrid_agent.audit.records import ToolCallRecord, TurnInterrupted, TurnRecord
from hybrid_agent.protocol.audio import AUDIO_FORMATS, b64_decoded_len, duration_ms

_WORD = re.compile(r"\S+")

#: speaking rate when a call has no finished answer to learn it from (about 150 words a minute)
DEFAULT_CHARS_PER_MS = 0.014


@dataclass(slots=True)
class UserTurn:
    seq: int
    item_id: str
    started_ms: float  # call clock when speech started (or the item was committed)
    audio_start_ms: float | None = None  # position in the input audio stream
    audio_end_ms: float | None = None
    transcript: str | None = None
    status: str = "in_progress"  # in_progress | completed | transcription_failed
    recorded: bool = False
    committed: bool = False  # the input buffer was committed: a transcript (or its failure) will follow


@dataclass(slots=True)
class AssistantTurn:
    seq: int
    item_id: str
    response_id: str | None
    started_ms: float
    pieces: list[str] = field(default_factory=list)  # transcript deltas, until the final transcript arrives
    transcript: str | None = None  # final transcript from the *.done event
    audio_bytes: int = 0
    audio_ms: float = 0.0
    first_audio_ms: float | None = None  # call clock when the first audio delta went to the caller
    status: str = "in_progress"
    recorded: bool = False
    truncated_at_ms: float | None = None
    audio_complete: bool = False  # every word of the transcript has its audio (the response completed)

    @property
    def text(self) -> str:
        return self.transcript if self.transcript is not None else "".join(self.pieces)

    @property
    def chars_per_ms(self) -> float | None:
        """This answer's speaking rate, when its audio covers its whole transcript."""
        if self.audio_complete and self.audio_ms > 0 and self.text:
            return len(self.text) / self.audio_ms
        return None

    def heard_text(self, audio_end_ms: float, chars_per_ms: float = DEFAULT_CHARS_PER_MS) -> str:
        """The words the caller heard when playback stopped at ``audio_end_ms``.

        The service's transcript is not aligned to its audio (deltas come in bursts,
        ahead of the audio), so the cut is placed by speaking rate: the answer's own
        rate when its audio is complete, else ``chars_per_ms`` (learned from the
        call's finished answers).  A word counts as heard once it has started.
        """
        text = self.text
        rate = self.chars_per_ms or chars_per_ms
        cut = audio_end_ms * rate
        end = 0
        for m in _WORD.finditer(text):
            if m.start() >= cut:
                break
            end = m.end()
        return text[:end].strip()

    def playback_position_ms(self, now_ms: float) -> float:
        """Estimated ms of this item's audio the caller has heard, assuming real-time playback."""
        if self.first_audio_ms is None:
            return 0.0
        return max(0.0, min(self.audio_ms, now_ms - self.first_audio_ms))


@dataclass(slots=True)
class ToolCallState:
    tool_call_id: str
    name: str
    item_id: str
    response_id: str | None
    arguments: str = ""
    done: bool = False
    answered: bool = False  # a function_call_output for it has been sent


#: a finished turn, a cut-short answer, or a finished function call: what the tracker hands back
TurnFact = Union[TurnRecord, TurnInterrupted, ToolCallRecord]

#: malformed fields in upstream events are skipped, never allowed to break the call
UPSTREAM_FIELD_ERRORS = (KeyError, TypeError, ValueError, AttributeError)


def _ms(value: Any) -> float | None:
    """A millisecond field as a float, or None when the upstream sent something else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


class TurnTracker:
    """Which turn every upstream event belongs to, and the audit records of the turns that finish.

    A sans-I/O part of the call session: ``feed`` takes one upstream event and the call clock
    (ms since the call started) and returns the facts that event completed (a ``TurnRecord`` when a
    turn is over, a ``TurnInterrupted`` when an answer was cut short, a ``ToolCallRecord`` when the
    model finished a function call).  The session decides what to do with them (policy checks,
    disclosures, replay history, server tools).  It also learns the call's speaking rate from the
    answers whose audio completed, which the speech gate and the heard-text estimate use.
    """

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.input_format = "audio/pcm"
        self.output_format = "audio/pcm"
        self.user_turns: dict[str, UserTurn] = {}
        self.assistant_turns: dict[str, AssistantTurn] = {}
        self.tool_calls: dict[str, ToolCallState] = {}
        self.active_response_id: str | None = None
        self.rates: list[float] = []  # speaking rates of finished answers (chars per ms of audio)
        self._seq = 0
        self._client_items = 0

    # ------------------------------------------------------------------ reading
    @property
    def turns(self) -> list[UserTurn | AssistantTurn]:
        """All turns in the order speech started."""
        return sorted([*self.user_turns.values(), *self.assistant_turns.values()], key=lambda t: t.seq)

    @property
    def last_seq(self) -> int:
        """The seq of the newest turn (0 before the first)."""
        return self._seq

    def fastest_rate(self) -> float:
        """The fastest recent speaking rate (never below the default): text covered by audio, upper bound."""
        return max([DEFAULT_CHARS_PER_MS, *self.rates[-20:]])

    def typical_rate(self) -> float:
        return statistics.median(self.rates[-20:]) if self.rates else DEFAULT_CHARS_PER_MS

    def playback_position_ms(self, item_id: str, now_ms: float) -> float:
        turn = self.assistant_turns.get(item_id)
        return turn.playback_position_ms(now_ms) if turn else 0.0

    def caller_turn_untranscribed(self) -> bool:
        """A committed caller turn whose transcript has not come yet (the model may answer before it)."""
        return any(t.committed and not t.recorded for t in self.user_turns.values())

    def answer_of(self, response_id: str | None) -> list[AssistantTurn]:
        return [t for t in self.assistant_turns.values() if response_id is not None and t.response_id == response_id]

    # ------------------------------------------------------------------ events
    def feed(self, event: dict[str, Any], rel_ms: float) -> list[TurnFact]:
        """One upstream event; raises one of ``UPSTREAM_FIELD_ERRORS`` when its fields cannot be used."""
        handler = _HANDLERS.get(event["type"])
        if handler is None:
            return []
        out: list[TurnFact] = []
        handler(self, event, rel_ms, out)
        return out

    def client_text(self, item: dict[str, Any], rel_ms: float) -> TurnRecord | None:
        """A user message the client typed (not spoken) is a turn like any other."""
        text = " ".join(
            str(c.get("text") or c.get("transcript") or "")
            for c in item.get("content") or []
            if isinstance(c, dict) and c.get("type") in ("input_text", "input_audio")
        ).strip()
        if not text:
            return None
        self._client_items += 1
        turn = UserTurn(seq=self._next_seq(), item_id=str(item.get("id") or f"client_item_{self._client_items}"),
                        started_ms=rel_ms, transcript=text, status="completed")
        self.user_turns[turn.item_id] = turn
        records = self._record_user(turn, rel_ms)
        return records[0] if records and isinstance(records[0], TurnRecord) else None

    def fail_active_response(self, rel_ms: float) -> tuple[str | None, list[TurnFact]]:
        """The response that was streaming is lost with the socket: its id, and its answers recorded as failed."""
        rid = self.active_response_id
        self.active_response_id = None
        out: list[TurnFact] = []
        for turn in self.answer_of(rid):
            if not turn.recorded:
                turn.status = "failed"
                out.extend(self._record_assistant(turn, rel_ms))
        return rid, out

    def flush(self, rel_ms: float) -> list[TurnFact]:
        """The call ended: every turn still open is recorded (as incomplete)."""
        out: list[TurnFact] = []
        for turn in sorted(self.user_turns.values(), key=lambda t: t.seq):
            if not turn.recorded:
                turn.status = "incomplete" if turn.status == "in_progress" else turn.status
                out.extend(self._record_user(turn, rel_ms))
        for aturn in sorted(self.assistant_turns.values(), key=lambda t: t.seq):
            if not aturn.recorded:
                aturn.status = "incomplete"
                out.extend(self._record_assistant(aturn, rel_ms))
        return out

    # ------------------------------------------------------------------ handlers
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _on_session(self, event: dict[str, Any], rel: float, out: list[TurnFact]) -> None:
        audio = (event.get("session") or {}).get("audio") or {}
        fmt_in = ((audio.get("input") or {}).get("format") or {}).get("type")
        fmt_out = ((audio.get("output") or {}).get("format") or {}).get("type")
        if fmt_in in AUDIO_FORMATS:
            self.input_format = fmt_in
        if fmt_out in AUDIO_FORMATS:
            self.output_format = fmt_out

    def _user_turn(self, item_id: str, rel: float) -> UserTurn:
        turn = self.user_turns.get(item_id)
        if turn is None:
            turn = UserTurn(seq=self._next_seq(), item_id=item_id, started_ms=rel)
            self.user_turns[item_id] = turn
        return turn

    def _on_speech_started(self, event: dict[str, Any], rel: float, out: list[TurnFact]) -> None:
        self._user_turn(str(event["item_id"]), rel).audio_start_ms = _ms(event.get("audio_start_ms"))

    def _on_speech_stopped(self, event: dict[str, Any], rel: float, out: list[TurnFact]) -> None:
        self._user_turn(str(event["item_id"]), rel).audio_end_ms = _ms(event.get("audio_end_ms"))

    def _on_committed(self, event: dict[str, Any], rel: float, out: list[TurnFact]) -> None:
        self._user_turn(event["item_id"], rel).committed = True  # manual-commit turns have no speech_started

    def _on_transcription_completed(self, event: dict[str, Any], rel: float, out: list[TurnFact]) -> None:
        turn = self._user_turn(event["item_id"], rel)
        turn.transcript = event.get("transcript", "")
        turn.status = "completed"
        out.extend(self._record_user(turn, rel))

    def _on_transcription_failed(self, event: dict[str, Any], rel: float, out: list[TurnFact]) -> None:
        turn = self._user_turn(event["item_id"], rel)
        turn.status = "transcription_failed"
        out.extend(self._record_user(turn, rel))

    def _on_response_created(self, event: dict[str, Any], rel: float, out: list[TurnFact]) -> None:
        self.active_response_id = (event.get("response") or {}).get("id")

    def _on_output_item_added(self, event: dict[str, Any], rel: float, out: list[TurnFact]) -> None:
        item = event.get("item") or {}
        item_id = item.get("id")
        if not item_id:
            return
        if item.get("type") == "message" and item.get("role") == "assistant":
            self.assistant_turns[item_id] = AssistantTurn(
                seq=self._next_seq(), item_id=item_id, response_id=event.get("response_id"), started_ms=rel
            )
        elif item.get("type") == "function_call":
            call_id = item.get("call_id") or item_id
            self.tool_calls[call_id] = ToolCallState(
                tool_call_id=call_id, name=item.get("name") or "", item_id=item_id, response_id=event.get("response_id")
            )

    def _on_transcript_delta(self, event: dict[str, Any], rel: float, out: list[TurnFact]) -> None:
        turn = self.assistant_turns.get(event.get("item_id", ""))
        if turn is not None:
            turn.pieces.append(str(event.get("delta", "")))

    def _on_transcript_done(self, event: dict[str, Any], rel: float, out: list[TurnFact]) -> None:
        turn = self.assistant_turns.get(event.get("item_id", ""))
        if turn is not None:
            turn.transcript = event.get("transcript") if "transcript" in event else event.get("text")

    def _on_audio_delta(self, event: dict[str, Any], rel: float, out: list[TurnFact]) -> None:
        turn = self.assistant_turns.get(event.get("item_id", ""))
        if turn is None:
            return
        if turn.first_audio_ms is None:
            turn.first_audio_ms = rel
        turn.audio_bytes += b64_decoded_len(event.get("delta", ""))
        turn.audio_ms = duration_ms(turn.audio_bytes, self.output_format)

    def _on_output_item_done(self, event: dict[str, Any], rel: float, out: list[TurnFact]) -> None:
        item = event.get("item") or {}
        turn = self.assistant_turns.get(item.get("id", ""))
        if turn is not None:
            turn.status = item.get("status") or "completed"
            out.extend(self._record_assistant(turn, rel))

    def _on_function_call_done(self, event: dict[str, Any], rel: float, out: list[TurnFact]) -> None:
        call_id = event.get("call_id", "")
        state = self.tool_calls.get(call_id)
        if state is None:
            state = ToolCallState(call_id, event.get("name") or "", event.get("item_id", ""), event.get("response_id"))
            self.tool_calls[call_id] = state
        state.arguments = event.get("arguments", "")
        state.name = event.get("name") or state.name
        state.done = True
        out.append(ToolCallRecord(call_id=self.call_id, tool_call_id=call_id, name=state.name, arguments=state.arguments,
                                  at_ms=rel, response_id=state.response_id))

    def _on_response_done(self, event: dict[str, Any], rel: float, out: list[TurnFact]) -> None:
        response = event.get("response") or {}
        status = response.get("status") or "completed"
        answers = self.answer_of(response.get("id"))
        for turn in answers:
            if not turn.recorded:
                turn.status = "cancelled" if status == "cancelled" else status
                out.extend(self._record_assistant(turn, rel))
        if status == "completed":
            for turn in answers:
                if turn.audio_ms > 0:
                    turn.audio_complete = True
                    if turn.chars_per_ms:
                        self.rates.append(turn.chars_per_ms)
                        del self.rates[:-64]
        if self.active_response_id == response.get("id"):
            self.active_response_id = None

    def _on_truncated(self, event: dict[str, Any], rel: float, out: list[TurnFact]) -> None:
        turn = self.assistant_turns.get(event.get("item_id", ""))
        if turn is None:
            return
        audio_end_ms = _ms(event.get("audio_end_ms"))
        if audio_end_ms is None:
            raise ValueError("audio_end_ms is not a number")
        turn.truncated_at_ms = audio_end_ms
        rate = sum(self.rates[-5:]) / len(self.rates[-5:]) if self.rates else DEFAULT_CHARS_PER_MS
        out.append(TurnInterrupted(call_id=self.call_id, seq=turn.seq, item_id=turn.item_id, audio_end_ms=audio_end_ms,
                                   heard_text=turn.heard_text(audio_end_ms, rate), at_ms=rel))

    # ------------------------------------------------------------------ records
    def _record_user(self, turn: UserTurn, rel: float) -> list[TurnFact]:
        audio_ms = (turn.audio_end_ms or 0) - (turn.audio_start_ms or 0) if turn.audio_end_ms else 0.0
        return self._record(turn, "user", turn.transcript, audio_ms, None, rel)

    def _record_assistant(self, turn: AssistantTurn, rel: float) -> list[TurnFact]:
        return self._record(turn, "assistant", turn.text, turn.audio_ms, turn.response_id, rel)

    def _record(self, turn: UserTurn | AssistantTurn, role: Literal["user", "assistant"], text: str | None,
                audio_ms: float, response_id: str | None, rel: float) -> list[TurnFact]:
        if turn.recorded:
            return []
        turn.recorded = True
        return [TurnRecord(call_id=self.call_id, seq=turn.seq, role=role, item_id=turn.item_id, text=text,
                           status=turn.status, started_ms=turn.started_ms, ended_ms=rel, audio_ms=audio_ms,
                           response_id=response_id)]


_HANDLERS = {
    "session.created": TurnTracker._on_session,
    "session.updated": TurnTracker._on_session,
    "input_audio_buffer.speech_started": TurnTracker._on_speech_started,
    "input_audio_buffer.speech_stopped": TurnTracker._on_speech_stopped,
    "input_audio_buffer.committed": TurnTracker._on_committed,
    "conversation.item.input_audio_transcription.completed": TurnTracker._on_transcription_completed,
    "conversation.item.input_audio_transcription.failed": TurnTracker._on_transcription_failed,
    "response.created": TurnTracker._on_response_created,
    "response.output_item.added": TurnTracker._on_output_item_added,
    "response.output_audio_transcript.delta": TurnTracker._on_transcript_delta,
    "response.output_text.delta": TurnTracker._on_transcript_delta,
    "response.output_audio_transcript.done": TurnTracker._on_transcript_done,
    "response.output_text.done": TurnTracker._on_transcript_done,
    "response.output_audio.delta": TurnTracker._on_audio_delta,
    "response.output_item.done": TurnTracker._on_output_item_done,
    "response.function_call_arguments.done": TurnTracker._on_function_call_done,
    "response.done": TurnTracker._on_response_done,
    "conversation.item.truncated": TurnTracker._on_truncated,
}
