"""The OpenAI Realtime protocol (GA names) as the rest of the package sees it.

Validation uses the ``openai`` SDK's own event models, rebuilt as discriminated
unions on ``type`` (the SDK's ``recv()`` does not validate).
"""

from hybrid_agent.protocol.events import (
    EventValidationError,
    error_event,
    new_id,
    unknown_parameters,
    validate_client_event,
    validate_server_event,
)

__all__ = [
    "EventValidationError",
    "error_event",
    "new_id",
    "unknown_parameters",
    "validate_client_event",
    "validate_server_event",
]
