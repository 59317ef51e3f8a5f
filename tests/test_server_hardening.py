"""Hardening of the bridge server and the embedded simulator, each through a real socket.

Bounded simulator state, the in-process simulator's key, no frame contents in any
log line, request-header deadline and 431, and audit state in /healthz and /readyz.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.settings import Settings
from hybrid_agent.simulator import server as sim_server
from hybrid_agent.simulator import session as sim_session
from hybrid_agent.simulator.scenario import AudioSettings, Scenario, Turn
from hybrid_agent.simulator.server import RealtimeSimulator
from hybrid_agent.simulator.synth import silence, speech

TOKEN = "hardening-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAST = AudioSettings(words_per_minute=600, speed=0, chunk_ms=200)


def bridge_settings(**kw: object) -> Settings:
    base: dict[str, Any] = {"upstream": "sim", "host": "127.0.0.1", "port": 0, "bridge_tokens": [TOKEN]}
    base.update(kw)
    return Settings(**base)


async def recv_until(ws: Any, type_: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while not got or got[-1]["type"] != type_:
        left = deadline - asyncio.get_running_loop().time()
        got.append(json.loads(await asyncio.wait_for(ws.recv(), max(left, 0.01))))
    return got


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------- 1. bounded simulator state


async def test_simulator_event_log_and_sessions_stay_bounded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Many calls through the bridge: the simulator keeps a fixed-size event log and no per-call state after."""
    monkeypatch.setattr(sim_server, "EMITTED_LIMIT", 150)
    fast = tmp_path / "fast.yaml"
    fast.write_text("name: fast\naudio: {words_per_minute: 600, speed: 0, chunk_ms: 200}\n")
    async with BridgeServer(bridge_settings(sim_scenario=fast), audit=MemoryAuditSink()) as bridge:
        sim = bridge.connector._simulator
        assert isinstance(sim, RealtimeSimulator)
        for _ in range(12):
            async with ws_connect(f"{bridge.ws_base_url}/realtime?model=m", additional_headers=AUTH) as ws:
                await recv_until(ws, "session.created")
                for i in range(4):
                    await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                        "type": "message", "role": "user", "content": [{"type": "input_text", "text": f"hello {i}"}]}}))
                await ws.send(json.dumps({"type": "response.create"}))
                await recv_until(ws, "response.done")
        await asyncio.sleep(0.2)  # let the bridge close its upstream sockets
        assert sim.connections >= 12
        assert len(sim.emitted) == 150  # full, and no more: the newest events only
        assert sim.emitted[-1]["type"] == "response.done"
        gc.collect()
        assert len(sim.sessions) == 0  # a closed connection's conversation is dropped


async def test_one_long_connection_keeps_a_bounded_conversation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim_session, "MAX_CONVERSATION_ITEMS", 20)
    sc = Scenario(audio=FAST, turns=[Turn(user="q", assistant="a")])
    async with RealtimeSimulator(sc, record_limit=50, validate=True) as sim:
        async with ws_connect(sim.ws_url + "/realtime?model=m", max_queue=None) as ws:
            await recv_until(ws, "session.created")
            ids = []
            for i in range(60):
                await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                    "type": "function_call", "name": "f", "call_id": f"call_{i}", "arguments": "{}"}}))
                ids.append((await recv_until(ws, "conversation.item.done"))[-1]["item"]["id"])
                await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                    "type": "function_call_output", "call_id": f"call_{i}", "output": "x" * 100}}))
                await recv_until(ws, "conversation.item.done")
                await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                    "type": "message", "role": "user", "content": [{"type": "input_text", "text": f"m{i}"}]}}))
                await recv_until(ws, "conversation.item.done")
            [live] = list(sim.sessions)
            assert len(live.items) <= 20 and len(live.info) <= 20
            assert len(live.call_turn) <= 20 and len(live.outputs) <= 20
            assert len(live.answered) <= 2 and len(live.tools_emitted) <= 2  # the scenario's turns and -1 only
            assert len(sim.emitted) == 50
            # the oldest items are forgotten, the newest still answer
            await ws.send(json.dumps({"type": "conversation.item.retrieve", "item_id": ids[0]}))
            assert (await recv_until(ws, "error"))[-1]["error"]["code"] == "item_not_found"
            await ws.send(json.dumps({"type": "conversation.item.retrieve", "item_id": ids[-1]}))
            assert (await recv_until(ws, "conversation.item.retrieved"))[-1]["item"]["id"] == ids[-1]
            await ws.send(json.dumps({"type": "response.create"}))
            assert (await recv_until(ws, "response.done"))[-1]["response"]["status"] == "completed"


