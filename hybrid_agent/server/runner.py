"""Run the bridge app on uvicorn, in-process (tests, demo) or until interrupted (``serve``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket

import uvicorn

from hybrid_agent.audit.sink import AuditSink
from hybrid_agent.audit.writer import AuditWriter, make_writer
from hybrid_agent.policy.gate import IMPLEMENTED_GATE_MODES, PolicyGate
from hybrid_agent.server.app import build_app
from hybrid_agent.settings import Settings
from hybrid_agent.upstream.connector import UpstreamConnector

#: frames above this are refused by the WebSocket engine itself (close 1009);
#: frames between ``max_message_bytes`` and this get a Realtime ``error`` event and the call goes on.
HARD_FRAME_LIMIT = 16 * 2**20
GATE_WORKERS = 4


class GateUnavailable(ValueError):
    """The configured policy pack or gate mode cannot be used; the message is one line for a person."""


def load_policy_gate(settings: Settings) -> PolicyGate | None:
    """The policy gate for ``settings`` (``None`` without a pack or with gate mode off)."""
    if settings.policy_pack is None or settings.gate_mode == "off":
        return None
    if settings.gate_mode not in IMPLEMENTED_GATE_MODES:
        raise GateUnavailable(
            f"gate mode {settings.gate_mode!r} is not implemented yet: this version decides and records "
            "every turn and tool call without blocking (use --gate observe)"
        )
    from hybrid_agent.policy import PackError, load_pack

    try:
        return PolicyGate(load_pack(settings.policy_pack))
    except PackError as exc:
        raise GateUnavailable(f"policy pack {settings.policy_pack} cannot be used: {exc}") from None


class BridgeServer:
    """The bridge: upstream connector + ASGI app + uvicorn on a bound socket.

    Without an explicit ``audit`` sink it records to the audit database of
    ``settings.database_url`` through an ``AuditWriter`` it owns (started before the
    first call is accepted, flushed and closed at shutdown).
    """

    def __init__(self, settings: Settings, audit: AuditSink | None = None) -> None:
        self.settings = settings
        self.policy_gate = load_policy_gate(settings)  # first: a bad pack fails before anything starts
        self._owned_writer: AuditWriter | None = None
        if audit is None:
            self._owned_writer = make_writer(settings)
            audit = self._owned_writer
        self.audit = audit
        self.connector = UpstreamConnector(settings)
        self._gate_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    @property
    def port(self) -> int:
        assert self._sock is not None
        return self._sock.getsockname()[1]

    @property
    def ws_base_url(self) -> str:
        return f"ws://{self.settings.host}:{self.port}/v1"

    async def start(self) -> None:
        if self._owned_writer is not None:
            await self._owned_writer.start()  # raises SchemaOutdated before any call is taken
        await self.connector.start()
        if self.policy_gate is not None:
            # each check carries the session state it was asked with, so the order in which workers
            # finish does not change a decision; several workers keep one caller's huge text from
            # holding up every other call's checks
            self._gate_executor = concurrent.futures.ThreadPoolExecutor(GATE_WORKERS, thread_name_prefix="policy-gate")
            await asyncio.get_running_loop().run_in_executor(self._gate_executor, lambda: self.policy_gate.analyzer)  # warm up
        app = build_app(self.settings, self.connector, self.audit, self.policy_gate, self._gate_executor)
        config = uvicorn.Config(
            app,
            ws="websockets-sansio",
            ws_max_size=max(HARD_FRAME_LIMIT, self.settings.max_message_bytes * 4),
            ws_per_message_deflate=False,
            log_level="warning",
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._sock = socket.create_server((self.settings.host, self.settings.port), reuse_port=False)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.connector.stop()
        if self._gate_executor is not None:
            await asyncio.to_thread(self._gate_executor.shutdown, True)  # never block the event loop
        if self._sock is not None:
            self._sock.close()
        if self._owned_writer is not None:
            await self._owned_writer.close()

    async def __aenter__(self) -> "BridgeServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            assert self._task is not None
            await self._task
        finally:
            await self.stop()
