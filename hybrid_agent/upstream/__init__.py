"""Connections to the model: OpenAI, Azure OpenAI, the embedded simulator, or any Realtime URL."""

from hybrid_agent.upstream.connector import UpstreamConnector, UpstreamError

__all__ = ["UpstreamConnector", "UpstreamError"]
