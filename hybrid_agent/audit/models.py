"""The audit schema as SQLAlchemy 2.x typed models.  Alembic migrations (``migrations/``) own the truth.

Every audit table is append-only: a record is one row, written once, never
updated.  Facts that arrive later (a call's end, what the caller heard of an
interrupted turn, a tool's result) are rows of their own, joined on ``call_id``.
Primary keys are the records' deterministic ids (``TurnRecord.record_id`` ...),
so replaying a record is a no-op.

There are deliberately no foreign keys: a record whose parent was lost (a
quarantined spool line) must still land, and integrity of the whole trail is the
job of the hash-chained ``ledger``, checked by ``hybrid-agent audit verify``.

Times: ``calls.started_at`` is epoch seconds (UTC); every ``*_ms`` column is
milliseconds since the call started.  No ``DateTime`` columns: a float encodes the
same on SQLite and PostgreSQL, which keeps the hash chain portable.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Double, Index, Integer, MetaData, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only has a 64-bit INTEGER; BigInteger there would not be a rowid alias.
LedgerSeq = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Call(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    started_at: Mapped[float] = mapped_column(Double, index=True)
    channel: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    upstream: Mapped[str] = mapped_column(Text)
    caller_pseudonym: Mapped[str | None] = mapped_column(Text, index=True)
    account_pseudonym: Mapped[str | None] = mapped_column(Text, index=True)
    policy_pack: Mapped[str | None] = mapped_column(Text)
    policy_version: Mapped[str | None] = mapped_column(Text)
    gate_mode: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(None, "channel", "started_at"),
        Index(None, "policy_version", "started_at"),
    )


class CallEnding(Base):
    __tablename__ = "call_endings"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    call_id: Mapped[str] = mapped_column(Text, unique=True)
    at_ms: Mapped[float] = mapped_column(Double)
    outcome: Mapped[str] = mapped_column(Text, index=True)


class Turn(Base):
    __tablename__ = "turns"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    call_id: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(Text)
    item_id: Mapped[str] = mapped_column(Text)
    response_id: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    started_ms: Mapped[float] = mapped_column(Double)
    ended_ms: Mapped[float] = mapped_column(Double)
    audio_ms: Mapped[float] = mapped_column(Double)
    text: Mapped[str | None] = mapped_column(Text)
    redaction: Mapped[str] = mapped_column(Text)  # caller (redacted before the store) | pii_gate (redacted by the writer)

    __table_args__ = (Index(None, "call_id", "seq", unique=True),)


class TurnInterruption(Base):
    __tablename__ = "turn_interruptions"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    call_id: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[str] = mapped_column(Text)
    audio_end_ms: Mapped[float] = mapped_column(Double)
    heard_text: Mapped[str] = mapped_column(Text)
    at_ms: Mapped[float] = mapped_column(Double)
    redaction: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "call_id", "seq"),)


class ToolCall(Base):
    __tablename__ = "tool_calls"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    call_id: Mapped[str] = mapped_column(Text)
    tool_call_id: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text, index=True)
    arguments: Mapped[str] = mapped_column(Text)
    response_id: Mapped[str | None] = mapped_column(Text)
    at_ms: Mapped[float] = mapped_column(Double)
    redaction: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "call_id", "at_ms"),)


class ToolResult(Base):
    __tablename__ = "tool_results"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    call_id: Mapped[str] = mapped_column(Text)
    tool_call_id: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    output: Mapped[str] = mapped_column(Text)
    extra: Mapped[str | None] = mapped_column(Text)  # JSON
    at_ms: Mapped[float] = mapped_column(Double)
    redaction: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "call_id", "tool_call_id"),)


class PolicyDecision(Base):
    __tablename__ = "policy_decisions"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    call_id: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(Text)
    rule_id: Mapped[str] = mapped_column(Text)
    effect: Mapped[str] = mapped_column(Text)
    violation: Mapped[bool] = mapped_column(Boolean)
    policy_pack: Mapped[str | None] = mapped_column(Text)
    policy_version: Mapped[str] = mapped_column(Text)
    subject_id: Mapped[str | None] = mapped_column(Text)
    input_digest: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    at_ms: Mapped[float] = mapped_column(Double)
    redaction: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index(None, "call_id", "seq", unique=True),
        Index(None, "violation", "call_id"),
        Index(None, "rule_id", "call_id"),
    )


class Disclosure(Base):
    __tablename__ = "disclosures"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    call_id: Mapped[str] = mapped_column(Text)
    disclosure_id: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    turn_seq: Mapped[int | None] = mapped_column(Integer)
    rule_id: Mapped[str | None] = mapped_column(Text)
    at_ms: Mapped[float] = mapped_column(Double)
    redaction: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "call_id", "at_ms"),)


class CallEvent(Base):
    """Errors and refusals (``CallEventRecord``): upstream errors, client events the upstream or
    the bridge refused, bridge-side facts such as a model rewrite."""

    __tablename__ = "call_events"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    call_id: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(Integer)
    at_ms: Mapped[float] = mapped_column(Double)
    source: Mapped[str] = mapped_column(Text)  # upstream | upstream_refused | bridge_refused | bridge
    kind: Mapped[str] = mapped_column(Text)
    event_type: Mapped[str | None] = mapped_column(Text)
    param: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    client_event_id: Mapped[str | None] = mapped_column(Text)
    redaction: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index(None, "call_id", "seq", unique=True),
        Index(None, "source", "event_type", "call_id"),
    )


class GateActionRow(Base):
    """What the enforcing middle layer did (``GateActionRecord``): audio held or blocked, fallbacks
    spoken, truncates clamped or refused, tool calls decided and run, escalations, gate failures."""

    __tablename__ = "gate_actions"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    call_id: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(Integer)
    at_ms: Mapped[float] = mapped_column(Double)
    action: Mapped[str] = mapped_column(Text)  # one of records.GATE_ACTIONS
    mode: Mapped[str | None] = mapped_column(Text)  # observe | monitor | hold
    item_id: Mapped[str | None] = mapped_column(Text)
    rule_id: Mapped[str | None] = mapped_column(Text)
    effect: Mapped[str | None] = mapped_column(Text)
    held_ms: Mapped[float | None] = mapped_column(Double)
    leaked_ms: Mapped[float | None] = mapped_column(Double)
    audio_end_ms: Mapped[float | None] = mapped_column(Double)
    requested_ms: Mapped[float | None] = mapped_column(Double)
    latency_ms: Mapped[float | None] = mapped_column(Double)
    status: Mapped[str | None] = mapped_column(Text)
    tool: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    redaction: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index(None, "call_id", "seq", unique=True),
        Index(None, "action", "call_id"),
    )


class ResponseMetricsRow(Base):
    """Per model response (``ResponseMetrics``): time to first audio, the gate's hold, latency
    budgets exceeded, and the token usage of its ``response.done`` (what ``audit cost`` prices)."""

    __tablename__ = "response_metrics"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    call_id: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(Integer)
    at_ms: Mapped[float] = mapped_column(Double)
    model: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    response_id: Mapped[str | None] = mapped_column(Text)
    turn_seq: Mapped[int | None] = mapped_column(Integer)
    user_seq: Mapped[int | None] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(Text)
    reference_ms: Mapped[float | None] = mapped_column(Double)
    first_audio_ms: Mapped[float | None] = mapped_column(Double)
    released_ms: Mapped[float | None] = mapped_column(Double)
    ttfa_ms: Mapped[float | None] = mapped_column(Double)
    gate_ms: Mapped[float | None] = mapped_column(Double)
    audio_ms: Mapped[float] = mapped_column(Double)
    over_budget: Mapped[str | None] = mapped_column(Text)
    input_text_tokens: Mapped[int] = mapped_column(Integer)
    input_audio_tokens: Mapped[int] = mapped_column(Integer)
    input_image_tokens: Mapped[int] = mapped_column(Integer)
    cached_text_tokens: Mapped[int] = mapped_column(Integer)
    cached_audio_tokens: Mapped[int] = mapped_column(Integer)
    output_text_tokens: Mapped[int] = mapped_column(Integer)
    output_audio_tokens: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index(None, "call_id", "seq", unique=True),
        Index(None, "over_budget", "call_id"),
    )


class LedgerEntry(Base):
    """One link of the global hash chain: ``hash = sha256(prev_hash + canonical(record))``."""

    __tablename__ = "ledger"

    seq: Mapped[int] = mapped_column(LedgerSeq, primary_key=True, autoincrement=False)
    table_name: Mapped[str] = mapped_column(Text)
    row_id: Mapped[str] = mapped_column(Text)
    call_id: Mapped[str] = mapped_column(Text, index=True)
    record_hash: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(Text)
    written_at: Mapped[float] = mapped_column(Double)

    __table_args__ = (Index(None, "table_name", "row_id", unique=True),)


metadata = Base.metadata

RECORD_TABLES = (
    Call.__table__,
    CallEnding.__table__,
    Turn.__table__,
    TurnInterruption.__table__,
    ToolCall.__table__,
    ToolResult.__table__,
    PolicyDecision.__table__,
    Disclosure.__table__,
    CallEvent.__table__,
    GateActionRow.__table__,
    ResponseMetricsRow.__table__,
)
"""Tables whose rows are chained in the ledger, by name below."""

TABLES = {t.name: t for t in RECORD_TABLES}
LEDGER = LedgerEntry.__table__
AUDIT_TABLE_NAMES = tuple(TABLES) + (LEDGER.name,)
