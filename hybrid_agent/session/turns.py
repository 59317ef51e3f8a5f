"""Turn tracking state: what each side said, when, and how much audio went out."""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass(slots=True)
class TranscriptPiece:
    text: str
    audio_offset_ms: float  # assistant audio already sent for the item when this text arrived


@dataclass(slots=True)
class AssistantTurn:
    seq: int
    item_id: str
    response_id: str | None
    started_ms: float
    pieces: list[TranscriptPiece] = field(default_factory=list)
    transcript: str | None = None  # final transcript from the *.done event
    audio_bytes: int = 0
    audio_ms: float = 0.0
    first_audio_ms: float | None = None  # call clock when the first audio delta went to the caller
    status: str = "in_progress"
    recorded: bool = False
    truncated_at_ms: float | None = None

    @property
    def text(self) -> str:
        return self.transcript if self.transcript is not None else "".join(p.text for p in self.pieces)

    def heard_text(self, audio_end_ms: float) -> str:
        """The transcript the caller heard when playback stopped at ``audio_end_ms``.

        A piece counts as heard when the audio that preceded it had started playing;
        transcript deltas arrive with (or just before) the audio they describe.
        """
        return "".join(p.text for p in self.pieces if p.audio_offset_ms < audio_end_ms).strip()

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
