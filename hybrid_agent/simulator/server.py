"""The embedded Realtime simulator server.

A ``websockets`` server at ``/v1/realtime?model=...`` that speaks the GA
Realtime protocol.  Point the ``openai`` SDK at it with
``AsyncOpenAI(base_url=sim.base_url, api_key=...)``::

    async with RealtimeSimulator(load_scenario("banking.yaml"), validate=True) as sim:
        client = AsyncOpenAI(base_url=sim.base_url, api_key="sk-test")
        async with client.realtime.connect(model="gpt-realtime") as conn:
            ...

Each connection is an independent session walking the scenario from the start.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import json
import logging
import sys
import time
import weakref
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from hybrid_agent.protocol.events import new_id
from hybrid_agent.simulator.scenario import Scenario, default_scenario
from hybrid_agent.simulator.session import SimSession, SimulatorValidationError

__all__ = ["RealtimeSimulator", "SimulatorValidationError", "serve_simulator"]

log = logging.getLogger("hybrid_agent.simulator")

REALTIME_PATH = "/v1/realtime"
DEFAULT_MODEL = "gpt-realtime"
#: how many sent events ``RealtimeSimulator.emitted`` keeps (the newest; older ones are dropped).
#: An audio delta is ~7 kB of JSON, so a full log is a few tens of MB at most, however long the run.
EMITTED_LIMIT = 4096
#: and at most this many bytes of them (200 session.updated echoes of 0.9 MiB instructions are 180 MB)
EMITTED_MAX_BYTES = 16 * 2**20
#: how many validation failures ``RealtimeSimulator.validation_errors`` keeps (the first ones)
VALIDATION_ERRORS_LIMIT = 100


def _json_response(status: int, reason: str, message: str, code: str | None) -> Response:
    body = json.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "code": code, "param": None}}
    ).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return Response(status, reason, headers, body)


class RealtimeSimulator:
    """A scripted Realtime server (see the module docstring).

    ``emitted`` keeps the newest ``record_limit`` server events sent on any
    connection (default :data:`EMITTED_LIMIT`; when ``record`` is true): a ring
    buffer, so a long or fuzzing run does not grow without bound.  Each
    connection's own state (its conversation, bounded too, see
    ``session.MAX_CONVERSATION_ITEMS``) is dropped when it closes; ``sessions``
    holds the live ones only (weakly).

    With ``validate=True`` each event is validated against the SDK's server
    event models before it is sent; an invalid one is recorded in
    ``validation_errors`` (the first :data:`VALIDATION_ERRORS_LIMIT`), aborts its
    connection (close code 1011) and makes :meth:`stop` raise
    :class:`SimulatorValidationError`.

    With ``api_key`` the handshake requires ``Authorization: Bearer <api_key>``
    and answers HTTP 401 otherwise, like the real service.
    """

    def __init__(
        self,
        scenario: Scenario | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        validate: bool = False,
        max_size: int = 16 * 2**20,
        record: bool = True,
        record_limit: int | None = None,
    ) -> None:
        self.scenario = scenario if scenario is not None else default_scenario()
        self.host = host
        self._port = port
        self.api_key = api_key
        self.validate = validate
        self.max_size = max_size
        self.record = record
        self.emitted: collections.deque[dict] = collections.deque(  # type: ignore[type-arg]
            maxlen=EMITTED_LIMIT if record_limit is None else record_limit
        )
        self._emitted_sizes: collections.deque[int] = collections.deque()
        self._emitted_bytes = 0
        self.validation_errors: list[SimulatorValidationError] = []
        self.connections = 0
        self.sessions: weakref.WeakSet[SimSession] = weakref.WeakSet()
        self._server: Server | None = None
        self._refuse_until = 0.0  # monotonic: an outage refuses connections until then
        self.refused_during_outage = 0

    # lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Start listening (``port=0`` picks a free port; see :attr:`port`)."""
        if self._server is not None:
            return
        self._server = await serve(
            self._handler,
            self.host,
            self._port,
            process_request=self._process_request,
            max_size=self.max_size,
            close_timeout=2,
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close all connections and stop listening.

        Raises :class:`SimulatorValidationError` if ``validate`` caught an invalid event.
        """
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        if self.validation_errors:
            raise self.validation_errors[0]

    async def __aenter__(self) -> RealtimeSimulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and self.validation_errors:
            # do not mask the body's own failure
            self.validation_errors.clear()
        await self.stop()

    # addresses ---------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """What ``AsyncOpenAI(base_url=...)`` takes."""
        return f"http://{self.host}:{self._port}/v1"

    @property
    def ws_url(self) -> str:
        """WebSocket base; the endpoint is ``ws_url + "/realtime?model=..."``."""
        return f"ws://{self.host}:{self._port}/v1"

    # connections -------------------------------------------------------------

    def refuse_connections(self, seconds: float) -> None:
        """An outage: new connections are refused with HTTP 503 for ``seconds`` (a scenario's close fault)."""
        self._refuse_until = max(self._refuse_until, time.monotonic() + seconds)
        self.refused_during_outage = 0

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path.rstrip("/")
        if path != REALTIME_PATH:
            return _json_response(404, "Not Found", f"Invalid URL (GET {path or '/'})", "not_found")
        if time.monotonic() < self._refuse_until:
            self.refused_during_outage += 1
            return _json_response(503, "Service Unavailable", "The service is temporarily unavailable.", "service_unavailable")
        if self.api_key is not None:
            auth = request.headers.get("Authorization", "")
            if not hmac.compare_digest(auth.encode(), f"Bearer {self.api_key}".encode()):
                message = (
                    "Incorrect API key provided." if auth.startswith("Bearer ") else
                    "You didn't provide an API key. You need to provide your API key in an Authorization header "
                    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                )
                return _json_response(401, "Unauthorized", message, "invalid_api_key")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        model = (query.get("model") or [DEFAULT_MODEL])[0]
        self.connections += 1
        session = SimSession(self, ws, self.scenario, model)
        self.sessions.add(session)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)

    def record_event(self, event: dict, size: int) -> None:
        """Keep ``event`` in ``emitted``, dropping the oldest past the count or byte bound."""
        if self.emitted.maxlen == 0:
            return
        if len(self.emitted) == self.emitted.maxlen and self._emitted_sizes:
            self._emitted_bytes -= self._emitted_sizes.popleft()
        self.emitted.append(event)
        self._emitted_sizes.append(size)
        self._emitted_bytes += size
        while self._emitted_bytes > EMITTED_MAX_BYTES and len(self.emitted) > 1:
            self.emitted.popleft()
            self._emitted_bytes -= self._emitted_sizes.popleft()

    # hooks for measurement (bench/loadgen.py stamps event ids with the send time) -------------------

    def new_event_id(self) -> str:
        """The ``event_id`` of the next server event that has none (the real service's shape)."""
        return new_id("event")

    def client_event_received(self, event: dict) -> None:
        """Called with each client event as parsed, before it is validated and handled."""

    def output_audio(self, chunk: bytes) -> bytes:
        """Each output audio chunk as synthesized (in the session's output format); what it returns is sent."""
        return chunk

    def add_validation_error(self, err: SimulatorValidationError) -> None:
        if len(self.validation_errors) < VALIDATION_ERRORS_LIMIT:
            self.validation_errors.append(err)


async def serve_simulator(host: str, port: int, scenario: Scenario | None, api_key: str | None = None) -> None:
    """Run a simulator until cancelled, announcing its address on stdout.

    Without ``api_key`` any local process can connect: a one-line warning on stderr says so.
    """
    sim = RealtimeSimulator(scenario, host=host, port=port, api_key=api_key or None, record=False)
    await sim.start()
    if not api_key:
        print(
            "warning: simulator is unauthenticated (any local process can connect); "
            "set --api-key or HYBRID_AGENT_SIM_API_KEY",
            file=sys.stderr, flush=True,
        )
    print(f"simulator listening on ws://{host}:{sim.port}/v1/realtime", flush=True)
    try:
        await asyncio.Future()
    finally:
        await sim.stop()
