"""The load of the relay and capacity benchmarks: paced phone-like calls against a stamped simulator.

One process holds both ends of every call, so one clock (``time.monotonic_ns``) times each
audio event from the moment it left one end to the moment it reached the other:

- **caller -> model**: each caller sends a 20 ms ``input_audio_buffer.append`` every 20 ms,
  for the whole call (speech, then silence while the answer plays, as a phone line does); its
  ``event_id`` carries the send time and the simulator notes when it arrives;
- **model -> caller**: the simulator answers each utterance (server VAD) in real time, 100 ms
  ``response.output_audio.delta`` chunks at 150 words a minute; each event's ``event_id``
  carries the time the simulator sent it, and the caller notes when it arrives.

What sits between (nothing, the bare relay, the bridge in some gate mode) is in another process,
pinned to another core where the machine has one; so its latency and its CPU are what differ
between the runs.  ``LoadResult`` holds the latencies, the counts (a frame sent but never received
is dropped) and the call-minutes the middle's CPU is divided by.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from dataclasses import dataclass, field
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from bench.peer_clients.common import STAMP_BYTES, read_stamp, stamp
from hybrid_agent.simulator.scenario import parse_scenario
from hybrid_agent.simulator.server import RealtimeSimulator
from hybrid_agent.simulator.synth import silence, speech

FRAME_MS = 20
SPEECH_MS = 1200  # each utterance
CYCLE_MS = 5000  # utterance + silence while the answer (2.8 s) plays
REPLY = "Sure, I can help you with that today."  # 7 words at 150 wpm: 2.8 s of audio
UTTERANCE = "I would like to check my account balance please."
STAMP = "t"  # a caller's event id: "t<monotonic ns>"
SIM_STAMP = "event_t"  # the simulator's
_HEAD = 200  # event type and id are in the first bytes of every event (ids first, as the service sends)
_TYPE = re.compile(r'"type":\s*"([a-z_.]{1,64})"')
_SIM_ID = re.compile(r'"event_id":\s*"event_t(\d{1,20})"')


def paced_scenario_yaml(speed: float = 1.0, reply: str = REPLY) -> str:
    return (
        "name: paced-load\n"
        f'default_reply: "{reply}"\n'
        f'default_transcript: "{UTTERANCE}"\n'
        "transcription_delay_ms: 100\n"
        f"audio: {{words_per_minute: 150, speed: {speed:g}, chunk_ms: 100, transcript_lead_words: 6}}\n"
    )


class StampedSimulator(RealtimeSimulator):
    """The embedded simulator, its event ids carrying their send time, its arrivals timed."""

    def __init__(self, speed: float = 1.0, reply: str = REPLY, **kw: Any) -> None:
        super().__init__(parse_scenario(paced_scenario_yaml(speed, reply), "paced-load"), record=True, **kw)
        self.up_ms: list[float] = []  # caller -> model, per append
        self.appends = 0
        self.deltas_sent = 0

    def new_event_id(self) -> str:
        return f"{SIM_STAMP}{time.monotonic_ns()}"

    def client_event_received(self, event: dict) -> None:
        if event.get("type") != "input_audio_buffer.append":
            return
        self.appends += 1
        event_id = event.get("event_id")
        if isinstance(event_id, str) and event_id.startswith(STAMP):
            self.up_ms.append((time.monotonic_ns() - int(event_id[len(STAMP):])) / 1e6)

    def record_event(self, event: dict, size: int) -> None:  # nothing kept: audio deltas counted
        if event.get("type") == "response.output_audio.delta":
            self.deltas_sent += 1

    def reset(self) -> None:
        self.up_ms = []
        self.appends = 0
        self.deltas_sent = 0


@dataclass
class LoadResult:
    calls: int
    seconds: float  # wall time of the whole run
    call_minutes: float  # sum over calls of connect -> close
    up_ms: list[float] = field(default_factory=list)
    down_ms: list[float] = field(default_factory=list)
    frames_sent: int = 0
    frames_received: int = 0  # at the simulator
    deltas_sent: int = 0  # by the simulator
    deltas_received: int = 0  # at the callers
    responses_done: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def audio_ms(self) -> list[float]:
        return self.up_ms + self.down_ms

    @property
    def dropped_frames(self) -> int:
        """Caller frames that never reached the model, and model audio that never reached the caller."""
        return max(0, self.frames_sent - self.frames_received) + max(0, self.deltas_sent - self.deltas_received)


def frames_b64(ms: int, loud: bool) -> list[str]:
    pcm = speech(ms) if loud else silence(ms)
    n = 48 * FRAME_MS
    return [base64.b64encode(pcm[i : i + n]).decode("ascii") for i in range(0, len(pcm), n)]


SPEECH_FRAMES = frames_b64(SPEECH_MS, True)
SILENCE_FRAME = frames_b64(FRAME_MS, False)[0]


class EventIdStamps:
    """How a call's audio events are timed: send times in event ids (the bridge's own load)."""

    @staticmethod
    def frame(i: int) -> str:
        k = i % (CYCLE_MS // FRAME_MS)
        audio = SPEECH_FRAMES[k] if k < len(SPEECH_FRAMES) else SILENCE_FRAME
        return f'{{"type":"input_audio_buffer.append","event_id":"{STAMP}{time.monotonic_ns()}","audio":"{audio}"}}'

    @staticmethod
    def down_ms(message: str, head: str, now_ns: int) -> float | None:
        s = _SIM_ID.search(head)
        return (now_ns - int(s.group(1))) / 1e6 if s else None


class PacedTally(Protocol):
    """What a paced caller counts into: frames it sent, errors it met."""

    frames_sent: int
    errors: list[str]


async def paced_frames(url: str, headers: dict[str, str], seconds: float, start_delay_s: float, tally: PacedTally,
                       read: Callable[[Any], Awaitable[None]], on_open: Any = None,
                       stamps: Any = EventIdStamps) -> float:
    """One caller: ``seconds`` of 20 ms frames on a real-time clock while ``read(ws)`` takes what comes
    back; returns its connect -> close seconds.  The benchmarks differ only in what they read."""
    await asyncio.sleep(start_delay_s)
    t_open = time.monotonic()
    try:
        async with ws_connect(url, additional_headers=headers, compression=None, max_size=2**24, open_timeout=30) as ws:
            if on_open is not None:
                await on_open(ws)
            reader = asyncio.create_task(read(ws))
            t0 = time.monotonic()
            for i in range(int(seconds * 1000 // FRAME_MS)):
                await ws.send(stamps.frame(i))
                tally.frames_sent += 1
                wait = t0 + (i + 1) * FRAME_MS / 1000 - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            await asyncio.sleep(1.5)  # what is in flight arrives (an answer's tail, the last appends)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    except (OSError, ConnectionClosed, TimeoutError) as exc:
        tally.errors.append(f"{type(exc).__name__}: {exc}")
    return time.monotonic() - t_open


async def paced_call(url: str, headers: dict[str, str], seconds: float, start_delay_s: float, result: LoadResult,
                     on_open: Any = None, stamps: Any = EventIdStamps) -> float:
    """One caller counted into ``result``: its audio latencies, responses and errors."""
    return await paced_frames(url, headers, seconds, start_delay_s, result, lambda ws: _read(ws, result, stamps),
                              on_open, stamps)


def event_head(message: str) -> tuple[str, str]:
    """An event's type and the head it was read from, without parsing the whole (audio) frame."""
    head = message[:_HEAD]
    m = _TYPE.search(head)
    return (m.group(1) if m else ""), head


