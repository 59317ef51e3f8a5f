"""Realtime event validation and construction.

The SDK declares its unions with its own ``PropertyInfo(discriminator=...)``
marker, which pydantic does not read; we rebuild them with
``Field(discriminator="type")`` so validation dispatches on ``type`` in about a
microsecond instead of trying all forty-odd members.
"""

from __future__ import annotations

import secrets
import typing
from collections.abc import Callable
from functools import cache
from typing import Annotated, Any, Union

from openai.types.realtime import realtime_client_event, realtime_server_event
from pydantic import BaseModel, Field, TypeAdapter, ValidationError


class EventValidationError(ValueError):
    """An event does not match the Realtime protocol."""

    def __init__(self, message: str, *, event_type: str | None = None, param: str | None = None):
        super().__init__(message)
        self.event_type = event_type
        self.param = param


def _members(union_alias: Any) -> tuple[type[BaseModel], ...]:
    inner = typing.get_args(union_alias)[0]  # Annotated[Union[...], PropertyInfo]
    return typing.get_args(inner)


def _event_types(members: tuple[type[BaseModel], ...]) -> frozenset[str]:
    return frozenset(typing.get_args(m.model_fields["type"].annotation)[0] for m in members)


SERVER_EVENT_MODELS = _members(realtime_server_event.RealtimeServerEvent)
CLIENT_EVENT_MODELS = _members(realtime_client_event.RealtimeClientEvent)
SERVER_EVENT_TYPES = _event_types(SERVER_EVENT_MODELS)
CLIENT_EVENT_TYPES = _event_types(CLIENT_EVENT_MODELS)


@cache
def _server_adapter() -> TypeAdapter[Any]:
    return TypeAdapter(Annotated[Union[SERVER_EVENT_MODELS], Field(discriminator="type")])  # type: ignore[valid-type]


@cache
def _client_adapter() -> TypeAdapter[Any]:
    return TypeAdapter(Annotated[Union[CLIENT_EVENT_MODELS], Field(discriminator="type")])  # type: ignore[valid-type]


def _validate(adapter: TypeAdapter[Any], known: frozenset[str], event: Any, side: str) -> BaseModel:
    if not isinstance(event, dict):
        raise EventValidationError(f"{side} event must be a JSON object")
    event_type = event.get("type")
    if not isinstance(event_type, str):
        raise EventValidationError(f"{side} event has no string 'type'", param="type")
    if event_type not in known:
        raise EventValidationError(
            f"Invalid value: '{event_type}'. Unknown {side} event type.", event_type=event_type, param="type"
        )
    try:
        return adapter.validate_python(event)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"][1:]) or "type"
        raise EventValidationError(
            f"Invalid '{event_type}' event: {loc}: {first['msg']}", event_type=event_type, param=loc
        ) from None


def validate_server_event(event: Any) -> BaseModel:
    """Validate a server event dict against the SDK's server event models."""
    return _validate(_server_adapter(), SERVER_EVENT_TYPES, event, "server")


def validate_client_event(event: Any) -> BaseModel:
    """Validate a client event dict against the SDK's client event models."""
    return _validate(_client_adapter(), CLIENT_EVENT_TYPES, event, "client")


def unknown_parameters(model: BaseModel, prefix: str = "") -> list[str]:
    """Dotted paths of fields a validated event carries that the SDK's models do not know.

    The SDK models accept extra keys (``model_extra``); the real service rejects them
    with ``unknown_parameter`` (for example a beta-era ``session.input_audio_transcription``).
    """
    found = [f"{prefix}{key}" for key in (model.model_extra or {})]
    for name, value in model:
        for path, item in _children(f"{prefix}{name}", value):
            found.extend(unknown_parameters(item, f"{path}."))
    return found


def _children(path: str, value: Any) -> list[tuple[str, BaseModel]]:
    if isinstance(value, BaseModel):
        return [(path, value)]
    if isinstance(value, (list, tuple)):
        return [(f"{path}[{i}]", v) for i, v in enumerate(value) if isinstance(v, BaseModel)]
    return []


def new_id(prefix: str) -> str:
    """An id shaped like the service's (``event_...``, ``item_...``, ``resp_...``)."""
    return f"{prefix}_{secrets.token_hex(10)}"


def error_event(
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    event_id: str | None = None,
    error_type: str = "invalid_request_error",
    id_factory: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """A Realtime ``error`` server event (the shape the real service sends).

    ``event_id`` names the client event that caused the error, when known;
    ``id_factory`` makes this event's own id (default: random, like the service's).
    """
    return {
        "type": "error",
        "event_id": (id_factory or new_id)("event"),
        "error": {
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        },
    }
