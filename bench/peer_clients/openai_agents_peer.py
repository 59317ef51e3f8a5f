"""openai-agents' ``agents.realtime`` as the middle: N calls in this one process (run by ``bench/peers.py``).

Each call is what a server app on this SDK does per caller (its Twilio example's handler, without the
50 ms re-batching): ``RealtimeRunner(agent).run()`` (one runner per call: a runner holds one model, i.e.
one connection), ``session.send_audio()`` with each 20 ms PCM16 24 kHz frame (the SDK's input format,
sent as it is: no resampling, so the stamp survives), and ``async for event in session`` consuming
every event, the ``audio`` ones played to the caller (socket shape: sent back on the caller's WebSocket,
``front.py``; feeder shape: their stamps read in process).  Only the
connection is pointed elsewhere (``model_config``'s ``url``, with the SDK's default model in its query as
the SDK builds its own, and ``api_key``); everything else is the
SDK's default (semantic_vad, input transcription, pcm16 both ways, its own ``websockets`` connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from importlib.metadata import version
from pathlib import Path
from typing import AsyncIterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agents.realtime import RealtimeAgent, RealtimeRunner, RealtimeSession  # noqa: E402
from agents.realtime.openai_realtime import OpenAIRealtimeWebSocketModel  # noqa: E402
from common import Play, Send, Tally, main, ws_extensions  # noqa: E402

AGENT = RealtimeAgent(name="Bench assistant", instructions="You are a bank's phone assistant. Answer briefly.")


async def _listen(session: RealtimeSession, tally: Tally, play: Play) -> None:
    async for event in session:
        if event.type == "audio":
            await play(event.audio.data)
        elif event.type == "error":
            tally.errors.append(str(event.error)[:300])


@contextlib.asynccontextmanager
async def session(url: str, api_key: str, tally: Tally, play: Play) -> AsyncIterator[Send]:
    model = OpenAIRealtimeWebSocketModel()  # the runner's default model, made here to name it in the URL as the SDK does
    rt = await RealtimeRunner(AGENT, model=model).run(model_config={"url": f"{url}?model={model.model}", "api_key": api_key})
    async with rt:
        tally.info.setdefault("framework", f"openai-agents {version('openai-agents')}")
        tally.info.setdefault("ws_extensions", ws_extensions(getattr(model, "_websocket", None)))  # noqa: SLF001
        listener = asyncio.create_task(_listen(rt, tally, play))
        try:
            yield rt.send_audio
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)


if __name__ == "__main__":
    main(session)