# ----------------------------------------------------------------- 2. the simulator's key


async def test_in_process_simulator_refuses_connections_without_its_key() -> None:
    async with BridgeServer(bridge_settings(), audit=MemoryAuditSink()) as bridge:
        sim = bridge.connector._simulator
        assert sim.api_key and len(sim.api_key) >= 32
        for headers in ({}, {"Authorization": "Bearer sim-no-key"}, {"Authorization": f"Bearer {TOKEN}"}):
            with pytest.raises(InvalidStatus) as info:
                async with ws_connect(sim.ws_url + "/realtime?model=m", additional_headers=headers):
                    pass
            assert info.value.response.status_code == 401
            assert json.loads(info.value.response.body)["error"]["code"] == "invalid_api_key"
        # the bridge itself still gets through
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=m", additional_headers=AUTH) as ws:
            await recv_until(ws, "session.created")
            await ws.send(json.dumps({"type": "response.create"}))
            assert (await recv_until(ws, "response.done"))[-1]["response"]["status"] == "completed"
    assert bridge.connector._simulator is None


def _start_simulator(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hybrid_agent", "simulator", "--port", str(port), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()  # type: ignore[union-attr]
    assert "simulator listening" in line, line
    return proc, port


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


async def test_standalone_simulator_key_flag_env_and_warning() -> None:
    env = {k: v for k, v in os.environ.items() if k != "HYBRID_AGENT_SIM_API_KEY"}
    for args, extra in ((["--api-key", "sk-flag"], {}), ([], {"HYBRID_AGENT_SIM_API_KEY": "sk-flag"})):
        proc, port = _start_simulator(args, {**env, **extra})
        try:
            url = f"ws://127.0.0.1:{port}/v1/realtime?model=m"
            with pytest.raises(InvalidStatus) as info:
                async with ws_connect(url):
                    pass
            assert info.value.response.status_code == 401
            async with ws_connect(url, additional_headers={"Authorization": "Bearer sk-flag"}) as ws:
                assert json.loads(await ws.recv())["type"] == "session.created"
        finally:
            err = _stop(proc)
        assert "unauthenticated" not in err
    proc, port = _start_simulator([], env)  # no key: still works for local testing, with a warning
    try:
        async with ws_connect(f"ws://127.0.0.1:{port}/v1/realtime?model=m") as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
    finally:
        err = _stop(proc)
    warnings = [line for line in err.splitlines() if "unauthenticated" in line]
    assert len(warnings) == 1 and "HYBRID_AGENT_SIM_API_KEY" in warnings[0]


# ----------------------------------------------------------------- 3. no frame contents in logs

CARD = "4111 1111 1111 1111"
SPOKEN_CARD = "four one one one one one one one one one one one one one one one"
SSN = "078-05-1120"
EMAIL = "jane.planted@example.com"
PLANTED = [CARD, CARD.replace(" ", ""), SPOKEN_CARD, "four one one one", SSN, SSN.replace("-", ""), EMAIL]

SCENARIO_YAML = f"""\
name: planted
audio: {{words_per_minute: 600, speed: 0, chunk_ms: 200}}
transcription_delay_ms: 10
turns:
  - user: "typed"
    assistant: "Noted {CARD} and {EMAIL}."
  - user: "My card is {SPOKEN_CARD} and my social is {SSN}."
    assistant: "Thanks, your social {SSN} is on file."
"""


async def drive_planted_call(ws_base_url: str) -> list[dict[str, Any]]:
    """A call that carries the planted values in text items, instructions, transcripts and replies."""
    async with ws_connect(f"{ws_base_url}/realtime?model=gpt-realtime", additional_headers=AUTH, max_size=None) as ws:
        events = await recv_until(ws, "session.created")
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "instructions": f"The caller's email is {EMAIL}, SSN {SSN}."}}))
        events += await recv_until(ws, "session.updated")
        await ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text":
                f"My card is {CARD}, that is {SPOKEN_CARD}; SSN {SSN}; email {EMAIL}."}]}}))
        await ws.send(json.dumps({"type": "response.create", "response": {"instructions": f"Repeat {CARD} {SSN}."}}))
        events += await recv_until(ws, "response.done")
        audio = speech(600) + silence(800)
        for off in range(0, len(audio), 4800):
            await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(audio[off : off + 4800]).decode()}))
        wanted = {"response.done", "conversation.item.input_audio_transcription.completed"}
        seen: set[str] = set()
        while not wanted <= seen:
            event = json.loads(await asyncio.wait_for(ws.recv(), 20))
            events.append(event)
            seen.add(event["type"])
    return events


