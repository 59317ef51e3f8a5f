"""Run the bridge app on uvicorn, in-process (tests, demo) or until interrupted (``serve``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable

import uvicorn

from hybrid_agent.audit.sink import AuditSink
from hybrid_agent.audit.writer import AuditWriter, make_writer
from hybrid_agent.policy.gate import IMPLEMENTED_GATE_MODES, PolicyGate
from hybrid_agent.logs import install_log_redaction
from hybrid_agent.server.app import build_app
from hybrid_agent.server.drain import ActiveCalls
from hybrid_agent.server.escalation import EscalationNotifier, EscalationSink
from hybrid_agent.server.http import MAX_HEADER_BYTES, guarded_h11_protocol
from hybrid_agent.session.bridge_speech import GOODBYE_TAIL_MS
from hybrid_agent.settings import Settings, check_tls
from hybrid_agent.upstream.connector import UpstreamConnector

log = logging.getLogger(__name__)

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
    if settings.gate_mode is not None and settings.gate_mode not in IMPLEMENTED_GATE_MODES:
        raise GateUnavailable(
            f"gate mode {settings.gate_mode!r} is not implemented yet: this version decides and records "
            "every turn and tool call without blocking (use --gate observe)"
        )
    from hybrid_agent.policy import PackError, load_pack

    try:
        pack = load_pack(settings.policy_pack)
    except PackError as exc:
        raise GateUnavailable(f"policy pack {settings.policy_pack} cannot be used: {exc}") from None
    return PolicyGate(pack)


class EscalationUnavailable(ValueError):
    """The escalation webhook is configured but cannot be used; the message is one line for a person."""


def check_escalation_settings(settings: Settings) -> None:
    """Refuse a webhook without a secret: every escalation webhook is signed."""
    if settings.escalation_webhook is not None and settings.escalation_secret is None:
        raise EscalationUnavailable(
            "HYBRID_AGENT_ESCALATION_WEBHOOK is set but HYBRID_AGENT_ESCALATION_SECRET is not: escalation webhooks "
            "are always signed; set the secret shared with the receiver (or unset the webhook)"
        )


def load_escalation_notifier(settings: Settings) -> EscalationNotifier | None:
    """The escalation webhook's notifier for ``settings`` (``None`` without a webhook); not started."""
    check_escalation_settings(settings)
    if settings.escalation_webhook is None:
        return None
    assert settings.escalation_secret is not None
    try:
        return EscalationNotifier(settings.escalation_webhook, settings.escalation_secret)
    except ValueError as exc:
        raise EscalationUnavailable(f"escalation webhook cannot be used: {exc}") from None


