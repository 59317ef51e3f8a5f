"""Real clients through the real socket: model names, upstream URLs, first run, errors as audit facts, hostile frames."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai import AsyncOpenAI
from websockets.asyncio.client import connect as ws_connect

from hybrid_agent.audit.records import CallEnded, CallEventRecord, CallStarted, TurnRecord
from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.simulator.server import RealtimeSimulator
from hybrid_agent.simulator.synth import silence, speech

from bridge_helpers import TOKEN, bridge_settings

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def recv_until(ws: object, kind: str, timeout: float = 10.0) -> list[dict]:
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))  # type: ignore[attr-defined]
        seen.append(event)
        if event["type"] == kind:
            return seen


def audio_frames(pcm: bytes, ms: int = 100) -> list[str]:
    step = 48 * ms
    return [base64.b64encode(pcm[i : i + step]).decode() for i in range(0, len(pcm), step)]


async def spoken_turn(ws: object) -> list[dict]:
    """Speak one utterance and collect the events up to the answer's response.done."""
    for frame in audio_frames(silence(200) + speech(800) + silence(700)):
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": frame}))  # type: ignore[attr-defined]
    return await recv_until(ws, "response.done", 20)


# ------------------------------------------------------------------ models
async def test_client_naming_another_model_keeps_its_whole_configuration() -> None:
    """pipecat and openai-agents name their own model in session.update: the bridge maps it, never refuses it."""
    audit = MemoryAuditSink()
    async with BridgeServer(bridge_settings(), audit=audit) as bridge:
        client = AsyncOpenAI(api_key=TOKEN, websocket_base_url=bridge.ws_base_url)
        async with client.realtime.connect(model="gpt-4o-realtime-preview-2025-06-03") as conn:
            await conn.session.update(session={
                "type": "realtime", "model": "gpt-4o-realtime-preview-2025-06-03", "instructions": "Answer as a bank.",
                "tools": [{"type": "function", "name": "get_balance", "parameters": {"type": "object", "properties": {}}}],
            })
            kinds = []
            async for event in conn:
                kinds.append(event.type)
                if event.type == "session.updated":
                    assert event.session.instructions == "Answer as a bank."
                    assert event.session.tools and event.session.tools[0].name == "get_balance"
                    assert event.session.model == "gpt-realtime"
                    break
            assert "error" not in kinds
        await client.close()
        await asyncio.sleep(0.1)
    started = next(r for r in audit.records if isinstance(r, CallStarted))
    assert started.model == "gpt-realtime"  # the model actually used
    facts = {(r.kind, r.param) for r in audit.records if isinstance(r, CallEventRecord)}
    assert ("model_mapped", "model") in facts and ("session_rewritten", "session.model") in facts
    # the configuration the upstream accepted is on record: the prompt by digest, the tools by name
    [configured] = [r for r in audit.records if isinstance(r, CallEventRecord) and r.kind == "session_configured"]
    assert "instructions sha256:" in (configured.message or "") and "tools [get_balance]" in (configured.message or "")
    assert "Answer as a bank" not in (configured.message or "")
    assert not any(r.source in ("upstream", "upstream_refused") for r in audit.records if isinstance(r, CallEventRecord))


async def test_allowed_model_is_honoured() -> None:
    audit = MemoryAuditSink()
    async with BridgeServer(bridge_settings(models=["gpt-realtime", "gpt-realtime-mini"]), audit=audit) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime-mini", additional_headers=AUTH) as ws:
            [created] = await recv_until(ws, "session.created")
            assert created["session"]["model"] == "gpt-realtime-mini"
    await asyncio.sleep(0.1)
    assert next(r for r in audit.records if isinstance(r, CallStarted)).model == "gpt-realtime-mini"
    assert not [r for r in audit.records if isinstance(r, CallEventRecord)]


