"""Records -> table rows, and the canonical encoding the hash chain is computed over.

A row is a plain dict whose values are already the types the database gives
back (``str``, ``int``, ``float``, ``bool``, ``None``), so the canonical
encoding of a row read from SQLite or PostgreSQL equals the encoding computed
at write time.  Canonical encoding: JSON of ``{"t": table, "r": row}`` with
sorted keys, no whitespace, UTF-8 (``ensure_ascii=False``), floats in Python's
shortest round-trip form.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Boolean, Double, Integer

from hybrid_agent.audit.models import TABLES
from hybrid_agent.audit.privacy import Pseudonymizer, scrub
from hybrid_agent.audit.records import (
    AuditRecord,
    CallEnded,
    CallStarted,
    DisclosureRecord,
    PolicyDecisionRecord,
    ToolCallRecord,
    ToolResultRecord,
    TurnInterrupted,
    TurnRecord,
)

GENESIS = "0" * 64

Row = dict[str, Any]


def _text(value: str | None, redacted: bool) -> str | None:
    if value is None:
        return None
    return value if redacted else scrub(value)


def _how(redacted: bool) -> str:
    return "caller" if redacted else "pii_gate"


def record_to_row(record: AuditRecord, pseudonym: Pseudonymizer) -> tuple[str, Row]:
    """The table and row for one record; identifiers pseudonymized, unredacted text scrubbed."""
    r = record
    if isinstance(r, TurnRecord):
        return "turns", {
            "id": r.record_id, "call_id": r.call_id, "seq": r.seq, "role": r.role, "item_id": r.item_id,
            "response_id": r.response_id, "status": r.status, "started_ms": r.started_ms, "ended_ms": r.ended_ms,
            "audio_ms": r.audio_ms, "text": _text(r.text, r.redacted), "redaction": _how(r.redacted),
        }
    if isinstance(r, TurnInterrupted):
        return "turn_interruptions", {
            "id": r.record_id, "call_id": r.call_id, "seq": r.seq, "item_id": r.item_id,
            "audio_end_ms": r.audio_end_ms, "heard_text": _text(r.heard_text, r.redacted), "at_ms": r.at_ms,
            "redaction": _how(r.redacted),
        }
    if isinstance(r, ToolCallRecord):
        return "tool_calls", {
            "id": r.record_id, "call_id": r.call_id, "tool_call_id": r.tool_call_id, "name": r.name,
            "arguments": _text(r.arguments, r.redacted), "response_id": r.response_id, "at_ms": r.at_ms,
            "redaction": _how(r.redacted),
        }
    if isinstance(r, ToolResultRecord):
        extra = json.dumps(r.extra, sort_keys=True, ensure_ascii=False, default=str) if r.extra else None
        return "tool_results", {
            "id": r.record_id, "call_id": r.call_id, "tool_call_id": r.tool_call_id, "status": r.status,
            "output": _text(r.output, r.redacted), "extra": _text(extra, r.redacted), "at_ms": r.at_ms,
            "redaction": _how(r.redacted),
        }
    if isinstance(r, PolicyDecisionRecord):
        return "policy_decisions", {
            "id": r.record_id, "call_id": r.call_id, "seq": r.seq, "stage": r.stage, "rule_id": r.rule_id,
            "effect": r.effect, "violation": r.is_violation, "policy_pack": r.policy_pack,
            "policy_version": r.policy_version, "subject_id": r.subject_id, "input_digest": r.input_digest,
            "message": _text(r.message, r.redacted), "at_ms": r.at_ms, "redaction": _how(r.redacted),
        }
    if isinstance(r, DisclosureRecord):
        return "disclosures", {
            "id": r.record_id, "call_id": r.call_id, "disclosure_id": r.disclosure_id, "status": r.status,
            "text": _text(r.text, r.redacted), "turn_seq": r.turn_seq, "rule_id": r.rule_id, "at_ms": r.at_ms,
            "redaction": _how(r.redacted),
        }
    if isinstance(r, CallStarted):
        return "calls", {
            "id": r.record_id, "started_at": r.started_at, "channel": r.channel, "model": r.model,
            "upstream": r.upstream, "caller_pseudonym": pseudonym("phone", r.caller_id),
            "account_pseudonym": pseudonym("account", r.account_id), "policy_pack": r.policy_pack,
            "policy_version": r.policy_version, "gate_mode": r.gate_mode,
        }
    if isinstance(r, CallEnded):
        return "call_endings", {"id": r.record_id, "call_id": r.call_id, "at_ms": r.at_ms, "outcome": r.outcome}
    raise TypeError(f"not an audit record: {type(r).__name__}")


def _coercers() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, table in TABLES.items():
        cols: dict[str, Any] = {}
        for col in table.columns:
            if isinstance(col.type, Double):
                cols[col.name] = _float if col.nullable else _float_required
            elif isinstance(col.type, Boolean):
                cols[col.name] = bool
            elif isinstance(col.type, Integer):
                cols[col.name] = int
            else:
                cols[col.name] = _str
        out[name] = cols
    return out


def _float(v: Any) -> float | None:
    f = float(v)
    return f if math.isfinite(f) else None


def _float_required(v: Any) -> float:
    """NOT NULL float columns: a non-finite value (NaN, inf) is stored as -1.0, JSON cannot carry it."""
    f = float(v)
    return f if math.isfinite(f) else -1.0


def _str(v: Any) -> str:
    s = v if isinstance(v, str) else str(v)
    # PostgreSQL text cannot hold NUL; lone surrogates cannot be encoded.  Make both storable.
    if "\x00" in s:
        s = s.replace("\x00", "\ufffd")
    if s.isascii():
        return s
    return s.encode("utf-8", "replace").decode("utf-8")


_COERCE = _coercers()


def normalize(table: str, row: Mapping[str, Any]) -> Row:
    """Coerce a row to the value types the database returns (so write and read encode alike)."""
    cols = _COERCE[table]
    return {name: (None if row.get(name) is None else conv(row[name])) for name, conv in cols.items()}


def canonical(table: str, row: Mapping[str, Any]) -> str:
    return json.dumps({"t": table, "r": row}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_hash(canon: str) -> str:
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def chain_hash(prev_hash: str, canon: str) -> str:
    """The chain link: ``sha256(prev_hash_hex + canonical)``."""
    return hashlib.sha256((prev_hash + canon).encode("utf-8")).hexdigest()


def rows_from_records(records: Iterable[AuditRecord], pseudonym: Pseudonymizer) -> list[tuple[str, Row]]:
    out = []
    for rec in records:
        table, row = record_to_row(rec, pseudonym)
        out.append((table, normalize(table, row)))
    return out
