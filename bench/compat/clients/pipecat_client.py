"""pipecat's ``OpenAIRealtimeLLMService`` against the bridge (runs in bench/compat/.venvs/pipecat).

A headless pipeline, no transport: ``[user aggregator, OpenAIRealtimeLLMService, Speaker,
assistant aggregator]``, run by ``PipelineWorker``/``WorkerRunner`` (1.3's names for PipelineTask/PipelineRunner) at
their defaults.  The
caller's audio goes in as ``InputAudioRawFrame`` frames queued on the worker, at the
pipeline's default input rate (16 kHz, which the service resamples to 24 kHz as it would
for a real transport).  ``Speaker`` stands in for an output transport: it counts the
assistant's ``TTSAudioRawFrame`` audio, "plays" it on a real-time clock and, when playback
ends, sends ``BotStoppedSpeakingFrame`` upstream as a transport does (the service uses it
to know no audio is left to truncate).

Only the connection is pointed at the bridge: ``base_url`` (the service appends
``?model=<model>``) and ``api_key`` (sent as ``Authorization: Bearer``).  The instructions go
in ``Settings(system_instruction=...)``; the tool is declared in the ``LLMContext``
(``ToolsSchema``) and run by a handler registered with ``register_function``.  Everything
else is the service's default: model ``gpt-realtime-2.1``, server-side turn detection at the
API's defaults, no input transcription configured.

``--mode server-tool`` (phase 2): the context's only tool is the client's own
``get_branch_hours``; the same ``LLMRunFrame`` asks for the greeting, then the caller speaks twice
and hears each answer out.  The bridge runs its own tools; the pipeline must never see them.
"""

from __future__ import annotations

import asyncio
import sys
import time
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    CLIENT_TOOL,
    CLIENT_TOOL_DESCRIPTION,
    CLIENT_TOOL_OUTPUT,
    barge_in,
    server_tool_call,
    INSTRUCTIONS,
    TOOL_NAME,
    TOOL_OUTPUT,
    FrameTap,
    Summary,
    chunks,
    parse_args,
    utterance,
)
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema  # noqa: E402
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema  # noqa: E402
from pipecat.frames.frames import (  # noqa: E402
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMRunFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.worker import PipelineParams, PipelineWorker  # noqa: E402
from pipecat.processors.aggregators.llm_context import LLMContext  # noqa: E402
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair  # noqa: E402
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402
from pipecat.services.llm_service import FunctionCallParams  # noqa: E402
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService  # noqa: E402
from pipecat.workers.runner import WorkerRunner  # noqa: E402

summary = Summary("pipecat", version("pipecat-ai"))


class Speaker(FrameProcessor):
    """The sink: counts and "plays" the assistant's audio; what an output transport would do."""

    def __init__(self) -> None:
        super().__init__(name="Speaker")
        self.audio_bytes = 0
        self._play_until = 0.0
        self._speaking = False
        self._stop_task: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self.audio_bytes += len(frame.audio)
            now = time.monotonic()
            ms = len(frame.audio) / (frame.sample_rate * 2 / 1000)
            self._play_until = max(self._play_until, now) + ms / 1000
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


async def get_balance(params: FunctionCallParams) -> None:
    summary.tool_call(params.function_name, dict(params.arguments), TOOL_OUTPUT)
    await params.result_callback(TOOL_OUTPUT)


async def get_branch_hours(params: FunctionCallParams) -> None:
    summary.tool_call(params.function_name, dict(params.arguments), CLIENT_TOOL_OUTPUT)
    await params.result_callback(CLIENT_TOOL_OUTPUT)


async def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    tap = FrameTap().install()
    failures: list[str] = []
    t = args.timeout

    llm = OpenAIRealtimeLLMService(
        api_key=args.token,
        base_url=f"{args.url}/realtime",
        settings=OpenAIRealtimeLLMService.Settings(system_instruction=INSTRUCTIONS),
    )
    if args.mode == "client-tool":
        llm.register_function(TOOL_NAME, get_balance)
        schema = FunctionSchema(
            name=TOOL_NAME,
            description="Look up the balance of one of the caller's accounts.",
            properties={"account_id": {"type": "string", "description": 'The account, e.g. "checking".'}},
            required=["account_id"],
        )
    else:
        llm.register_function(CLIENT_TOOL, get_branch_hours)
        schema = FunctionSchema(
            name=CLIENT_TOOL,
            description=CLIENT_TOOL_DESCRIPTION,
            properties={"branch": {"type": "string", "description": 'The branch, e.g. "High Street".'}},
            required=["branch"],
        )
    tools = ToolsSchema(standard_tools=[schema])
    context = LLMContext(tools=tools)
    aggregators = LLMContextAggregatorPair(context)
    speaker = Speaker()
    pipeline = Pipeline([aggregators.user(), llm, speaker, aggregators.assistant()])
    params = PipelineParams()
    rate = params.audio_in_sample_rate
    worker = PipelineWorker(pipeline, params=params)
    pipeline_errors: list[str] = []

    @worker.event_handler("on_pipeline_error")
    async def on_pipeline_error(_worker: PipelineWorker, frame: object) -> None:
        pipeline_errors.append(str(getattr(frame, "error", frame)))

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    run = asyncio.create_task(runner.run())

    async def speak() -> None:
        for chunk in chunks(utterance(rate=rate), rate=rate):
            await worker.queue_frame(InputAudioRawFrame(audio=chunk, sample_rate=rate, num_channels=1))
            await asyncio.sleep(0.005)

    async def played(reply: dict) -> None:  # let the answer play out before the caller speaks
        await asyncio.sleep(tap.reply_audio_ms(reply) / 1000.0 + 0.1)

    async def greet() -> None:
        await worker.queue_frames([LLMRunFrame()])  # pipecat's usual kick-off: the bot speaks first

    try:
        await tap.wait_recv("session.created", t)
        if args.mode == "server-tool":
            await server_tool_call(tap, greet, speak, summary, t)
        else:
            await greet()
            await played(await tap.wait_spoken_reply(t))
            summary.step("greeting")

            m = tap.mark()
            await speak()
            await tap.wait_recv("response.function_call_arguments.done", t, m)
            summary.step("tool called")
            await played(await tap.wait_spoken_reply(t, m))
            summary.step("answer after the tool")

            await barge_in(tap, speak, summary, t)
    except Exception as exc:  # noqa: BLE001 - the summary reports it
        summary.data["exception"] = f"{type(exc).__name__}: {exc}"
        failures.append(f"client failed: {type(exc).__name__}: {exc}")
    finally:
        await worker.queue_frame(EndFrame())
        try:
            await asyncio.wait_for(run, 10)
        except (asyncio.TimeoutError, Exception) as exc:  # noqa: BLE001
            failures.append(f"pipeline did not end cleanly: {type(exc).__name__}: {exc}")
            await worker.cancel()
    summary.data["pipeline_errors"] = pipeline_errors
    if pipeline_errors:
        failures.append(f"the pipeline reported {len(pipeline_errors)} error(s): {pipeline_errors[0][:300]}")
    rc = summary.finish(tap, speaker.audio_bytes, extra_failures=failures, mode=args.mode)
    summary.emit(args.out)
    if args.frames:
        tap.dump(args.frames)
    return rc


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
