"""SIGTERM drain (rolling deploys): no new calls, the calls in progress go on up to the deadline
(``HYBRID_AGENT_DRAIN_S``), the rest are ended cleanly and recorded as ``shutdown``; exit 0.

In-process through the real socket, and once with ``hybrid-agent serve`` and a real SIGTERM.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hybrid_agent.audit.records import CallEnded, CallEventRecord
from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.policy.loader import load_pack
from hybrid_agent.server.drain import ActiveCalls
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.settings import Settings
from serve_helpers import TOKEN, start_serve

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def settings(**kw: Any) -> Settings:
    base: dict[str, Any] = {"upstream": "sim", "host": "127.0.0.1", "port": 0, "bridge_tokens": [TOKEN]}
    base.update(kw)
    return Settings(**base)


async def _text_turn(ws: Any, text: str) -> list[dict[str, Any]]:
    """A typed turn and its answer, while the bridge drains: the call in progress still works."""
    await ws.send(json.dumps({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}))
    await ws.send(json.dumps({"type": "response.create"}))
    got = []
    while not got or got[-1]["type"] != "response.done":
        got.append(json.loads(await asyncio.wait_for(ws.recv(), 15)))
    return got


def _http(bridge: BridgeServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=bridge.base_url.rsplit("/v1", 1)[0], headers=AUTH, timeout=10)


async def test_drain_takes_no_new_calls_and_lets_the_call_finish() -> None:
    audit = MemoryAuditSink()
    async with BridgeServer(settings(), audit=audit) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=m", additional_headers=AUTH) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.created"
            async with _http(bridge) as http:
                assert (await http.get("/readyz")).status_code == 200
                drain = asyncio.create_task(bridge.drain(30))
                await asyncio.sleep(0.1)
                ready = await http.get("/readyz")
                assert ready.status_code == 503 and ready.json()["status"] == "draining"
                health = (await http.get("/healthz")).json()
                assert health["status"] == "draining" and health["calls"] == 1
            with pytest.raises(InvalidStatus) as refused:  # a new call goes to another instance
                async with ws_connect(f"{bridge.ws_base_url}/realtime?model=m", additional_headers=AUTH):
                    pass
            assert refused.value.response.status_code == 503
            answer = await _text_turn(ws, "still there?")
            assert any(e["type"] == "response.output_audio.delta" for e in answer)
            assert not drain.done()
        # the caller hung up: the drain ends long before its deadline, nothing had to be ended
        assert await asyncio.wait_for(drain, 10) == 0
    [ended] = [r for r in audit.records if isinstance(r, CallEnded)]
    assert ended.outcome == "completed"


async def test_calls_left_at_the_deadline_are_ended_cleanly() -> None:
    audit = MemoryAuditSink()
    async with BridgeServer(settings(), audit=audit) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=m", additional_headers=AUTH) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.created"
            ended = await bridge.drain(0.3)
            assert ended == 1
            frames = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
            assert frames[-1]["type"] == "error" and frames[-1]["error"]["code"] == "bridge_shutdown"
    [end] = [r for r in audit.records if isinstance(r, CallEnded)]
    assert end.outcome == "shutdown"
    assert any(isinstance(r, CallEventRecord) and r.kind == "shutdown" for r in audit.records)


async def test_at_the_deadline_the_pack_says_goodbye_before_the_call_ends() -> None:
    pack = Path(__file__).resolve().parents[1] / "policies" / "retail-banking"
    goodbye = load_pack(pack).clips["goodbye"]
    audit = MemoryAuditSink()
    async with BridgeServer(settings(policy_pack=pack, gate_mode="observe"), audit=audit) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=m", additional_headers=AUTH) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.created"
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
            frames: list[dict[str, Any]] = []
            started = time.monotonic()
            drain = asyncio.create_task(bridge.drain(1.0))  # the goodbye (4.5 s) is longer: it starts at once
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 15)))
            took = time.monotonic() - started
            assert await asyncio.wait_for(drain, 15) == 1
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    said = [e["transcript"] for e in frames if e["type"] == "response.output_audio_transcript.done"]
    assert said == [goodbye.text]
    audio = sum(len(base64.b64decode(e["delta"])) for e in frames if e["type"] == "response.output_audio.delta")
    assert audio == len(goodbye.pcm)
    assert frames[-1]["type"] == "error" and frames[-1]["error"]["code"] == "bridge_shutdown"
    assert took >= goodbye.duration_ms / 1000  # the caller had time to hear it before the hang-up
    kinds = [r.kind for r in audit.records if isinstance(r, CallEventRecord)]
    assert "goodbye" in kinds and "shutdown" in kinds
    [end] = [r for r in audit.records if isinstance(r, CallEnded)]
    assert end.outcome == "shutdown"


async def test_serve_sigterm_drains_then_exits_0(tmp_path: Path) -> None:
    server, env, url = await start_serve(tmp_path, drain_s=3)
    try:
        base = url.replace("ws://", "http://").rsplit("/v1", 1)[0]
        async with ws_connect(f"{url}?model=gpt-realtime", additional_headers=AUTH) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.created"
            server.send_signal(signal.SIGTERM)
            async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10) as http:
                for _ in range(50):  # the signal is handled on the bridge's loop
                    ready = await http.get("/readyz")
                    if ready.status_code == 503:
                        break
                    await asyncio.sleep(0.05)
                assert ready.status_code == 503 and ready.json()["status"] == "draining"
            answer = await _text_turn(ws, "are you closing?")  # the call goes on while the bridge drains
            assert answer[-1]["type"] == "response.done"
            frames = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        code = await asyncio.to_thread(server.wait, 30)
    finally:
        if server.poll() is None:
            server.kill()
    out = server.stdout.read()  # type: ignore[union-attr]
    stderr = server.stderr.read()  # type: ignore[union-attr]
    assert code == 0, stderr[-2000:]
    assert "bridge drained (1 call(s) ended at the deadline)" in out
    calls = subprocess.run([sys.executable, "-m", "hybrid_agent", "audit", "calls", "--json"], env=env,
                           capture_output=True, text=True, timeout=60)
    [call] = json.loads(calls.stdout)
    assert call["outcome"] == "shutdown", call
    verify = subprocess.run([sys.executable, "-m", "hybrid_agent", "audit", "verify"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_active_calls_drain_waits_then_ends_the_rest() -> None:
    """The drain's bookkeeping alone: a call that ends by itself is waited for, the rest are ended at the deadline."""
    calls = ActiveCalls()

    class Call:
        def __init__(self) -> None:
            self.reasons: list[str] = []

        async def shutdown(self, reason: str) -> None:
            self.reasons.append(reason)
            calls.discard(self)

    quick, stuck = Call(), Call()
    calls.add(quick)
    calls.add(stuck)
    assert calls.admit(2) is None and calls.admit(2) is None  # connection slots: the third is refused
    assert calls.admit(2) == "at_capacity"
    calls.release()
    calls.release()
    asyncio.get_running_loop().call_later(0.05, calls.discard, quick)  # hangs up during the drain
    assert await calls.drain(0.3, "deploy") == 1
    assert calls.draining and len(calls) == 0
    assert calls.admit(0) == "draining"
    assert quick.reasons == [] and stuck.reasons == ["deploy"]
    assert await ActiveCalls().drain(5.0) == 0  # nothing in progress: returns at once
