"""Synthetic audio: a tone the simulator's VAD hears as speech, and silence.

The simulator uses :func:`speech` for assistant audio; clients and tests use it
to fake a caller speaking.  The tone is a 400 Hz sine at about -12 dBFS (RMS
about 5800), far above the VAD threshold at any ``threshold`` setting; one
period is a whole number of samples at both 24 kHz and 8 kHz, so a cached
period is simply tiled.
"""

from __future__ import annotations

import math
from array import array
from functools import cache

from hybrid_agent.protocol.audio import SAMPLE_RATE, from_pcm16

TONE_HZ = 400
AMPLITUDE = 8192


@cache
def _period(rate: int) -> bytes:
    n = rate // TONE_HZ
    samples = array("h", (int(AMPLITUDE * math.sin(2 * math.pi * i / n)) for i in range(n)))
    return samples.tobytes()


def _samples(ms: float, fmt: str) -> int:
    if fmt not in SAMPLE_RATE:
        raise ValueError(f"unknown audio format {fmt!r} (expected audio/pcm, audio/pcmu or audio/pcma)")
    return max(0, int(round(ms * SAMPLE_RATE[fmt] / 1000)))


def speech(ms: float, fmt: str = "audio/pcm") -> bytes:
    """``ms`` milliseconds of a VAD-triggering tone, encoded in ``fmt``."""
    n = _samples(ms, fmt)
    period = _period(SAMPLE_RATE[fmt])
    reps, rest = divmod(n * 2, len(period))
    pcm = period * reps + period[:rest]
    return from_pcm16(pcm, fmt)


def silence(ms: float, fmt: str = "audio/pcm") -> bytes:
    """``ms`` milliseconds of digital silence, encoded in ``fmt``."""
    return from_pcm16(b"\x00\x00" * _samples(ms, fmt), fmt)
