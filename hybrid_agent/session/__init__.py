"""The sans-I/O call core: events in, actions out."""

from hybrid_agent.session.actions import (
    Action,
    Audit,
    CheckPolicy,
    CheckSpeech,
    CloseClient,
    CloseUpstream,
    NotifyEscalation,
    OpenStandbyUpstream,
    ReconnectUpstream,
    RunTool,
    SendClient,
    SendUpstream,
    StartTimer,
    SwitchUpstream,
)
from hybrid_agent.session.call_session import CallConfig, CallSession, GateConfig

__all__ = [
    "Action",
    "Audit",
    "CallConfig",
    "CheckPolicy",
    "CheckSpeech",
    "CallSession",
    "CloseClient",
    "CloseUpstream",
    "GateConfig",
    "NotifyEscalation",
    "OpenStandbyUpstream",
    "ReconnectUpstream",
    "RunTool",
    "SendClient",
    "SendUpstream",
    "StartTimer",
    "SwitchUpstream",
]
