"""pipecat's ``OpenAIRealtimeLLMService`` as the middle: N headless pipelines in this one process (``bench/peers.py``).

Each call is one pipeline, ``[user aggregator, OpenAIRealtimeLLMService, Speaker, assistant aggregator]``
(the compat suite's shape, ``bench/compat/clients/pipecat_client.py``, without its tool), in a
``PipelineWorker`` at its defaults (so with the RTVI processor and observers it adds) run by a
``WorkerRunner`` of its own, as a bot server runs one per caller.  The caller's 20 ms frames go in as
``InputAudioRawFrame``s queued on the worker at **24 kHz**: ``PipelineParams.audio_in_sample_rate`` is
set to 24000 (its default, 16 kHz, would make the service resample to the API's 24 kHz and destroy the
stamp); output stays at its default 24 kHz.  ``Speaker`` stands in for an output transport: it plays
each ``TTSAudioRawFrame`` to the caller as it comes (socket shape: sent back on the caller's WebSocket,
``front.py``; feeder shape: its stamp read in process), keeps a real-time clock of what has been played
and sends ``BotStartedSpeakingFrame`` / ``BotStoppedSpeakingFrame`` upstream as a transport does.
pipecat's own telephony bots put its ``FastAPIWebsocketTransport`` and a frame serializer there instead
(output paced, resampled, chunked by the transport): the plain ``websockets`` front here is the same two
hops without that transport's work, so it is the cheaper end of a pipecat app.  The service is pointed
at the simulator by ``base_url`` and ``api_key`` only; pipecat's logging (loguru, DEBUG to stderr) is left
at its default.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any, AsyncIterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RATE, Play, Send, Tally, main, ws_extensions  # noqa: E402
from pipecat.frames.frames import (  # noqa: E402
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline, PipelineSink, PipelineSource  # noqa: E402
from pipecat.pipeline.worker import PipelineParams, PipelineWorker  # noqa: E402
from pipecat.processors.aggregators.llm_context import LLMContext  # noqa: E402
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair  # noqa: E402
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService  # noqa: E402
from pipecat.workers.runner import WorkerRunner  # noqa: E402

INSTRUCTIONS = "You are a bank's phone assistant. Answer briefly."


class Speaker(FrameProcessor):
    """The sink: plays the assistant's audio to the caller; what an output transport would do."""

    def __init__(self, play: Play) -> None:
        super().__init__(name="Speaker")
        self.play = play
        self._play_until = 0.0
        self._speaking = False
        self._stop_task: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            await self.play(frame.audio)
            now = time.monotonic()
            self._play_until = max(self._play_until, now) + len(frame.audio) / (frame.sample_rate * 2)
            if not self._speaking:
                self._speaking = True
                await self.push_frame(BotStartedSpeakingFrame(), FrameDirection.UPSTREAM)
        elif isinstance(frame, TTSStoppedFrame):
            if self._stop_task is None or self._stop_task.done():
                self._stop_task = asyncio.create_task(self._stopped_after_playback())
        elif isinstance(frame, InterruptionFrame):
            self._play_until = 0.0
        await self.push_frame(frame, direction)

    async def _stopped_after_playback(self) -> None:
        while (left := self._play_until - time.monotonic()) > 0:
            await asyncio.sleep(left)
        if self._speaking:
            self._speaking = False
            await self.push_frame(BotStoppedSpeakingFrame(), FrameDirection.UPSTREAM)


def _leaves(p: Any) -> list[Any]:
    return [q for c in p.processors for q in _leaves(c)] if p.processors else [p]


def shape(worker: PipelineWorker, params: PipelineParams) -> dict[str, Any]:
    """What was measured: the processors frames pass (the worker's own source and sinks left out), its observers."""
    return {
        "framework": f"pipecat-ai {version('pipecat-ai')}",
        "processors": [type(p).__name__ for p in _leaves(worker._pipeline)  # noqa: SLF001 - reported only
                       if not isinstance(p, (PipelineSource, PipelineSink))],
        "observers": [type(o).__name__ for o in worker._observer._observers],  # noqa: SLF001
        "audio_in_sample_rate": params.audio_in_sample_rate,
        "audio_out_sample_rate": params.audio_out_sample_rate,
        "input_frame": f"InputAudioRawFrame, {RATE} Hz mono PCM16, 20 ms",
    }


@contextlib.asynccontextmanager
async def session(url: str, api_key: str, tally: Tally, play: Play) -> AsyncIterator[Send]:
    llm = OpenAIRealtimeLLMService(api_key=api_key, base_url=url,
                                   settings=OpenAIRealtimeLLMService.Settings(system_instruction=INSTRUCTIONS))
    aggregators = LLMContextAggregatorPair(LLMContext())
    pipeline = Pipeline([aggregators.user(), llm, Speaker(play), aggregators.assistant()])
    params = PipelineParams(audio_in_sample_rate=RATE)
    worker = PipelineWorker(pipeline, params=params)

    @worker.event_handler("on_pipeline_error")
    async def on_pipeline_error(_worker: PipelineWorker, frame: object) -> None:
        tally.errors.append(str(getattr(frame, "error", frame))[:300])

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    run = asyncio.create_task(runner.run())
    tally.info.setdefault("pipeline", shape(worker, params))

    async def send(pcm: bytes) -> None:
        await worker.queue_frame(InputAudioRawFrame(audio=pcm, sample_rate=RATE, num_channels=1))

    try:
        yield send
    finally:
        if llm._websocket is not None:  # noqa: SLF001 - reported only
            tally.info.setdefault("ws_extensions", ws_extensions(llm._websocket))  # noqa: SLF001
        await worker.queue_frame(EndFrame())
        try:
            await asyncio.wait_for(run, 10)
        except (asyncio.TimeoutError, Exception) as exc:  # noqa: BLE001 - reported to the bench
            tally.errors.append(f"pipeline did not end cleanly: {type(exc).__name__}: {exc}"[:300])
            await worker.cancel()


if __name__ == "__main__":
    main(session)
