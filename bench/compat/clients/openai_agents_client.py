"""openai-agents' ``agents.realtime`` against the bridge (runs in bench/compat/.venvs/openai-agents).

A ``RealtimeAgent`` with instructions and one ``@function_tool``, run by ``RealtimeRunner``
at its defaults.  Only the connection is pointed at the bridge, through the model config:
``url`` (the full WebSocket URL: the SDK uses it as given and appends no ``?model=``) and
``api_key`` (sent as ``Authorization: Bearer``).  Everything else is the SDK's default:
model ``gpt-realtime-2.1`` (named in its ``session.update``), semantic_vad with
interrupt_response, gpt-4o-mini-transcribe input transcription, voice ``ash``, and its
default playback tracker (audio assumed played in real time as it arrives), which is what
its barge-in truncate is computed from.

``--mode server-tool`` (phase 2): the agent's only tool is its own ``get_branch_hours``; the
greeting is asked for with a raw ``response.create`` through ``session.model.send_event``
(``RealtimeModelSendRawMessage``: the SDK has no "speak first" call), then the caller speaks
twice and hears each answer out.  The bridge runs its own tools; the agent must never see them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agents import function_tool  # noqa: E402
from agents.realtime import RealtimeAgent, RealtimeRunner  # noqa: E402
from agents.realtime.model_inputs import RealtimeModelSendRawMessage  # noqa: E402
from common import (  # noqa: E402
    CLIENT_TOOL,
    CLIENT_TOOL_OUTPUT,
    barge_in,
    server_tool_call,
    INSTRUCTIONS,
    TOOL_OUTPUT,
    FrameTap,
    Summary,
    chunks,
    parse_args,
    utterance,
)

summary = Summary("openai-agents", version("openai-agents"))


@function_tool
def get_balance(account_id: str) -> str:
    """Look up the balance of one of the caller's accounts.

    Args:
        account_id: The account, e.g. "checking".
    """
    output = json.dumps(TOOL_OUTPUT)
    summary.tool_call("get_balance", {"account_id": account_id}, output)
    return output


@function_tool
def get_branch_hours(branch: str) -> str:
    """Opening hours of one of the bank's branches.

    Args:
        branch: The branch, e.g. "High Street".
    """
    output = json.dumps(CLIENT_TOOL_OUTPUT)
    summary.tool_call(CLIENT_TOOL, {"branch": branch}, output)
    return output


async def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    tap = FrameTap().install()
    failures: list[str] = []
    audio_bytes = 0
    session_events: list[str] = []
    session_errors: list[str] = []
    tool = get_balance if args.mode == "client-tool" else get_branch_hours
    agent = RealtimeAgent(name="Example Bank assistant", instructions=INSTRUCTIONS, tools=[tool])
    runner = RealtimeRunner(agent)
    t = args.timeout
    try:
        session = await runner.run(model_config={"url": f"{args.url}/realtime", "api_key": args.token})
        async with session:

            async def listen() -> None:
                nonlocal audio_bytes
                async for event in session:
                    session_events.append(event.type)
                    if event.type == "audio":
                        audio_bytes += len(event.audio.data)
                    elif event.type == "error":
                        session_errors.append(str(event.error))

            listener = asyncio.create_task(listen())

            async def speak() -> None:
                for chunk in chunks(utterance()):
                    await session.send_audio(chunk)
                    await asyncio.sleep(0.005)

            await tap.wait_recv("session.updated", t)
            summary.step("session configured")

            if args.mode == "server-tool":

                async def greet() -> None:
                    await session.model.send_event(RealtimeModelSendRawMessage(message={"type": "response.create"}))

                await server_tool_call(tap, greet, speak, summary, t)
            else:
                m = tap.mark()
                await speak()
                await tap.wait_recv("response.function_call_arguments.done", t, m)
                summary.step("tool called")
                reply = await tap.wait_spoken_reply(t, m)
                summary.step("answer after the tool")
                await asyncio.sleep(tap.reply_audio_ms(reply) / 1000.0)  # let the answer play before speaking again

                await barge_in(tap, speak, summary, t)
            listener.cancel()
    except Exception as exc:  # noqa: BLE001 - the summary reports it
        summary.data["exception"] = f"{type(exc).__name__}: {exc}"
        failures.append(f"client failed: {type(exc).__name__}: {exc}")
    summary.data["session_event_types"] = sorted(set(session_events))
    summary.data["session_errors"] = session_errors
    summary.data["audio_interrupted_events"] = session_events.count("audio_interrupted")
    if session_errors:
        failures.append(f"RealtimeSession reported {len(session_errors)} error(s): {session_errors[0][:300]}")
    rc = summary.finish(tap, audio_bytes, extra_failures=failures, mode=args.mode)
    summary.emit(args.out)
    if args.frames:
        tap.dump(args.frames)
    return rc


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
