"""Which model a call runs on, and what the bridge says when it is not the one asked for.

A client names a model twice: in the URL (``?model=``) and often again in
``session.update``.  The real service refuses a ``session.update`` whose
``session.model`` differs from the connection's (``The model of a session cannot
be changed.``), and a client that hits that loses its whole configuration:
instructions, tools, voice.  So the bridge resolves the model once, at connect
time, and rewrites ``session.model`` in the client's updates to that model.

Allowed: ``HYBRID_AGENT_MODELS`` (an allow-list); by default the configured model
and its dated snapshots (``gpt-realtime`` and ``gpt-realtime-2025-08-28`` name the
same model at the service).  Anything else is mapped to the configured model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

#: a model name longer than this is not a model name (bounded before any pattern sees it)
MAX_MODEL_NAME = 128
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The model a call runs on and, when it differs, the one the client asked for."""

    used: str
    requested: str | None = None

    @property
    def mapped(self) -> bool:
        return self.requested is not None and self.requested != self.used


def is_snapshot_of(name: str, model: str) -> bool:
    """``gpt-realtime-2025-08-28`` is a dated snapshot of ``gpt-realtime``."""
    return name.startswith(model) and _SNAPSHOT.fullmatch(name, len(model)) is not None


def model_allowed(name: str, configured: str, allow_list: Iterable[str] = ()) -> bool:
    allowed = list(allow_list)
    if allowed:
        return name in allowed
    return name == configured or is_snapshot_of(name, configured)


def choose_model(requested: str | None, configured: str, allow_list: Iterable[str] = ()) -> ModelChoice:
    """The model for a call whose client asked for ``requested`` (``None``: asked for none)."""
    if not requested:
        return ModelChoice(configured)
    if len(requested) <= MAX_MODEL_NAME and model_allowed(requested, configured, allow_list):
        return ModelChoice(requested)
    return ModelChoice(configured, requested[:MAX_MODEL_NAME])