def assert_nothing_planted(text: str) -> None:
    for value in PLANTED:
        assert value not in text, f"planted value {value!r} is in the log"


def test_verbose_serve_logs_no_frame_contents(tmp_path: Path) -> None:
    """`hybrid-agent -v serve --upstream sim`: DEBUG everywhere, and no planted value in any log line."""
    scenario = tmp_path / "planted.yaml"
    scenario.write_text(SCENARIO_YAML)
    port = free_port()
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    env = {**os.environ, "HYBRID_AGENT_BRIDGE_TOKENS": TOKEN, "HYBRID_AGENT_DATABASE_URL": db}
    exe = [sys.executable, "-m", "hybrid_agent"]
    subprocess.run([*exe, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=60)
    server = subprocess.Popen(
        [*exe, "-v", "serve", "--upstream", "sim", "--port", str(port), "--sim-scenario", str(scenario)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        assert "listening" in line, line
        events = asyncio.run(drive_planted_call(f"ws://127.0.0.1:{port}/v1"))
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    types = [e["type"] for e in events]
    assert "conversation.item.input_audio_transcription.completed" in types and types.count("response.done") == 2
    logs = line + out + err
    assert "DEBUG " in logs  # debug logging was on
    assert_nothing_planted(logs)


async def test_debug_frame_logging_is_rewritten_in_process(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """Even with the websockets frame loggers forced to DEBUG, a frame line is direction, opcode and length."""
    scenario = tmp_path / "planted.yaml"
    scenario.write_text(SCENARIO_YAML)
    caplog.set_level(logging.DEBUG)
    names = ("websockets.client", "websockets.server", "uvicorn.error")
    saved = {n: logging.getLogger(n).level for n in names}
    try:
        async with BridgeServer(bridge_settings(sim_scenario=scenario), audit=MemoryAuditSink()) as bridge:
            for n in names:  # someone turns frame logging on anyway
                logging.getLogger(n).setLevel(logging.DEBUG)
            await drive_planted_call(bridge.ws_base_url)
            # payloads quoted by our own code or by an exception are cut as well
            logging.getLogger("hybrid_agent.test").debug("event %s", json.dumps({"type": "x", "text": CARD}))
            try:
                raise ValueError(f"bad input {{'type': 'message', 'text': '{SSN}'}}")
            except ValueError:
                logging.getLogger("hybrid_agent.test").exception("failed")
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)
    frames = [r.getMessage() for r in caplog.records if r.getMessage().startswith(("< TEXT", "> TEXT"))]
    assert frames and all(m.endswith(" bytes]") and "'" not in m for m in frames)
    assert not any(r.getMessage().lower().startswith(("< authorization", "> authorization")) and TOKEN in r.getMessage()
                   for r in caplog.records)
    assert TOKEN not in caplog.text
    assert_nothing_planted(caplog.text)
    for record in caplog.records:
        assert_nothing_planted(record.getMessage() + (record.exc_text or ""))


# ----------------------------------------------------------------- 4. header deadline and size


async def _read_all(reader: asyncio.StreamReader, timeout: float) -> bytes:
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), timeout):
            data += chunk
    except ConnectionResetError:
        pass
    return data


async def test_slow_loris_headers_are_closed_at_the_deadline() -> None:
    async with BridgeServer(bridge_settings(header_timeout_s=1.5), audit=MemoryAuditSink()) as bridge:
        reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\nX-Slow: " + b"a" * 60
        start = time.monotonic()
        closed_at = None
        for byte in request:
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except (ConnectionResetError, BrokenPipeError):
                break
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 0.5)  # one byte every half second
            except asyncio.TimeoutError:
                continue
            except ConnectionResetError:
                chunk = b""
            if chunk.startswith(b"HTTP/1.1 408") or not chunk:
                closed_at = time.monotonic() - start
                break
        writer.close()
        assert closed_at is not None, "the slow request was never cut off"
        assert closed_at < 1.5 + 1.5
        # a socket that says nothing at all is closed too
        reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
        start = time.monotonic()
        assert await _read_all(reader, 5) == b""
        assert time.monotonic() - start < 3
        writer.close()
        # an ordinary request is unaffected (and the deadline does not cut its keep-alive reuse short)
        reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
        for _ in range(2):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
            await reader.readexactly(length)
            await asyncio.sleep(0.8)
        # ...but a slow second request on that kept-alive connection is cut off like the first
        start = time.monotonic()
        data = b""
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(4096), 0.5)
                except asyncio.TimeoutError:
                    continue
                break
        except (ConnectionResetError, BrokenPipeError):
            pass
        assert data == b"" or data.startswith(b"HTTP/1.1 408"), data
        assert time.monotonic() - start < 1.5 + 1.5
        writer.close()


