"""``make fuzz``: a million hostile frames through the real socket of ``hybrid-agent serve``.

The server runs in its own process (``--upstream sim``, a fresh SQLite audit database)
so its memory can be read from ``/proc``; several connections send frames from
``hybrid_agent.protocol.fuzz`` and read every answer.  Printed: frames/s, answers by
kind, connections the bridge closed (and with which code), the server's RSS before and
after, and whether a normal call still works at the end.  Exit 1 on a crash, an
unexpected close, a server that no longer answers, or RSS that grew without bound.

    .venv/bin/python -m bench.fuzz --frames 1000000 --connections 4
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from hybrid_agent.protocol.events import EventValidationError, validate_server_event
from hybrid_agent.protocol.fuzz import hostile_frame

TOKEN = "fuzz-token"
#: frames per connection before it is replaced by a new one (calls end and start, like real traffic)
FRAMES_PER_CALL = 5000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def one_call(url: str, rng: random.Random, frames: int, stats: collections.Counter) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with ws_connect(url, additional_headers=headers, max_size=None, compression=None) as ws:
        async def reader() -> None:
            try:
                async for message in ws:
                    event = json.loads(message)
                    try:
                        validate_server_event(event)
                    except EventValidationError:
                        stats["invalid_server_event"] += 1
                    stats[f"answer:{event['type']}"] += 1
            except ConnectionClosed:
                pass

        task = asyncio.create_task(reader())
        try:
            for _ in range(frames):
                await ws.send(hostile_frame(rng))
                stats["frames"] += 1
        except ConnectionClosed as exc:
            stats[f"closed_by_bridge:{exc.rcvd.code if exc.rcvd else 'none'}"] += 1
        await ws.close()
        await task


async def normal_call(url: str) -> bool:
    async with ws_connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        await ws.send(json.dumps({"type": "conversation.item.create",
                                  "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}))
        await ws.send(json.dumps({"type": "response.create"}))
        while True:
            event = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if event["type"] == "response.done":
                return event["response"]["status"] == "completed"


async def run(frames: int, connections: int, seed: int) -> int:
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="hybrid-fuzz-"))
    env = {**os.environ, "HYBRID_AGENT_BRIDGE_TOKENS": TOKEN, "HYBRID_AGENT_DATABASE_URL": f"sqlite:///{tmp / 'audit.db'}",
           "HYBRID_AGENT_AUDIT_SPOOL": str(tmp / "spool"), "HYBRID_AGENT_PSEUDONYM_KEY": "fuzz"}
    server = subprocess.Popen([sys.executable, "-m", "hybrid_agent", "serve", "--upstream", "sim", "--port", str(port)],
                              env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()
    if "listening" not in line:
        print("server did not start:", line, server.stderr.read() if server.stderr else "")
        return 1
    url = f"ws://127.0.0.1:{port}/v1/realtime"
    stats: collections.Counter = collections.Counter()
    rss_start = rss_mb(server.pid)
    rss_samples = [rss_start]
    started = time.monotonic()
    rng = random.Random(seed)
    remaining = frames
    try:
        while remaining > 0:
            batch = []
            for _ in range(connections):
                n = min(FRAMES_PER_CALL, remaining)
                if n <= 0:
                    break
                remaining -= n
                batch.append(one_call(url, random.Random(rng.random()), n, stats))
            await asyncio.gather(*batch)
            rss_samples.append(rss_mb(server.pid))
            done = frames - remaining
            if done % 100_000 < FRAMES_PER_CALL * connections:
                rate = done / (time.monotonic() - started)
                print(f"  {done:>9,} frames  {rate:,.0f}/s  server RSS {rss_samples[-1]:.0f} MB", flush=True)
        elapsed = time.monotonic() - started
        still_ok = await normal_call(url)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    crashed = server.returncode not in (0, -15)
    closes = {k: v for k, v in stats.items() if k.startswith("closed_by_bridge")}
    answers = sum(v for k, v in stats.items() if k.startswith("answer:"))
    quarter = max(1, len(rss_samples) // 4)
    late_growth = rss_samples[-1] - rss_samples[quarter]
    print(f"frames sent          {stats['frames']:,} in {elapsed:.0f} s ({stats['frames'] / elapsed:,.0f} frames/s, {connections} connections)")
    print(f"answers received     {answers:,} ({stats['answer:error']:,} error events); invalid server events: {stats['invalid_server_event']}")
    print(f"closed by the bridge {closes or 'none'}")
    print(f"server RSS           {rss_start:.0f} MB at start, {max(rss_samples):.0f} MB peak, {rss_samples[-1]:.0f} MB at end "
          f"(growth over the last three quarters {late_growth:+.0f} MB)")
    print(f"normal call after    {'completed' if still_ok else 'FAILED'}; server exit {server.returncode}")
    bad = crashed or closes or not still_ok or stats["invalid_server_event"] or late_growth > 100
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    return asyncio.run(run(args.frames, args.connections, args.seed))


if __name__ == "__main__":
    sys.exit(main())