async def _read(ws: Any, result: LoadResult, stamps: Any) -> None:
    try:
        async for message in ws:
            now = time.monotonic_ns()
            kind, head = event_head(message)
            if kind == "response.output_audio.delta":
                result.deltas_received += 1
                ms = stamps.down_ms(message, head, now)
                if ms is not None:
                    result.down_ms.append(ms)
            elif kind == "response.done":
                result.responses_done += 1
            elif kind == "error":
                result.errors.append(message[:300])
    except ConnectionClosed:
        pass


async def run_load(sim: StampedSimulator, url: str, headers: dict[str, str], calls: int, seconds: float,
                   on_open: Any = None, stamps: Any = EventIdStamps) -> LoadResult:
    """``calls`` paced calls at once (their utterances staggered over one cycle) through ``url``."""
    sim.reset()
    result = LoadResult(calls=calls, seconds=0.0, call_minutes=0.0)
    t0 = time.monotonic()
    stagger = CYCLE_MS / 1000 / max(1, calls)
    durations = await asyncio.gather(*(
        paced_call(url, headers, seconds, i * stagger, result, on_open, stamps) for i in range(calls)
    ))
    result.seconds = time.monotonic() - t0
    result.call_minutes = sum(durations) / 60
    result.up_ms = list(sim.up_ms)
    result.frames_received = sim.appends
    result.deltas_sent = sim.deltas_sent
    return result


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# ---------------------------------------------------------------------------- audio-stamped load (bench/peers.py)
# The peer frameworks hide event ids, so bench/peers.py stamps the audio itself, on every path alike: the
# send time in the first 8 bytes of each caller frame and of each model audio chunk (the codec:
# bench/peer_clients/common.py, shared with the frameworks' child processes).

