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
import json
import logging
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from hybrid_agent.simulator.scenario import Scenario, default_scenario
from hybrid_agent.simulator.session import SimSession, SimulatorValidationError

__all__ = ["RealtimeSimulator", "SimulatorValidationError", "serve_simulator"]

log = logging.getLogger("hybrid_agent.simulator")

REALTIME_PATH = "/v1/realtime"
DEFAULT_MODEL = "gpt-realtime"


def _json_response(status: int, reason: str, message: str, code: str | None) -> Response:
    body = json.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "code": code, "param": None}}
    ).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return Response(status, reason, headers, body)


class RealtimeSimulator:
    """A scripted Realtime server (see the module docstring).

    ``emitted`` logs every server event sent on any connection (when ``record``
    is true).  With ``validate=True`` each event is validated against the SDK's
    server event models before it is sent; an invalid one is recorded in
    ``validation_errors``, aborts its connection (close code 1011) and makes
    :meth:`stop` raise :class:`SimulatorValidationError`.
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
    ) -> None:
        self.scenario = scenario if scenario is not None else default_scenario()
        self.host = host
        self._port = port
        self.api_key = api_key
        self.validate = validate
        self.max_size = max_size
        self.record = record
        self.emitted: list[dict] = []  # type: ignore[type-arg]
        self.validation_errors: list[SimulatorValidationError] = []
        self.connections = 0
        self._server: Server | None = None

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

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path.rstrip("/")
        if path != REALTIME_PATH:
            return _json_response(404, "Not Found", f"Invalid URL (GET {path or '/'})", "not_found")
        if self.api_key is not None:
            auth = request.headers.get("Authorization", "")
            if auth != f"Bearer {self.api_key}":
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
        await SimSession(self, ws, self.scenario, model).run()


async def serve_simulator(host: str, port: int, scenario: Scenario | None) -> None:
    """Run a simulator until cancelled, announcing its address on stdout."""
    sim = RealtimeSimulator(scenario, host=host, port=port, record=False)
    await sim.start()
    print(f"simulator listening on ws://{host}:{sim.port}/v1/realtime", flush=True)
    try:
        await asyncio.Future()
    finally:
        await sim.stop()
