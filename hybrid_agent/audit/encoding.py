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
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Boolean, Double, Integer

from hybrid_agent.audit.models import TABLES
from hybrid_agent.audit.privacy import Pseudonymizer, scrub, scrub_json
from hybrid_agent.audit.records import (
    AuditRecord,
    CallEnded,
    CallEventRecord,
    CallStarted,
    DisclosureRecord,
    GateActionRecord,
    PolicyDecisionRecord,
    ResponseMetrics,
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


def _payload(value: str | None, redacted: bool) -> str | None:
    """Tool arguments and outputs: JSON scrubbed value by value, each with its key as its label."""
    if value is None:
        return None
    return value if redacted else scrub_json(value)


#: a plain protocol identifier (event type, parameter path, event id, error code): stored as is
_PLAIN_CODE = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,127}")
_DIGIT_RUN = re.compile(r"\d{7,}")
#: the service's response ids (resp_ and letters/digits): kept whole so a trace can be joined on them
_RESPONSE_ID = re.compile(r"resp_[A-Za-z0-9]{1,64}")
MAX_EVENT_MESSAGE = 4000


def _code(value: str | None, redacted: bool) -> str | None:
    """A short code from the client or the upstream: kept if it is a plain identifier (no
    spaces, ``@`` or long digit runs), else redacted like free text (it may be caller input)."""
    if value is None or redacted:
        return value
    if _PLAIN_CODE.fullmatch(value) and not _DIGIT_RUN.search(value):
        return value
    return scrub(value[:200])