_DELTA = re.compile(r'"delta":\s*"([A-Za-z0-9+/]{12})')
_SPEECH_PCM = speech(FRAME_MS)
_SILENCE_PCM = silence(FRAME_MS)


class AudioStampedSimulator(StampedSimulator):
    """The stamped simulator reading the caller's stamp from each append's audio, stamping its own audio chunks."""

    def client_event_received(self, event: dict) -> None:
        if event.get("type") != "input_audio_buffer.append":
            return
        now = time.monotonic_ns()
        self.appends += 1
        audio = event.get("audio")
        if isinstance(audio, str):
            ms = read_stamp(base64.b64decode(audio[:12]), now)  # 12 base64 chars: 9 bytes, the stamp's 8 first
            if ms is not None:
                self.up_ms.append(ms)

    def output_audio(self, chunk: bytes) -> bytes:
        return stamp(time.monotonic_ns()) + chunk[STAMP_BYTES:] if len(chunk) >= STAMP_BYTES else chunk


class AudioStamps:
    """Send times in the audio itself: the first samples of each caller frame and of each model chunk."""

    @staticmethod
    def frame(i: int) -> str:
        pcm = _SPEECH_PCM if i % (CYCLE_MS // FRAME_MS) < len(SPEECH_FRAMES) else _SILENCE_PCM
        audio = base64.b64encode(stamp(time.monotonic_ns()) + pcm[STAMP_BYTES:]).decode("ascii")
        return f'{{"type":"input_audio_buffer.append","audio":"{audio}"}}'

    @staticmethod
    def down_ms(message: str, head: str, now_ns: int) -> float | None:
        d = _DELTA.search(message)
        return read_stamp(base64.b64decode(d.group(1)), now_ns) if d else None


async def audio_stamped_call(url: str, headers: dict[str, str], seconds: float, start_delay_s: float,
                             result: LoadResult) -> float:
    """``paced_call`` with the send time in each frame's first 8 bytes instead of its event id."""
    return await paced_call(url, headers, seconds, start_delay_s, result, stamps=AudioStamps)


async def run_audio_stamped_load(sim: AudioStampedSimulator, url: str, headers: dict[str, str], calls: int,
                                 seconds: float) -> LoadResult:
    """``run_load`` with ``audio_stamped_call``s."""
    return await run_load(sim, url, headers, calls, seconds, stamps=AudioStamps)