@pytest.mark.parametrize("path", ["/healthz", "/v1/realtime?model=m"])
async def test_oversize_header_gets_431(path: str) -> None:
    async with BridgeServer(bridge_settings(), audit=MemoryAuditSink()) as bridge:
        for pieces in (1, 8):  # in one write, and trickled in (h11's own limit)
            reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
            upgrade = b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" \
                b"Sec-WebSocket-Version: 13\r\n" if path.startswith("/v1") else b""
            request = (f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n".encode() + upgrade
                       + b"X-Big: " + b"b" * (70 * 1024) + b"\r\n\r\n")
            step = -(-len(request) // pieces)
            try:
                for off in range(0, len(request), step):
                    writer.write(request[off : off + step])
                    await writer.drain()
                    await asyncio.sleep(0.05)
            except (ConnectionResetError, BrokenPipeError):
                pass
            data = await _read_all(reader, 5)
            writer.close()
            assert data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), data[:200]
        # a large but allowed head still works
        reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n".encode()
                     + b"X-Big: " + b"b" * (40 * 1024) + b"\r\n\r\n")
        await writer.drain()
        assert (await _read_all(reader, 5)).startswith(b"HTTP/1.1 200")
        writer.close()


async def test_header_limit_is_configurable() -> None:
    async with BridgeServer(bridge_settings(), audit=MemoryAuditSink(), max_header_bytes=4096) as bridge:
        reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 5000 + b"\r\n\r\n")
        await writer.drain()
        assert (await _read_all(reader, 5)).startswith(b"HTTP/1.1 431 ")
        writer.close()


# ----------------------------------------------------------------- 5. audit state in /healthz and /readyz