def listening_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """The bridge's listening socket, with TCP_NODELAY for every connection it accepts.

    asyncio turns Nagle's algorithm off only on sockets whose ``proto`` is ``IPPROTO_TCP``, and
    ``socket.create_server`` makes them with ``proto`` 0: without this, a small event written
    right after a large one (``response.done`` after the last audio delta) waited for the
    caller's delayed ACK, about 40 ms.  Linux gives accepted sockets the listener's option.
    ``reuse_port``: one of the workers of ``serve --workers`` (server/workers.py), all on one port.
    """
    sock = socket.create_server((host, port), reuse_port=reuse_port)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _minimum_tls_1_2(config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's own context for the certificate and key, refusing anything older than TLS 1.2."""
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class BridgeServer:
    """The bridge: upstream connector + ASGI app + uvicorn on a bound socket.

    Without an explicit ``audit`` sink it records to the audit database of
    ``settings.database_url`` through an ``AuditWriter`` it owns (started before the
    first call is accepted, flushed and closed at shutdown).

    Likewise the escalation webhook: with ``settings.escalation_webhook`` it builds an
    ``EscalationNotifier`` it owns (started with the server, flushed and closed at shutdown);
    an explicit ``escalations`` (anything with ``notify(NotifyEscalation)``, e.g. a test's
    notifier pointed at a local receiver) is used instead and is its creator's to start and close.
    """

    def __init__(
        self,
        settings: Settings,
        audit: AuditSink | None = None,
        *,
        max_header_bytes: int = MAX_HEADER_BYTES,
        escalations: EscalationSink | None = None,
    ) -> None:
        self.settings = settings
        self.max_header_bytes = max_header_bytes  # a request head this large gets 431
        self.calls = ActiveCalls()  # the calls in progress: what a drain waits for
        # first: a webhook without a secret or a bad pack fails before anything starts
        self._owned_notifier: EscalationNotifier | None = None
        if escalations is None:
            self._owned_notifier = load_escalation_notifier(settings)  # not started yet: no task, no socket
            escalations = self._owned_notifier
        else:
            check_escalation_settings(settings)
        self.escalations = escalations
        self.policy_gate = load_policy_gate(settings)
        self._owned_writer: AuditWriter | None = None
        if audit is None:
            self._owned_writer = make_writer(settings)
            audit = self._owned_writer
        from hybrid_agent.telemetry import TelemetrySink, build_telemetry

        self.telemetry = build_telemetry(settings)  # spans and metrics see every record on its way to the audit
        if self.telemetry is not None:
            audit = TelemetrySink(audit, self.telemetry)
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
    def tls(self) -> bool:
        """Whether this bridge terminates TLS itself (``--tls-cert`` / ``--tls-key``)."""
        return self.settings.tls_cert_file is not None or self.settings.tls_key_file is not None

    @property
    def ws_base_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.settings.host}:{self.port}/v1"

    @property
    def base_url(self) -> str:
        """What ``AsyncOpenAI(base_url=...)`` takes: ``https://`` with TLS, else ``http://``."""
        return f"{'https' if self.tls else 'http'}://{self.settings.host}:{self.port}/v1"

    async def start(self) -> None:
        tls = check_tls(self.settings)  # TlsUnavailable for a bad certificate or key, before anything starts
        if self._owned_writer is not None:
            await self._owned_writer.start()  # raises SchemaOutdated before any call is taken
            await self._close_interrupted_calls()
        await self.connector.start()
        if self._owned_notifier is not None:
            await self._owned_notifier.start()
        if self.policy_gate is not None:
            # each check carries the session state it was asked with, so the order in which workers
            # finish does not change a decision; several workers keep one caller's huge text from
            # holding up every other call's checks
            self._gate_executor = concurrent.futures.ThreadPoolExecutor(GATE_WORKERS, thread_name_prefix="policy-gate")
            await asyncio.get_running_loop().run_in_executor(self._gate_executor, lambda: self.policy_gate.analyzer)  # warm up
        app = build_app(
            self.settings, self.connector, self.audit, self.policy_gate, self._gate_executor, escalations=self.escalations,
            calls=self.calls,
        )
        config = uvicorn.Config(
            app,
            # h11 with a deadline on request headers and 431 for an oversize head (server/http.py)
            http=guarded_h11_protocol(self.settings.header_timeout_s, self.max_header_bytes),
            h11_max_incomplete_event_size=self.max_header_bytes,
            ws="websockets-sansio",
            ws_max_size=max(HARD_FRAME_LIMIT, self.settings.max_message_bytes * 4),
            ws_per_message_deflate=False,
            log_level="warning",
            lifespan="off",
            # HTTPS and WSS on the same port with a certificate; checked above, loaded again by uvicorn
            ssl_certfile=str(tls[0]) if tls else None,
            ssl_keyfile=str(tls[1]) if tls else None,
            ssl_context_factory=_minimum_tls_1_2 if tls else None,
        )
        install_log_redaction()  # uvicorn.Config just (re)configured its handlers: no frame contents in them
        self._server = uvicorn.Server(config)
        self._sock = listening_socket(self.settings.host, self.settings.port, self.settings.reuse_port)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def _close_interrupted_calls(self) -> None:
        """Calls a crash left open are closed in the audit as ``interrupted`` (at their last record).

        SQLite is one process's database, so every open call is a crash's; on a shared
        PostgreSQL only calls idle for the grace period before this process started are
        (another worker's live call cannot be told apart; ``audit close-interrupted`` is the
        operator's tool for the rest).
        """
        from hybrid_agent.audit.store import to_url

        assert self._owned_writer is not None
        sole = to_url(self.settings.database_url).get_backend_name() == "sqlite"
        try:
            closed = await self._owned_writer.close_interrupted_calls(sole_writer=sole)
        except Exception as exc:  # never a reason not to take calls: the records can be closed later
            log.warning("audit: could not close calls left open by a crash: %s", type(exc).__name__)
            return
        if closed:
            log.warning("audit: %d call(s) left open by an earlier crash recorded as interrupted", len(closed))

    async def drain(self, deadline_s: float | None = None) -> int:
        """SIGTERM: take no new calls, let those in progress finish up to ``deadline_s``
        (``HYBRID_AGENT_DRAIN_S``), end the rest cleanly; then :meth:`stop` can follow.
        Returns how many calls were ended at the deadline."""
        goodbye = self.policy_gate.pack.clips.get("goodbye") if self.policy_gate is not None else None
        goodbye_s = (goodbye.duration_ms + GOODBYE_TAIL_MS) / 1000.0 if goodbye is not None else 0.0
        return await self.calls.drain(self.settings.drain_s if deadline_s is None else deadline_s, goodbye_s=goodbye_s)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.connector.stop()
        if self._gate_executor is not None:
            await asyncio.to_thread(self._gate_executor.shutdown, True)  # never block the event loop
        if self.policy_gate is not None:
            await asyncio.to_thread(self.policy_gate.close)
        if self._sock is not None:
            self._sock.close()
        if self._owned_notifier is not None:
            await self._owned_notifier.aclose()  # what the calls escalated is delivered (a few seconds at most)
        if self._owned_writer is not None:
            await self._owned_writer.close()
        if self.telemetry is not None:
            await asyncio.to_thread(self.telemetry.shutdown)  # the last spans and metrics go out

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