# ------------------------------------------------------------------ upstream URLs
@pytest.mark.parametrize("suffix", ["/v1/realtime", "/v1", "/v1/", ""])
async def test_ws_upstream_url_with_or_without_realtime_and_v1(suffix: str) -> None:
    sim = RealtimeSimulator()
    await sim.start()
    try:
        target = sim.ws_url.rsplit("/v1", 1)[0] + suffix
        audit = MemoryAuditSink()
        async with BridgeServer(bridge_settings(upstream=target), audit=audit) as bridge:
            await bridge.connector.check()
            async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime", additional_headers=AUTH) as ws:
                events = await spoken_turn(ws)
        assert any(e["type"] == "response.output_audio.delta" for e in events)
        assert not any(e["type"] == "error" for e in events)
    finally:
        await sim.stop()


def test_serve_says_in_one_line_what_is_wrong_with_the_upstream(tmp_path: Path) -> None:
    env = {**os.environ, "HYBRID_AGENT_BRIDGE_TOKENS": "t", "HYBRID_AGENT_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
           "HYBRID_AGENT_AUDIT_SPOOL": str(tmp_path / "spool")}
    env.pop("OPENAI_API_KEY", None)
    nothing = subprocess.run(
        [sys.executable, "-m", "hybrid_agent", "serve", "--upstream", f"ws://127.0.0.1:{free_port()}/v1", "--port", "0"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert nothing.returncode == 2 and "cannot connect to upstream ws://127.0.0.1" in nothing.stderr
    assert "Traceback" not in nothing.stderr
    nokey = subprocess.run(
        [sys.executable, "-m", "hybrid_agent", "serve", "--upstream", "openai", "--port", "0"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert nokey.returncode == 2 and "OPENAI_API_KEY" in nokey.stderr and "Traceback" not in nokey.stderr


# ------------------------------------------------------------------ first run
def test_serve_on_a_fresh_directory_creates_the_sqlite_schema(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "HYBRID_AGENT_BRIDGE_TOKENS": "t"}
    env.pop("HYBRID_AGENT_DATABASE_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "hybrid_agent", "serve", "--upstream", "sim", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        assert "listening" in line, line + server.stderr.read()  # type: ignore[union-attr]
    finally:
        server.terminate()
        server.wait(20)
    assert (tmp_path / "hybrid_agent.db").exists()
    calls = subprocess.run([sys.executable, "-m", "hybrid_agent", "audit", "calls", "--json"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert calls.returncode == 0 and json.loads(calls.stdout) == []


@pytest.fixture
def empty_pg_url() -> object:
    from conftest import _fresh_pg

    yield from _fresh_pg(upgraded=False)


@pytest.mark.postgres
def test_serve_on_postgres_without_schema_says_run_db_upgrade(empty_pg_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "HYBRID_AGENT_BRIDGE_TOKENS": "t", "HYBRID_AGENT_DATABASE_URL": empty_pg_url}
    run = subprocess.run(
        [sys.executable, "-m", "hybrid_agent", "serve", "--upstream", "sim", "--port", "0"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 2 and "hybrid-agent db upgrade" in run.stderr
    assert "Traceback" not in run.stderr


# ------------------------------------------------------------------ errors are audit facts
async def test_refused_session_update_is_an_audit_fact_and_the_call_goes_on() -> None:
    audit = MemoryAuditSink()
    async with BridgeServer(bridge_settings(), audit=audit) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime", additional_headers=AUTH) as ws:
            await recv_until(ws, "session.created")
            # a beta-style field the GA service refuses: the upstream answers with an error naming the event
            await ws.send(json.dumps({"type": "session.update", "event_id": "evt_cfg",
                                      "session": {"type": "realtime", "instructions": "x", "voice": "alloy"}}))
            seen = await recv_until(ws, "error")
            assert seen[-1]["error"]["event_id"] == "evt_cfg"
            events = await spoken_turn(ws)
            assert any(e["type"] == "response.output_audio.delta" for e in events)
    await asyncio.sleep(0.1)
    [fact] = [r for r in audit.records if isinstance(r, CallEventRecord)]
    assert (fact.source, fact.event_type, fact.client_event_id) == ("upstream_refused", "session.update", "evt_cfg")
    assert fact.param == "session.voice"


# ------------------------------------------------------------------ hostile frames
@pytest.mark.parametrize("audio", ["AAAA\u00e9AAA", "AAAA\U0001f600", "AAA\ud800"])
async def test_non_ascii_audio_gets_an_error_and_the_call_goes_on(audio: str) -> None:
    audit = MemoryAuditSink()
    async with BridgeServer(bridge_settings(), audit=audit) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime", additional_headers=AUTH) as ws:
            await recv_until(ws, "session.created")
            frame = json.dumps({"type": "input_audio_buffer.append", "event_id": "evt_bad", "audio": audio})
            await ws.send(frame)
            [*_, err] = await recv_until(ws, "error")
            assert err["error"]["code"] == "invalid_value" and err["error"]["event_id"] == "evt_bad"
            events = await spoken_turn(ws)
            assert any(e["type"] == "response.output_audio.delta" for e in events)
    await asyncio.sleep(0.1)
    assert [r.outcome for r in audit.records if isinstance(r, CallEnded)] == ["completed"]
    assert [r.kind for r in audit.records if isinstance(r, CallEventRecord)] == ["invalid_value"]
    assert any(isinstance(r, TurnRecord) and r.role == "assistant" for r in audit.records)


async def test_refused_session_update_shows_in_audit_show_and_calls(tmp_path: Path) -> None:
    """Done-when: a call whose session.update the upstream refused shows that error in `audit show`."""
    from hybrid_agent.audit.store import upgrade

    db = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(db)
    settings = bridge_settings(database_url=db, audit_spool=tmp_path / "spool")
    async with BridgeServer(settings) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime", additional_headers=AUTH) as ws:
            await recv_until(ws, "session.created")
            await ws.send(json.dumps({"type": "session.update", "event_id": "evt_cfg",
                                      "session": {"type": "realtime", "instructions": "x", "voice": "alloy"}}))
            await recv_until(ws, "error")
    env = {**os.environ, "HYBRID_AGENT_DATABASE_URL": db}
    exe = [sys.executable, "-m", "hybrid_agent", "audit"]
    calls = subprocess.run([*exe, "calls", "--json"], env=env, capture_output=True, text=True, timeout=60)
    [call] = json.loads(calls.stdout)
    assert call["config_refused"] is True and call["errors"] == 1
    show = subprocess.run([*exe, "show", call["call_id"]], env=env, capture_output=True, text=True, timeout=60)
    assert show.returncode == 0, show.stderr
    assert "REFUSED session.update" in show.stdout and "session.voice" in show.stdout
    table = subprocess.run([*exe, "calls"], env=env, capture_output=True, text=True, timeout=60)
    assert "CONFIG REFUSED" in table.stdout


def test_calls_open_at_a_crash_are_closed_as_interrupted_at_start_up(tmp_path: Path) -> None:
    """SIGKILL mid-call, start again: the call is recorded `interrupted` at the time of its last record."""
    import signal

    port = free_port()
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    env = {**os.environ, "HYBRID_AGENT_BRIDGE_TOKENS": TOKEN, "HYBRID_AGENT_DATABASE_URL": db,
           "HYBRID_AGENT_AUDIT_SPOOL": str(tmp_path / "spool")}
    cmd = [sys.executable, "-m", "hybrid_agent", "serve", "--upstream", "sim", "--port", str(port)]

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert "listening" in line, line + proc.stderr.read()  # type: ignore[union-attr]
        return proc

    async def half_a_call() -> None:
        async with ws_connect(f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime", additional_headers=AUTH) as ws:
            await recv_until(ws, "session.created")
            await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}}))
            await asyncio.sleep(1.5)  # the writer flushes on its interval
            server.send_signal(signal.SIGKILL)
            server.wait(10)

    server = start()
    try:
        asyncio.run(half_a_call())
    except Exception:  # the socket dies with the server
        pass
    finally:
        if server.poll() is None:
            server.kill()
    audit = [sys.executable, "-m", "hybrid_agent", "audit", "calls", "--json"]
    [before] = json.loads(subprocess.run(audit, env=env, capture_output=True, text=True, timeout=60).stdout)
    assert before["outcome"] is None  # open: the crash left no end
    server = start()
    server.terminate()
    server.wait(20)
    [after] = json.loads(subprocess.run(audit, env=env, capture_output=True, text=True, timeout=60).stdout)
    assert after["outcome"] == "interrupted" and after["duration_ms"] > 0
    verify = subprocess.run([sys.executable, "-m", "hybrid_agent", "audit", "verify"], env=env, capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_many_large_session_updates_keep_the_bridge_memory_bounded(tmp_path: Path) -> None:
    """200 updates of 0.9 MiB once took the bridge from 184 to 431 MB (every update kept for replay)."""
    port = free_port()
    env = {**os.environ, "HYBRID_AGENT_BRIDGE_TOKENS": TOKEN, "HYBRID_AGENT_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
           "HYBRID_AGENT_AUDIT_SPOOL": str(tmp_path / "spool")}
    server = subprocess.Popen([sys.executable, "-m", "hybrid_agent", "serve", "--upstream", "sim", "--port", str(port)],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening" in server.stdout.readline()  # type: ignore[union-attr]

        async def flood() -> tuple[float, float]:
            async with ws_connect(f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime", additional_headers=AUTH,
                                  max_size=None) as ws:
                await recv_until(ws, "session.created")
                before = _rss_mb(server.pid)
                big = "x" * (900 * 1024)
                for i in range(200):
                    await ws.send(json.dumps({"type": "session.update", "event_id": f"evt_{i}",
                                              "session": {"type": "realtime", "instructions": f"{i} {big}"}}))
                    await recv_until(ws, "session.updated", 30)
                return before, _rss_mb(server.pid)

        before, after = asyncio.run(flood())
    finally:
        server.terminate()
        server.wait(20)
    assert after - before < 120, f"bridge RSS grew {after - before:.0f} MB over 200 updates of 0.9 MiB"


async def test_truncate_beyond_the_audio_sent_is_clamped_not_refused() -> None:
    """openai-agents#2009 / pipecat#3677 through the socket: the service would answer with an error."""
    audit = MemoryAuditSink()
    async with BridgeServer(bridge_settings(), audit=audit) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime", additional_headers=AUTH) as ws:
            events = await spoken_turn(ws)
            item = next(e["item"]["id"] for e in events if e["type"] == "response.output_item.added")
            sent_ms = sum(len(base64.b64decode(e["delta"])) / 48 for e in events if e["type"] == "response.output_audio.delta")
            await ws.send(json.dumps({"type": "conversation.item.truncate", "item_id": item, "content_index": 0,
                                      "audio_end_ms": int(sent_ms) + 60_000}))
            seen = await recv_until(ws, "conversation.item.truncated")
            assert not [e for e in seen if e["type"] == "error"]
            assert seen[-1]["audio_end_ms"] == int(sent_ms)
    await asyncio.sleep(0.1)
    from hybrid_agent.audit.records import GateActionRecord

    [clamped] = [r for r in audit.records if isinstance(r, GateActionRecord)]
    assert clamped.action == "truncate_clamped" and clamped.requested_ms == int(sent_ms) + 60_000


def test_a_gated_user_turn_pack_loads(tmp_path: Path) -> None:
    """gate.user_turn: gated is built (tests/test_gated_turn_e2e.py runs it through the socket)."""
    import shutil

    from hybrid_agent.server.runner import load_policy_gate

    pack = tmp_path / "pack"
    shutil.copytree(Path(__file__).resolve().parents[1] / "policies" / "retail-banking", pack)
    manifest = pack / "pack.yaml"
    manifest.write_text(manifest.read_text().replace("user_turn: immediate", "user_turn: gated"))
    gate = load_policy_gate(bridge_settings(policy_pack=pack))
    assert gate is not None and gate.pack.manifest.gate.user_turn == "gated"
