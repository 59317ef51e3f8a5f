"""The sans-I/O call core: events in, actions out."""

from hybrid_agent.session.actions import (
    Action,
    Audit,
    CloseClient,
    CloseUpstream,
    SendClient,
    SendUpstream,
    StartTimer,
)
from hybrid_agent.session.call_session import CallConfig, CallSession

__all__ = [
    "Action",
    "Audit",
    "CallConfig",
    "CallSession",
    "CloseClient",
    "CloseUpstream",
    "SendClient",
    "SendUpstream",
    "StartTimer",
]
