"""An in-process bridge on the embedded simulator, as the end-to-end tests configure it."""

from __future__ import annotations

from hybrid_agent.settings import Settings

TOKEN = "test-bridge-token"


def bridge_settings(**kw: object) -> Settings:
    """Settings for ``BridgeServer``: the embedded simulator, a free port, the test token; ``kw`` overrides."""
    base = {"upstream": "sim", "host": "127.0.0.1", "port": 0, "bridge_tokens": [TOKEN]}
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]