def _cut(value: str | None, limit: int = MAX_EVENT_MESSAGE) -> str | None:
    return value if value is None or len(value) <= limit else value[:limit] + "…"


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
            "arguments": _payload(r.arguments, r.redacted), "response_id": r.response_id, "at_ms": r.at_ms,
            "redaction": _how(r.redacted),
        }
    if isinstance(r, ToolResultRecord):
        extra = json.dumps(r.extra, sort_keys=True, ensure_ascii=False, default=str) if r.extra else None
        return "tool_results", {
            "id": r.record_id, "call_id": r.call_id, "tool_call_id": r.tool_call_id, "status": r.status,
            "output": _payload(r.output, r.redacted), "extra": _payload(extra, r.redacted), "at_ms": r.at_ms,
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
    if isinstance(r, CallEventRecord):
        message = r.message if r.message is None or len(r.message) <= MAX_EVENT_MESSAGE else r.message[:MAX_EVENT_MESSAGE] + "…"
        return "call_events", {
            "id": r.record_id, "call_id": r.call_id, "seq": r.seq, "at_ms": r.at_ms, "source": r.source,
            "kind": _code(r.kind, r.redacted), "event_type": _code(r.event_type, r.redacted),
            "param": _code(r.param, r.redacted), "message": _text(message, r.redacted),
            "client_event_id": _code(r.client_event_id, r.redacted), "redaction": _how(r.redacted),
        }
    if isinstance(r, GateActionRecord):
        return "gate_actions", {
            "id": r.record_id, "call_id": r.call_id, "seq": r.seq, "at_ms": r.at_ms,
            "action": _code(r.action, r.redacted), "mode": _code(r.mode, r.redacted),
            "item_id": _code(r.item_id, r.redacted), "rule_id": _code(r.rule_id, r.redacted),
            "effect": _code(r.effect, r.redacted), "held_ms": r.held_ms, "leaked_ms": r.leaked_ms,
            "audio_end_ms": r.audio_end_ms, "requested_ms": r.requested_ms, "latency_ms": r.latency_ms,
            "status": _code(r.status, r.redacted), "tool": _code(r.tool, r.redacted),
            "text": _text(_cut(r.text), r.redacted), "redaction": _how(r.redacted),
        }
    if isinstance(r, ResponseMetrics):
        return "response_metrics", {
            "id": r.record_id, "call_id": r.call_id, "seq": r.seq, "at_ms": r.at_ms,
            "model": _code(r.model, False) or "unknown", "status": _code(r.status, False) or "unknown",
            "response_id": r.response_id if r.response_id and _RESPONSE_ID.fullmatch(r.response_id) else None, "turn_seq": r.turn_seq, "user_seq": r.user_seq,
            "reference": r.reference, "reference_ms": r.reference_ms,
            "first_audio_ms": r.first_audio_ms, "released_ms": r.released_ms, "ttfa_ms": r.ttfa_ms,
            "gate_ms": r.gate_ms, "audio_ms": r.audio_ms, "over_budget": r.over_budget,  # the bridge's own stage names
            "input_text_tokens": r.input_text_tokens, "input_audio_tokens": r.input_audio_tokens,
            "input_image_tokens": r.input_image_tokens, "cached_text_tokens": r.cached_text_tokens,
            "cached_audio_tokens": r.cached_audio_tokens, "output_text_tokens": r.output_text_tokens,
            "output_audio_tokens": r.output_audio_tokens,
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
    # ``+ 0.0`` turns -0.0 into 0.0: SQLite reads -0.0 back as 0.0, which would change the hash
    f = float(v) + 0.0
    return f if math.isfinite(f) else None


def _float_required(v: Any) -> float:
    """NOT NULL float columns: a non-finite value (NaN, inf) is stored as -1.0, JSON cannot carry it."""
    f = float(v) + 0.0
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


def _kind(col: Any) -> str:
    if isinstance(col.type, Double):
        return "double"
    if isinstance(col.type, Boolean):
        return "boolean"
    if isinstance(col.type, Integer):
        return "integer"
    return "text"


#: table -> [(column, kind)], kind one of boolean | integer | double | text
COLUMN_KINDS: dict[str, list[tuple[str, str]]] = {
    name: [(c.name, _kind(c)) for c in table.columns] for name, table in TABLES.items()
}


class StoredTypeError(ValueError):
    """A stored value is not of its column's type (SQLite keeps whatever it is given)."""

    def __init__(self, column: str, value: Any, expected: str) -> None:
        self.column, self.value, self.expected = column, value, expected
        super().__init__(f"column {column} holds {type(value).__name__} {value!r:.40}, not {expected}")


def decode_value(column: str, kind: str, v: Any) -> Any:
    """One stored value -> its canonical form, strictly (no coercion that could hide an edit).

    boolean: only True/False or the integers 0/1; integer: only int (not bool, str, bytes, float);
    double: only int/float (not bool); text: only str.  Anything else is :class:`StoredTypeError`.
    """
    if v is None:
        return None
    t = type(v)
    if kind == "boolean":
        if t is bool:
            return v
        if t is int and v in (0, 1):
            return bool(v)
        raise StoredTypeError(column, v, "a boolean (0/1)")
    if kind == "integer":
        if t is int:
            return v
        raise StoredTypeError(column, v, "an integer")
    if kind == "double":
        if t is float or t is int:
            f = float(v) + 0.0
            if math.isfinite(f):
                return f
        raise StoredTypeError(column, v, "a finite float")
    if t is str:
        return v
    raise StoredTypeError(column, v, "text")


def decode_stored(table: str, row: Mapping[str, Any]) -> Row:
    """A row as read from the database (raw driver values) -> the row the writer hashed.

    Raises :class:`StoredTypeError` for a value whose type is not its column's: ``verify``
    reports that row as broken instead of coercing (``bool(2)`` would hide an edit).
    """
    return {name: decode_value(name, kind, row.get(name)) for name, kind in COLUMN_KINDS[table]}


def canonical(table: str, row: Mapping[str, Any]) -> str:
    return json.dumps({"t": table, "r": row}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_hash(canon: str) -> str:
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def chain_hash(prev_hash: str, canon: str, written_at: float) -> str:
    """The chain link: ``sha256(prev_hash_hex + canonical + "@" + json(written_at))``.

    ``written_at`` (epoch seconds the entry was appended) is part of the link, so
    editing when a record was written breaks the chain like editing the record.
    """
    return hashlib.sha256(f"{prev_hash}{canon}@{json.dumps(written_at)}".encode()).hexdigest()


def rows_from_records(records: Iterable[AuditRecord], pseudonym: Pseudonymizer) -> list[tuple[str, Row]]:
    out = []
    for rec in records:
        table, row = record_to_row(rec, pseudonym)
        out.append((table, normalize(table, row)))
    return out
