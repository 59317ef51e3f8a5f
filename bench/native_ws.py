"""The measured alternative to uvicorn + Starlette: the same call, on a bare ``websockets`` server.

    python bench/native_ws.py PORT UPSTREAM_WS_BASE     (settings from HYBRID_AGENT_* as for serve)

Only for ``bench relay --paths "bridge native"``: the same ``run_bridged_call`` (session,
runner, upstream link, audit writer, policy gate) as ``hybrid-agent serve``, with the caller's
socket served by ``websockets.asyncio.server`` instead of uvicorn's websockets-sansio protocol
under Starlette.  It cannot be the product: the ``websockets`` server answers GET upgrade
requests only, and the Twilio voice webhook is an HTTP POST on the same port (docs/performance.md
has the two side by side and the decision).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from hybrid_agent.audit.store import upgrade
from hybrid_agent.audit.writer import make_writer
from hybrid_agent.server.auth import bearer_token, token_is_valid
from hybrid_agent.server.runner import GATE_WORKERS, load_policy_gate
from hybrid_agent.settings import load_settings
from hybrid_agent.transports.realtime_ws import run_bridged_call
from hybrid_agent.upstream.connector import UpstreamConnector


class NativeClient:
    """The caller's socket with the three calls ``run_bridged_call`` makes of a Starlette WebSocket."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws

    async def receive(self) -> dict[str, Any]:
        try:
            message = await self.ws.recv()
        except ConnectionClosed:
            return {"type": "websocket.disconnect"}
        return {"type": "websocket.receive", "text": message} if isinstance(message, str) else {"type": "websocket.receive", "bytes": message}

    async def send_text(self, text: str) -> None:
        await self.ws.send(text)

    async def send_json(self, event: Any) -> None:
        await self.ws.send(json.dumps(event))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code, reason)


async def main(port: int, upstream: str) -> None:
    settings = load_settings(upstream=upstream, port=port)
    upgrade(settings.database_url)  # the bench's SQLite file, as serve's first run makes it
    writer = make_writer(settings)
    await writer.start()
    connector = UpstreamConnector(settings)
    await connector.start()
    gate = load_policy_gate(settings)
    executor = concurrent.futures.ThreadPoolExecutor(GATE_WORKERS) if gate is not None else None

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        if not token_is_valid(bearer_token(ws.request.headers), settings.bridge_tokens):
            await ws.close(1008, "unauthorized")
            return
        model = (parse_qs(urlsplit(ws.request.path).query).get("model") or [None])[0]

        async def refuse(message: str) -> None:
            await ws.close(1011, "upstream unavailable")

        await run_bridged_call(NativeClient(ws), channel="realtime", requested_model=model, refuse=refuse, settings=settings,
                               connector=connector, audit=writer, policy_gate=gate, gate_executor=executor)

    async with serve(handler, "127.0.0.1", port, compression=None, max_size=16 * 2**20):
        print(f"native bridge listening on ws://127.0.0.1:{port}/v1/realtime", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
