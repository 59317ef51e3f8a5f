"""What the call session asks its adapter to do.

The session never performs I/O; it returns these and the adapter (the bridge
server, a test) carries them out in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Union

from hybrid_agent.audit.records import AuditRecord
from hybrid_agent.policy.gate import PolicyCheck


@dataclass(frozen=True, slots=True)
class SendClient:
    """Send an event to the caller.  ``raw`` is the exact text to relay when unchanged."""

    event: dict[str, Any] | None = None
    raw: str | None = None

    def text(self) -> str:
        return self.raw if self.raw is not None else json.dumps(self.event)


@dataclass(frozen=True, slots=True)
class SendUpstream:
    """Send an event to the model.  ``raw`` is the exact text to relay when unchanged."""

    event: dict[str, Any] | None = None
    raw: str | None = None

    def text(self) -> str:
        return self.raw if self.raw is not None else json.dumps(self.event)


@dataclass(frozen=True, slots=True)
class CloseClient:
    code: int = 1000
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CloseUpstream:
    code: int = 1000
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Audit:
    record: AuditRecord


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Call ``CallSession.timer_fired(name, now_ms)`` after ``delay_ms`` (used by gates)."""

    name: str
    delay_ms: float


@dataclass(frozen=True, slots=True)
class CheckPolicy:
    """Decide ``check`` with the policy gate (off the event loop) and feed the outcome back
    with ``CallSession.feed_policy_outcome``."""

    check: PolicyCheck


@dataclass(frozen=True, slots=True)
class CheckSpeech:
    """Decide whether this much of an assistant answer may be spoken (``PolicyGate.decide_speech``,
    off the event loop) and feed the verdict back with ``CallSession.feed_speech_verdict``."""

    check: Any  # session.speech_gate.SpeechCheck (typed there: actions must not import the gate)


@dataclass(frozen=True, slots=True)
class RunTool:
    """Run the server tool ``name`` for the model's call ``call_id`` (validate ``arguments``, run with
    the tool's timeout) and feed the outcome back with ``CallSession.feed_tool_result``."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ReconnectUpstream:
    """The model's socket dropped mid-call: open a new one, then call
    ``CallSession.upstream_reconnected`` (or ``upstream_reconnect_failed``)."""

    attempt: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OpenStandbyUpstream:
    """The upstream session nears its limit (``session.rollover``): open a second upstream in the
    background, then call ``CallSession.standby_ready`` (or ``standby_failed``)."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class SwitchUpstream:
    """Make the standby upstream the call's upstream and close the old one (1000); the
    ``SendUpstream`` actions after this go to the new socket."""

    forced: bool = False


@dataclass(frozen=True, slots=True)
class NotifyEscalation:
    """A rule escalated the call: post the signed escalation webhook, off the audio path.

    Ids, the rule and when only: never the text that matched (it may hold PII)."""

    call_id: str
    rule_id: str
    stage: str
    severity: str | None
    at_ms: float
    pack: str
    pack_version: str


Action = Union[
    SendClient, SendUpstream, CloseClient, CloseUpstream, Audit, StartTimer, CheckPolicy, CheckSpeech, RunTool,
    ReconnectUpstream, OpenStandbyUpstream, SwitchUpstream, NotifyEscalation,
]
