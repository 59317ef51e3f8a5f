"""Typed audit records the call session emits as ``Audit`` actions.

The session layer never writes SQL: it hands these records to an audit sink.
Ids are deterministic (derived from the call id and the turn sequence), so a
record replayed from a spool lands once.  Times are milliseconds since the call
started (``at_ms``), except ``CallStarted.started_at`` which is wall-clock epoch
seconds.  Text fields are passed as given; the PII gate redacts before they
reach the store, and ``redacted`` says whether that has happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class CallStarted:
    call_id: str
    started_at: float
    channel: str
    model: str
    upstream: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    call_id: str
    at_ms: float
    outcome: str  # completed | client_closed | upstream_closed | error


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One finished turn; ``seq`` orders turns by when speech started."""

    call_id: str
    seq: int
    role: Role
    item_id: str
    text: str | None
    status: str  # completed | incomplete | cancelled | transcription_failed
    started_ms: float
    ended_ms: float
    audio_ms: float = 0.0
    response_id: str | None = None
    redacted: bool = False

    @property
    def turn_id(self) -> str:
        return f"{self.call_id}/turn/{self.seq}"


@dataclass(frozen=True, slots=True)
class TurnInterrupted:
    """What the caller actually heard of an assistant turn cut short by barge-in."""

    call_id: str
    seq: int
    item_id: str
    audio_end_ms: float
    heard_text: str
    at_ms: float
    redacted: bool = False


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    call_id: str
    tool_call_id: str
    name: str
    arguments: str
    at_ms: float
    response_id: str | None = None
    redacted: bool = False


@dataclass(frozen=True, slots=True)
class ToolResultRecord:
    call_id: str
    tool_call_id: str
    output: str
    at_ms: float
    redacted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


AuditRecord = Union[CallStarted, CallEnded, TurnRecord, TurnInterrupted, ToolCallRecord, ToolResultRecord]
