"""What the bridge says itself when the model cannot: prerecorded clips shipped with the pack.

The model speaks every answer, but two moments have no model to speak: the upstream is gone
(an outage, a reconnect that takes long) and the bridge is ending the call (a deploy's drain
deadline).  A pack names a clip for each in ``bridge_speech:``; the bridge plays it to the
caller as a response of its own, in the call's audio format, and the audit records the words.

Clips are WAV files in the pack folder: mono, 16-bit PCM, 8 to 48 kHz, at most
``MAX_CLIP_S`` seconds.  They are read and resampled to 24 kHz once, when the pack loads, so a
call never touches a file; a missing, unreadable or wrong clip is a load error (``policy lint``
reports it with its file).
"""

from __future__ import annotations

import wave
import warnings
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

#: the longest clip a pack may ship (an apology or a goodbye is a sentence or two)
MAX_CLIP_S = 20.0
CLIP_RATE = 24_000
CLIP_NAMES = ("outage_apology", "goodbye")


class BridgeClip(BaseModel):
    """One clip: the file and the words it says (recorded in the audit and sent as its transcript)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(min_length=1, description="WAV file, relative to the pack folder: mono 16-bit PCM, 8-48 kHz, at most 20 s")
    text: str = Field(min_length=1, max_length=500, description="what the clip says, word for word")


class BridgeSpeech(BaseModel):
    """``bridge_speech:`` in ``pack.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outage_apology: BridgeClip | None = Field(
        None, description="played when the upstream is gone for longer than outage_after_ms (a reconnect in progress)"
    )
    outage_after_ms: float = Field(1500.0, ge=0, le=60_000, description="how long an outage lasts before the apology plays")
    goodbye: BridgeClip | None = Field(
        None, description="played when the bridge ends a call itself at the drain deadline (a deploy), before it hangs up"
    )


@dataclass(frozen=True, slots=True)
class ClipAudio:
    """A loaded clip: its words and its audio as PCM16 mono at 24 kHz."""

    name: str
    text: str
    pcm: bytes

    @property
    def duration_ms(self) -> float:
        return len(self.pcm) / (2 * CLIP_RATE / 1000)


class ClipError(ValueError):
    """A clip cannot be used; the message names the file and why."""


def read_clip(root: Path, name: str, clip: BridgeClip) -> ClipAudio:
    """Read and check one clip file; :class:`ClipError` says what is wrong with it."""
    path = (root / clip.file).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ClipError(f"bridge_speech.{name}.file: {clip.file!r} is outside the pack folder")
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            if channels != 1 or width != 2:
                raise ClipError(f"bridge_speech.{name}.file: {clip.file} must be mono 16-bit PCM "
                                f"(it has {channels} channel(s) of {8 * width}-bit samples)")
            if not 8000 <= rate <= 48000:
                raise ClipError(f"bridge_speech.{name}.file: {clip.file} is sampled at {rate} Hz (8000 to 48000 wanted)")
            if frames == 0 or frames / rate > MAX_CLIP_S:
                raise ClipError(f"bridge_speech.{name}.file: {clip.file} lasts {frames / rate:.1f} s "
                                f"(more than 0 and at most {MAX_CLIP_S:g} s wanted)")
            pcm = w.readframes(frames)
    except FileNotFoundError:
        raise ClipError(f"bridge_speech.{name}.file: {clip.file} does not exist in the pack folder") from None
    except (OSError, EOFError, wave.Error) as exc:
        raise ClipError(f"bridge_speech.{name}.file: {clip.file} is not a readable WAV file ({exc})") from None
    if rate != CLIP_RATE:
        pcm, _ = audioop.ratecv(pcm, 2, 1, rate, CLIP_RATE, None)
    return ClipAudio(name, clip.text, pcm)


def read_clips(root: Path, speech: BridgeSpeech) -> dict[str, ClipAudio]:
    """Every clip the pack names, loaded; :class:`ClipError` for the first that cannot be used."""
    out: dict[str, ClipAudio] = {}
    for name in CLIP_NAMES:
        clip = getattr(speech, name)
        if clip is not None:
            out[name] = read_clip(root, name, clip)
    return out
