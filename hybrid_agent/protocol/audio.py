"""Audio formats of the Realtime protocol and the little arithmetic on them.

``audio/pcm`` is PCM16 mono little-endian at 24 kHz; ``audio/pcmu`` and
``audio/pcma`` are G.711 at 8 kHz (one byte per sample, 8 bytes = 1 ms).  The
bridge relays audio without decoding; only durations are computed on the hot
path.  Decoding (for the simulator's VAD) uses the stdlib ``audioop`` (the
``audioop-lts`` backport on Python 3.13+).
"""

from __future__ import annotations

import base64
import warnings
from typing import Literal

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

AudioFormatType = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
AUDIO_FORMATS: tuple[str, ...] = ("audio/pcm", "audio/pcmu", "audio/pcma")

#: bytes of encoded audio per millisecond, by format type
BYTES_PER_MS: dict[str, int] = {"audio/pcm": 48, "audio/pcmu": 8, "audio/pcma": 8}
SAMPLE_RATE: dict[str, int] = {"audio/pcm": 24000, "audio/pcmu": 8000, "audio/pcma": 8000}


def duration_ms(n_bytes: int, fmt: str) -> float:
    """Duration of ``n_bytes`` of encoded audio in ``fmt``."""
    return n_bytes / BYTES_PER_MS[fmt]


def byte_count_for_ms(ms: float, fmt: str) -> int:
    """Encoded bytes for ``ms`` of audio, aligned to whole samples."""
    n = int(ms * BYTES_PER_MS[fmt])
    return n - (n % 2) if fmt == "audio/pcm" else n


def b64_decoded_len(b64: str) -> int:
    """Length of the bytes a base64 string decodes to, without decoding it."""
    n = len(b64)
    if n == 0:
        return 0
    pad = 2 if b64.endswith("==") else 1 if b64.endswith("=") else 0
    return (n * 3) // 4 - pad


def to_pcm16(data: bytes, fmt: str) -> bytes:
    """Decode ``data`` to PCM16 samples (G.711 expanded; PCM passed through)."""
    if fmt == "audio/pcmu":
        return audioop.ulaw2lin(data, 2)
    if fmt == "audio/pcma":
        return audioop.alaw2lin(data, 2)
    return data[: len(data) - (len(data) % 2)]


def from_pcm16(pcm: bytes, fmt: str) -> bytes:
    """Encode PCM16 samples into ``fmt`` (used to synthesise audio)."""
    if fmt == "audio/pcmu":
        return audioop.lin2ulaw(pcm, 2)
    if fmt == "audio/pcma":
        return audioop.lin2alaw(pcm, 2)
    return pcm


def encode_pcm24(pcm: bytes, fmt: str) -> bytes:
    """PCM16 at 24 kHz (a clip the bridge plays) in the call's output format, G.711 resampled to 8 kHz."""
    if fmt == "audio/pcm":
        return pcm
    narrow, _ = audioop.ratecv(pcm, 2, 1, SAMPLE_RATE["audio/pcm"], SAMPLE_RATE[fmt], None)
    return from_pcm16(narrow, fmt)


def rms(pcm: bytes) -> int:
    """Root-mean-square level of PCM16 samples (0..32767)."""
    return audioop.rms(pcm, 2) if pcm else 0


#: one byte of silence per format: PCM16 zero, G.711 mu-law 0xFF, A-law 0xD5
_SILENCE_BYTE = {"audio/pcm": b"\x00", "audio/pcmu": b"\xff", "audio/pcma": b"\xd5"}


def silence_b64(n_bytes: int, fmt: str) -> str:
    """``n_bytes`` of silence in ``fmt``, base64 (what goes upstream in place of audio the model must not hear)."""
    return base64.b64encode(_SILENCE_BYTE.get(fmt, b"\x00") * n_bytes).decode("ascii")
