"""SIGTERM with a call connected and no drain time (``HYBRID_AGENT_DRAIN_S=0``): ``serve`` ends the call
at once, flushes the audit and exits 0 (the drain itself: tests/test_drain.py)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from serve_helpers import TOKEN, start_serve


async def test_sigterm_mid_call_ends_the_call_in_the_audit_and_exits_0(tmp_path: Path) -> None:
    server, env, url = await start_serve(tmp_path, drain_s=0)
    try:
        async with ws_connect(f"{url}?model=gpt-realtime", additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.created"
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "AAAA" * 240}))
            server.send_signal(signal.SIGTERM)
            try:
                while True:  # the bridge ends the call (1001, going away) as it shuts down
                    await asyncio.wait_for(ws.recv(), 30)
            except ConnectionClosed:
                pass
        code = await asyncio.to_thread(server.wait, 30)
    finally:
        if server.poll() is None:
            server.kill()
    stderr = server.stderr.read()  # type: ignore[union-attr]
    assert code == 0, stderr[-2000:]
    calls = subprocess.run([sys.executable, "-m", "hybrid_agent", "audit", "calls", "--json"], env=env,
                           capture_output=True, text=True, timeout=60)
    [call] = json.loads(calls.stdout)
    assert call["outcome"] not in (None, "open", "interrupted"), call  # ended and recorded before the exit
