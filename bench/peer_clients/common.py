"""Shared by the peer benchmark's child processes (``bench/peers.py``); stdlib only, so it runs in any venv.

For a peer framework the framework *is* the middle, so it runs in a process of its own (in its own venv,
pinned by the bench to the middle's core) with N concurrent calls inside it.  Two workload shapes:

- **socket** (``--listen PORT``, ``front.py``): the app serves the callers a WebSocket, as the frameworks'
  telephony examples do, and the bench's load generator connects to it as it connects to our bridge;
- **feeder** (the earlier shape): the app makes each caller's 20 ms PCM16 24 kHz frames itself, in
  real time, and consumes the framework's audio.

This module holds what every such process shares:

- the **stamp codec**, imported by the bench side too (``bench/loadgen.py``): the send time rides in
  the first 8 bytes (4 samples) of each audio frame, since the frameworks expose no event ids;
- the **caller frames** (feeder shape): the same samples as ``bench/loadgen.py``'s ``SPEECH_FRAMES`` /
  ``SILENCE_FRAME`` (``hybrid_agent.simulator.synth``'s 400 Hz tone, which this venv cannot import), and
  its pacing;
- the **run protocol** with the bench (feeder shape): a warm-up call, a ``ready`` line, the measured run
  once the bench (having read the process's CPU) writes ``go``, a ``result`` line, then exit at EOF on
  stdin (so the bench reads the CPU again first);
- the **feeder baseline** (``python common.py``): the same pacing loop producing the same
  stamped frames and discarding them, no framework.  In the bench's own path the load generator makes
  the caller's frames outside the measured process; in the feeder shape the app making them is inside
  it, so its cost is measured alone and subtracted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import struct
import sys
import time
from array import array
from dataclasses import dataclass, field
from typing import Any, AsyncContextManager, AsyncIterator, Awaitable, Callable

RATE = 24000
FRAME_MS = 20
FRAME_BYTES = RATE * 2 * FRAME_MS // 1000  # PCM16 mono
SPEECH_MS = 1200  # each utterance, as bench/loadgen.py
CYCLE_MS = 5000
TAIL_S = 1.5  # after the last frame: what is in flight arrives
TONE_HZ = 400
AMPLITUDE = 8192
PREFIX = "PEER "  # the lines the bench reads on stdout (a framework may print its own)

# The stamp: monotonic_ns mod 2**48, 12 bits in each of the first 4 samples, offset to -2048..2047.  A raw
# int64 would put two full-scale samples in a silent frame, lifting its RMS over the simulator's 10 ms VAD
# window to about its threshold (2000) and holding server VAD in speech; this keeps a stamped silent frame
# at RMS <= 264.  The receiver decodes (now - stamp) mod 2**48: no latency is anywhere near 2**48 ns.
STAMP_BYTES = 8
_BITS = 12
_MASK = (1 << 4 * _BITS) - 1
_MAX_NS = 60 * 10**9  # a "stamp" older than this is audio that carried none
_HALF = 1 << (_BITS - 1)


def stamp(ns: int) -> bytes:
    v = ns & _MASK
    return struct.pack("<4h", *(((v >> (_BITS * i)) & 0xFFF) - _HALF for i in range(4)))


def read_stamp(head: bytes, now_ns: int) -> float | None:
    """Milliseconds since the stamp in ``head``'s first 8 bytes, or None when they carry none."""
    if len(head) < STAMP_BYTES:
        return None
    samples = struct.unpack_from("<4h", head)
    if any(not -_HALF <= s < _HALF for s in samples):
        return None
    v = sum((s + _HALF) << (_BITS * i) for i, s in enumerate(samples))
    age = (now_ns - v) & _MASK
    return age / 1e6 if age < _MAX_NS else None


def stamped(frame: bytes) -> bytes:
    return stamp(time.monotonic_ns()) + frame[STAMP_BYTES:]


def speech_frame() -> bytes:
    """20 ms of the simulator's tone (a whole number of its 60-sample periods: every frame is the same)."""
    period = RATE // TONE_HZ
    n = FRAME_BYTES // 2
    return array("h", (int(AMPLITUDE * math.sin(2 * math.pi * (i % period) / period)) for i in range(n))).tobytes()


SPEECH = speech_frame()
SILENCE = bytes(FRAME_BYTES)


