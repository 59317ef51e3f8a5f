"""Turn tracking state: what each side said, when, and how much audio went out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
