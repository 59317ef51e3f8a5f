"""Open Realtime connections upstream with the ``openai`` SDK.

Every target goes through ``AsyncOpenAI(...).realtime.connect(model=...)`` (or
the Azure client), so the bridge speaks to the simulator exactly as it speaks
to the real service.  The SDK's own reconnect is left off: an upstream drop is
the call session's business.  The API key lives here and in nothing that faces
a client.
"""

from __future__ import annotations

from typing import Any

from openai import AsyncAzureOpenAI, AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection

from hybrid_agent.settings import Settings

#: upstream frames can be larger than a client's (response.done carries whole items)
UPSTREAM_MAX_FRAME = 16 * 2**20


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
        if self.target == "sim" and self._simulator is None:
            from hybrid_agent.simulator.scenario import default_scenario, load_scenario
            from hybrid_agent.simulator.server import RealtimeSimulator

            scenario = load_scenario(self.settings.sim_scenario) if self.settings.sim_scenario else default_scenario()
            self._simulator = RealtimeSimulator(scenario)
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
            return AsyncOpenAI(api_key="sim-no-key", base_url=self._simulator.base_url, max_retries=0)
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
            return AsyncOpenAI(api_key=key or "no-key", websocket_base_url=self.target, max_retries=0)
        if not key:
            raise UpstreamError("openai upstream needs OPENAI_API_KEY")
        return AsyncOpenAI(api_key=key, max_retries=0)

    async def connect(self, model: str | None = None) -> AsyncRealtimeConnection:
        """Open one upstream Realtime connection; raises ``UpstreamError`` with a safe message."""
        if self._client is None:
            await self.start()
        assert self._client is not None
        try:
            return await self._client.realtime.connect(
                model=model or self.settings.model,
                websocket_connection_options={"max_size": UPSTREAM_MAX_FRAME},
            ).enter()
        except Exception as exc:  # the SDK raises websockets/OS errors here
            raise UpstreamError(f"cannot connect to upstream {self.label}: {type(exc).__name__}") from exc
