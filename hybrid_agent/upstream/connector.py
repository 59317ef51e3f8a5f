"""Open Realtime connections upstream with the ``openai`` SDK.

Every target goes through ``AsyncOpenAI(...).realtime.connect(model=...)`` (or
the Azure client), so the bridge speaks to the simulator exactly as it speaks
to the real service.  The SDK's own reconnect is left off: an upstream drop is
the call session's business.  The API key lives here and in nothing that faces
a client.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from openai import AsyncAzureOpenAI, AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection

from hybrid_agent.settings import Settings
from hybrid_agent.upstream.link import UpstreamLink

log = logging.getLogger(__name__)

#: upstream frames can be larger than a client's (response.done carries whole items)
UPSTREAM_MAX_FRAME = 16 * 2**20
#: a start-up handshake that takes longer than this means the upstream is not usable
CHECK_TIMEOUT_S = 10.0


def normalize_ws_url(url: str) -> str:
    """The base URL the SDK wants for a ``ws(s)://`` upstream (it appends ``/realtime`` itself).

    ``ws://h:p``, ``ws://h:p/v1``, ``ws://h:p/v1/`` and ``ws://h:p/v1/realtime`` all mean the
    Realtime endpoint at ``/v1/realtime``; a query string (``?api-version=...``) is kept.
    """
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if path.endswith("/realtime"):
        path = path[: -len("/realtime")]
    if not path:
        path = "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def describe_failure(exc: BaseException) -> str:
    """Why a connect failed, in words safe to log and show (never the URL, which may carry a key)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        hint = " (wrong path?)" if status == 404 else " (wrong key?)" if status in (401, 403) else ""
        return f"the upstream answered HTTP {status}{hint}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


class UpstreamError(RuntimeError):
    """The upstream could not be reached or refused us; the message is safe to show a caller."""


class UpstreamConnector:
    """Knows where the model is and opens one connection per call.

    For ``sim`` it starts the embedded simulator in-process on first use.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.target = settings.upstream
        self._simulator: Any = None
        self._client: AsyncOpenAI | None = None

    @property
    def label(self) -> str:
        """Where calls go, safe to show and store: scheme and host only (a URL may carry a key)."""
        if self.target.startswith(("ws://", "wss://")):
            from urllib.parse import urlsplit

            parts = urlsplit(self.target)
            return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
        return self.target

    async def start(self) -> None:
        if self._client is not None:
            return
        if self.target == "sim" and self._simulator is None:
            import secrets

            from hybrid_agent.simulator.scenario import default_scenario, load_scenario
            from hybrid_agent.simulator.server import RealtimeSimulator

            scenario = load_scenario(self.settings.sim_scenario) if self.settings.sim_scenario else default_scenario()
            # a fresh key per process: another local process cannot reach the model around the bridge's token and audit
            self._simulator = RealtimeSimulator(scenario, api_key=secrets.token_urlsafe(32))
            await self._simulator.start()
        self._client = self._make_client()

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._simulator is not None:
            await self._simulator.stop()
            self._simulator = None

    def _make_client(self) -> AsyncOpenAI:
        key = self.settings.openai_api_key.get_secret_value() if self.settings.openai_api_key else None
        if self.target == "sim":
            return AsyncOpenAI(api_key=self._simulator.api_key, base_url=self._simulator.base_url, max_retries=0)
        if self.target == "azure":
            if not self.settings.azure_endpoint or not key:
                raise UpstreamError("azure upstream needs HYBRID_AGENT_AZURE_ENDPOINT and OPENAI_API_KEY")
            return AsyncAzureOpenAI(
                azure_endpoint=self.settings.azure_endpoint,
                api_version=self.settings.azure_api_version,
                api_key=key,
                max_retries=0,
            )
        if self.target.startswith(("ws://", "wss://")):
            return AsyncOpenAI(api_key=key or "no-key", websocket_base_url=normalize_ws_url(self.target), max_retries=0)
        if not key:
            raise UpstreamError("openai upstream needs OPENAI_API_KEY")
        return AsyncOpenAI(api_key=key, max_retries=0)

    async def connect(self, model: str | None = None) -> UpstreamLink:
        """Open one upstream Realtime connection; raises ``UpstreamError`` with a safe message.

        Compression is off: the SDK turns it off only when it is given no ``max_size``, and
        permessage-deflate on base64 audio costs CPU (10 % of the bridge's under load) for
        little gain on a data-centre link."""
        if self._client is None:
            await self.start()
        assert self._client is not None
        try:
            sdk: AsyncRealtimeConnection = await self._client.realtime.connect(
                model=model or self.settings.model,
                websocket_connection_options={"max_size": UPSTREAM_MAX_FRAME, "compression": None},
            ).enter()
        except Exception as exc:  # the SDK raises websockets/OS errors here
            cause = describe_failure(exc)
            log.warning("cannot connect to upstream %s (model %s): %s", self.label, model or self.settings.model, cause)
            raise UpstreamError(f"cannot connect to upstream {self.label}: {cause}") from exc
        return UpstreamLink(sdk)

    async def check(self) -> None:
        """At start-up: is the upstream usable?  Raises ``UpstreamError`` with one line saying what is wrong.

        The simulator and a ``ws(s)://`` URL must answer a Realtime handshake; for OpenAI and
        Azure a key (and endpoint) must be set, checked when the client is made.
        """
        if self._client is None:
            await self.start()
        if self.target == "sim" or self.target.startswith(("ws://", "wss://")):
            import asyncio

            try:
                conn = await asyncio.wait_for(self.connect(), CHECK_TIMEOUT_S)
            except TimeoutError:
                raise UpstreamError(f"cannot connect to upstream {self.label}: no handshake within {CHECK_TIMEOUT_S:.0f} s") from None
            await conn.close()