@dataclass
class Tally:
    """What one process's calls sent and heard."""

    frames_sent: int = 0
    chunks: int = 0  # model audio chunks the app received
    audio_bytes: int = 0
    down_ms: list[float] = field(default_factory=list)  # one per readable stamp
    errors: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # what the framework script reports of its shape

    def heard(self, pcm: bytes) -> None:
        """The app got a chunk of model audio: count it, read its stamp."""
        ms = read_stamp(pcm[:STAMP_BYTES], time.monotonic_ns())
        self.chunks += 1
        self.audio_bytes += len(pcm)
        if ms is not None:
            self.down_ms.append(ms)


Send = Callable[[bytes], Awaitable[None]]  # the caller's audio into the framework
Play = Callable[[bytes], Awaitable[None]]  # the framework's audio out to the caller
#: a framework's call: (url, api key, tally, play) -> a context that is the open session, yielding its send
Session = Callable[[str, str, Tally, Play], AsyncContextManager[Send]]


@contextlib.asynccontextmanager
async def feeder(url: str, api_key: str, tally: Tally, play: Play) -> AsyncIterator[Send]:
    """No framework: the app's frames are made and dropped."""
    async def discard(pcm: bytes) -> None:
        return None

    yield discard


def ws_extensions(ws: Any) -> list[str]:
    """The WebSocket extensions a framework's connection negotiated (permessage-deflate costs CPU both ends)."""
    return [getattr(e, "name", str(e)) for e in getattr(getattr(ws, "protocol", None), "extensions", None) or []]


async def pace(send: Send, seconds: float, tally: Tally) -> None:
    """``seconds`` of 20 ms frames on a real-time clock: 1.2 s of tone, then silence, every 5 s."""
    per_cycle, loud = CYCLE_MS // FRAME_MS, SPEECH_MS // FRAME_MS
    t0 = time.monotonic()
    for i in range(int(seconds * 1000 // FRAME_MS)):
        await send(stamped(SPEECH if i % per_cycle < loud else SILENCE))
        tally.frames_sent += 1
        wait = t0 + (i + 1) * FRAME_MS / 1000 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)


async def call(session: Session, url: str, api_key: str, seconds: float, delay_s: float, tally: Tally) -> float:
    """One caller; its connect -> close seconds."""
    async def play(pcm: bytes) -> None:
        tally.heard(pcm)

    await asyncio.sleep(delay_s)
    t_open = time.monotonic()
    try:
        async with session(url, api_key, tally, play) as send:
            await pace(send, seconds, tally)
            await asyncio.sleep(TAIL_S)
    except Exception as exc:  # noqa: BLE001 - reported to the bench
        tally.errors.append(f"{type(exc).__name__}: {exc}"[:300])
    return time.monotonic() - t_open


def emit(kind: str, body: dict[str, Any]) -> None:
    print(PREFIX + json.dumps({"kind": kind, **body}), flush=True)


async def _run(session: Session, args: argparse.Namespace) -> None:
    warm = Tally()
    await call(session, args.url, args.api_key, args.warmup, 0.0, warm)
    emit("ready", {"errors": warm.errors, "chunks": warm.chunks, "info": warm.info})
    if (await asyncio.to_thread(sys.stdin.readline)).strip() != "go":
        return
    tally = Tally()
    stagger = CYCLE_MS / 1000 / max(1, args.calls)
    durations = await asyncio.gather(*(
        call(session, args.url, args.api_key, args.seconds, i * stagger, tally) for i in range(args.calls)
    ))
    emit("result", {"calls": args.calls, "call_minutes": sum(durations) / 60, "frames_sent": tally.frames_sent,
                    "chunks": tally.chunks, "audio_bytes": tally.audio_bytes, "down_ms": tally.down_ms,
                    "errors": tally.errors[:5], "error_count": len(tally.errors), "info": tally.info})
    await asyncio.to_thread(sys.stdin.readline)  # EOF: the bench has read the CPU


def main(session: Session) -> None:
    p = argparse.ArgumentParser(description="one peer middle: N calls in this process (bench/peers.py)")
    p.add_argument("--url", required=True, help="the simulator's endpoint, ws://HOST:PORT/v1/realtime")
    p.add_argument("--api-key", default="sim")
    p.add_argument("--listen", type=int, metavar="PORT",
                   help="socket shape: serve callers on 127.0.0.1:PORT (the options below are the feeder shape's)")
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=3.0)
    args = p.parse_args()
    if args.listen is None:
        asyncio.run(_run(session, args))
        return
    from front import serve_callers  # needs ``websockets`` (in every framework venv); this module does not

    asyncio.run(serve_callers(session, args.url, args.api_key, args.listen))


if __name__ == "__main__":  # the feeder baseline
    main(feeder)
