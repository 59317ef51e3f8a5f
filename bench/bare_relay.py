"""The floor: a bare ``websockets`` relay, caller <-> model, nothing read, nothing recorded.

    python bench/bare_relay.py PORT UPSTREAM_WS_BASE TOKEN

It checks the caller's bearer token (every endpoint authenticates; the bridge does too), opens
the upstream at the same path and query, and copies every message both ways until either side
closes.  Compression off on both sockets, as the bridge has it.
"""

import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

PORT, UPSTREAM, TOKEN = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3]


async def pump(src, dst) -> None:
    try:
        async for message in src:
            await dst.send(message)
    except ConnectionClosed:
        pass


async def handler(client) -> None:
    if client.request.headers.get("Authorization") != f"Bearer {TOKEN}":
        await client.close(1008, "unauthorized")
        return
    path = client.request.path.split("/realtime", 1)[1]  # keep ?model=...
    async with connect(f"{UPSTREAM}/realtime{path}", compression=None, max_size=2**24) as upstream:
        tasks = [asyncio.create_task(pump(client, upstream)), asyncio.create_task(pump(upstream, client))]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()


async def main() -> None:
    async with serve(handler, "127.0.0.1", PORT, compression=None, max_size=2**24):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
