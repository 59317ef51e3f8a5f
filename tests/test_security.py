"""Security promises, each through the real socket: every endpoint authenticates, and a planted
OpenAI key never reaches a client frame, an HTTP body, a log line (DEBUG on) or the audit database;
a call idle both ways is ended at the idle limit, and calls over the process limit are refused.

The route walk reads the app's own route table, so a new route without a case here fails the test
instead of going out unauthenticated.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hybrid_agent.audit.records import CallEnded
from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.audit.store import upgrade
from hybrid_agent.server.app import build_app
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.server.twilio_webhook import MEDIA_PATH, VOICE_PATH
from hybrid_agent.settings import Settings
from hybrid_agent.twilio_caller import PhoneCaller
from hybrid_agent.simulator.server import RealtimeSimulator
from hybrid_agent.simulator.synth import silence, speech
from hybrid_agent.upstream.connector import UpstreamConnector

TOKEN = "security-token-" + secrets.token_hex(8)

# every route of the app -> what an unauthenticated request must get
HTTP_ROUTES = {"/healthz": 401, "/readyz": 401, "/metrics": 401, VOICE_PATH: 403}  # Twilio: X-Twilio-Signature
# the realtime socket is refused at the handshake; Twilio cannot send headers, so the media socket is
# accepted and closed (1008) unless its start message carries the voice webhook's one-time stream token
WS_ROUTES = {"/v1/realtime": 401, MEDIA_PATH: 1008}


def settings(**kw: Any) -> Settings:
    base: dict[str, Any] = {"upstream": "sim", "host": "127.0.0.1", "port": 0, "bridge_tokens": [TOKEN],
                            "twilio_auth_token": "twilio-secret-" + secrets.token_hex(4), "public_url": "https://bridge.example"}
    base.update(kw)
    return Settings(**base)


def test_route_table_is_the_one_walked() -> None:
    s = settings()
    app = build_app(s, UpstreamConnector(s), audit=MemoryAuditSink())
    paths = {getattr(r, "path", None) for r in app.routes}
    assert paths == set(HTTP_ROUTES) | set(WS_ROUTES), "a route was added or removed: add it to the walk"


@pytest.mark.parametrize("token", [None, "wrong-token", TOKEN[:-1]])
async def test_every_route_refuses_without_a_valid_credential(token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with BridgeServer(settings(), audit=MemoryAuditSink()) as bridge:
        base = bridge.ws_base_url.replace("ws://", "http://").rsplit("/v1", 1)[0]
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for path, status in HTTP_ROUTES.items():
                method = "POST" if path == VOICE_PATH else "GET"
                r = await http.request(method, path, headers=headers, data={"CallSid": "CA1"} if method == "POST" else None)
                assert r.status_code == status, (path, r.status_code, r.text)
                assert TOKEN not in r.text
        ws_base = base.replace("http://", "ws://")
        with pytest.raises(InvalidStatus) as refused:
            async with ws_connect(ws_base + "/v1/realtime", additional_headers=headers, open_timeout=10):
                pass
        assert refused.value.response.status_code == WS_ROUTES["/v1/realtime"]
        caller = PhoneCaller(ws_base + MEDIA_PATH, token or "", call_sid="CA" + "1" * 32)
        async with ws_connect(ws_base + MEDIA_PATH, additional_headers=headers, open_timeout=10) as ws:
            await caller.open(ws)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    assert frame.get("event") not in ("media", "mark"), frame  # no call was bridged
            assert closed.value.rcvd is not None and closed.value.rcvd.code == WS_ROUTES[MEDIA_PATH]
        # and the valid token opens them (the walk is not refusing everything)
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            r = await http.get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200


async def test_planted_openai_key_goes_nowhere_but_upstream(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """A whole call with the key the upstream demands: audio, transcripts, a tool-less answer, a bad
    event, an oversize event, /healthz, /readyz and /metrics; DEBUG logging everywhere."""
    key = "sk-proj-PLANTED" + secrets.token_hex(20)
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "audit.db"
    client_frames: list[str] = []
    async with RealtimeSimulator(api_key=key) as sim:  # refuses a session without the key: proves it went upstream
        s = settings(upstream=sim.ws_url, openai_api_key=key, database_url=f"sqlite:///{db}", max_message_bytes=64_000)
        upgrade(s.database_url)
        async with BridgeServer(s) as bridge:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime", additional_headers=auth,
                                  max_size=None) as ws:
                client_frames.append(str(await asyncio.wait_for(ws.recv(), 10)))
                assert json.loads(client_frames[0])["type"] == "session.created"
                audio = speech(700) + silence(900)
                for off in range(0, len(audio), 4800):
                    await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                              "audio": base64.b64encode(audio[off : off + 4800]).decode()}))
                await ws.send("{not json")
                await ws.send(json.dumps({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                              "content": [{"type": "input_text", "text": "x" * 70_000}]}}))
                done = 0
                while done < 1:
                    frame = str(await asyncio.wait_for(ws.recv(), 15))
                    client_frames.append(frame)
                    done += json.loads(frame)["type"] == "response.done"
            base = bridge.ws_base_url.replace("ws://", "http://").rsplit("/v1", 1)[0]
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                bodies = [(await http.get(p, headers=auth)).text for p in ("/healthz", "/readyz", "/metrics")]
    types = [json.loads(f)["type"] for f in client_frames]
    assert "error" in types and "response.output_audio.delta" in types  # the bad events were answered, audio came
    for frame in client_frames:
        assert key not in frame
    for body in bodies:
        assert key not in body
    assert caplog.records and any(r.levelno == logging.DEBUG for r in caplog.records)
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "") + repr(record.args)
        assert key not in text, record.name
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("audit.db"))
    assert stored and key.encode() not in stored
    assert key[-20:].encode() not in stored  # not even a tail of it


# ----------------------------------------------------------------- connection limits
async def test_an_idle_call_is_ended_at_the_idle_limit() -> None:
    """Neither side sends a frame: the call ends after HYBRID_AGENT_IDLE_TIMEOUT_S; a call with traffic does not."""
    audit = MemoryAuditSink()
    async with BridgeServer(settings(idle_timeout_s=0.6), audit=audit) as bridge:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=m", additional_headers=auth) as busy, \
                ws_connect(f"{bridge.ws_base_url}/realtime?model=m", additional_headers=auth) as idle:
            for ws in (busy, idle):
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.created"
            frames = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    # the busy call sends a frame every 0.2 s: over three times the idle limit, never cut
                    await busy.send(json.dumps({"type": "input_audio_buffer.clear"}))
                    try:
                        frames.append(json.loads(await asyncio.wait_for(idle.recv(), 0.2)))
                    except TimeoutError:
                        pass
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
            assert frames[-1]["type"] == "error" and frames[-1]["error"]["code"] == "idle_timeout"
            await busy.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
            got = json.loads(await asyncio.wait_for(busy.recv(), 10))
            assert got["type"] in ("session.updated", "input_audio_buffer.cleared"), got
    outcomes = sorted(r.outcome for r in audit.records if isinstance(r, CallEnded))
    assert outcomes == ["completed", "idle"]


async def test_calls_over_the_process_limit_are_refused_with_503() -> None:
    async with BridgeServer(settings(max_calls=1), audit=MemoryAuditSink()) as bridge:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        url = f"{bridge.ws_base_url}/realtime?model=m"
        async with ws_connect(url, additional_headers=auth) as first:
            assert json.loads(await asyncio.wait_for(first.recv(), 10))["type"] == "session.created"
            with pytest.raises(InvalidStatus) as refused:
                async with ws_connect(url, additional_headers=auth):
                    pass
            assert refused.value.response.status_code == 503
            assert b"at_capacity" in refused.value.response.body
        for _ in range(50):  # the first call's slot is free again once its handler has returned
            try:
                async with ws_connect(url, additional_headers=auth) as again:
                    assert json.loads(await asyncio.wait_for(again.recv(), 10))["type"] == "session.created"
                break
            except InvalidStatus:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("the slot of a finished call was never freed")