class StatusSink(MemoryAuditSink):
    def __init__(self, **state: Any) -> None:
        super().__init__()
        self.state = {"healthy": True, "database_reachable": True, "spooling": False, "spool_writable": True,
                      "queued": 0, "last_error": None, **state}

    def status(self) -> dict[str, Any]:
        return dict(self.state)


async def _probe(bridge: BridgeServer, path: str, token: str | None = TOKEN) -> tuple[int, dict[str, Any]]:
    import httpx2 as httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as http:
        r = await http.get(f"http://127.0.0.1:{bridge.port}{path}", headers=headers)
    return r.status_code, r.json()


async def test_healthz_and_readyz_report_the_audit_writer() -> None:
    sink = StatusSink()
    async with BridgeServer(bridge_settings(), audit=sink) as bridge:
        for path in ("/healthz", "/readyz"):
            assert (await _probe(bridge, path, None))[0] == 401
            assert (await _probe(bridge, path, "wrong"))[0] == 401
        code, body = await _probe(bridge, "/healthz")
        assert code == 200 and body["status"] == "ok" and body["audit"]["database_reachable"] is True
        assert (await _probe(bridge, "/readyz"))[0] == 200
        # database down, spool takes the records: alive, degraded, still ready
        sink.state.update(healthy=True, database_reachable=False, spooling=True, queued=3, last_error="db down")
        code, body = await _probe(bridge, "/healthz")
        assert code == 200 and body["status"] == "degraded" and body["audit"]["spooling"] is True
        assert body["audit"]["queued"] == 3 and body["audit"]["last_error"] == "db down"
        assert (await _probe(bridge, "/readyz"))[0] == 200
        # nothing can store a record: not ready
        sink.state.update(healthy=False, spool_writable=False)
        code, body = await _probe(bridge, "/healthz")
        assert code == 200 and body["status"] == "degraded"
        code, body = await _probe(bridge, "/readyz")
        assert code == 503 and body["status"] == "unavailable" and body["audit"]["spool_writable"] is False


async def test_sink_without_status_is_ready() -> None:
    async with BridgeServer(bridge_settings(), audit=MemoryAuditSink()) as bridge:
        code, body = await _probe(bridge, "/healthz")
        assert code == 200 and body["status"] == "ok" and "audit" not in body
        assert (await _probe(bridge, "/readyz"))[0] == 200


async def test_readyz_with_the_real_writer(tmp_path: Path) -> None:
    """The owned AuditWriter: ready on a good database; 503 once neither database nor spool can take a record."""
    from hybrid_agent.audit.store import upgrade
    from hybrid_agent.audit.writer import AuditWriter

    if not hasattr(AuditWriter, "status"):
        pytest.fail("AuditWriter.status() is not there yet (another change adds it)")
    db = tmp_path / "audit.db"
    upgrade(f"sqlite:///{db}")
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    settings = bridge_settings(database_url=f"sqlite:///{db}", audit_spool=spool_dir / "audit.spool")
    async with BridgeServer(settings) as bridge:
        writer = bridge._owned_writer
        assert writer is not None
        code, body = await _probe(bridge, "/healthz")
        assert code == 200 and body["status"] == "ok"
        assert body["audit"]["healthy"] is True and body["audit"]["database_reachable"] is True
        assert (await _probe(bridge, "/readyz"))[0] == 200
        # the spool's folder becomes a file (even root cannot write there): the fallback is gone
        spool_dir.rename(tmp_path / "spool.away")
        spool_dir.write_text("not a folder")
        state = await asyncio.to_thread(writer.probe_sync)
        assert state["spool_writable"] is False
        code, body = await _probe(bridge, "/healthz")
        assert code == 200 and body["status"] == "degraded" and body["audit"]["spool_writable"] is False
        spool_dir.unlink()
        (tmp_path / "spool.away").rename(spool_dir)
        await asyncio.to_thread(writer.probe_sync)
        code, body = await _probe(bridge, "/healthz")
        assert code == 200 and body["status"] == "ok"
        assert (await _probe(bridge, "/readyz"))[0] == 200
