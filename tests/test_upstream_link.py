"""The hot path's sockets: upstream compression off, raw sends, TCP_NODELAY on every caller's socket."""

from __future__ import annotations

import asyncio
import json
import socket

from websockets.asyncio.client import connect as ws_connect

from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.server.runner import BridgeServer, listening_socket
from hybrid_agent.settings import Settings
from hybrid_agent.simulator.server import RealtimeSimulator
from hybrid_agent.upstream.connector import UpstreamConnector
from hybrid_agent.upstream.link import UpstreamLink

TOKEN = "test-bridge-token"


async def test_simulator_would_compress_a_client_that_asks() -> None:
    """The control: the simulator (like the real service) accepts permessage-deflate when offered."""
    async with RealtimeSimulator() as sim:
        async with ws_connect(f"{sim.ws_url}/realtime?model=gpt-realtime") as ws:
            assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]


async def test_upstream_link_negotiates_no_compression_and_relays_raw_text() -> None:
    async with RealtimeSimulator() as sim:
        connector = UpstreamConnector(Settings(upstream=sim.ws_url, openai_api_key="sk-test"))
        await connector.start()
        try:
            link = await connector.connect("gpt-realtime")
            assert isinstance(link, UpstreamLink) and link.ws is not None  # the raw connection, not the SDK's queue
            assert link.extensions == []
            (server_side,) = sim.sessions
            assert list(server_side.ws.protocol.extensions) == []  # the simulator's side agrees
            first = json.loads(await link.recv_bytes())
            assert first["type"] == "session.created"
            await link.send_raw('{"type":"session.update","event_id":"evt_raw","session":{"type":"realtime","instructions":"hi"}}')
            second = json.loads(await asyncio.wait_for(link.recv_bytes(), 5))
            assert second["type"] == "session.updated" and second["session"]["instructions"] == "hi"
            await link.close()
        finally:
            await connector.stop()


async def test_calls_through_the_bridge_use_an_uncompressed_upstream() -> None:
    async with RealtimeSimulator() as sim:
        settings = Settings(upstream=sim.ws_url, host="127.0.0.1", port=0, bridge_tokens=[TOKEN], openai_api_key="sk-test")
        async with BridgeServer(settings, audit=MemoryAuditSink()) as bridge:
            async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime",
                                  additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
                assert json.loads(await ws.recv())["type"] == "session.created"
                assert [list(s.ws.protocol.extensions) for s in sim.sessions] == [[]]


def test_accepted_sockets_have_nagle_off() -> None:
    """asyncio sets TCP_NODELAY only where ``proto`` is IPPROTO_TCP, which ``create_server`` leaves 0:
    the listener's option is what every caller's socket gets."""
    with listening_socket("127.0.0.1", 0) as server:
        with socket.create_connection(server.getsockname()) as client:
            accepted, _ = server.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert client is not None


def test_a_plain_create_server_socket_would_keep_nagle_on() -> None:
    """The control for the test above: without the option, an accepted socket has Nagle on."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname()):
            accepted, _ = server.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
