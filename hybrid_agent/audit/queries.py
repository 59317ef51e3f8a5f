"""Read side for compliance officers: list calls, show one, violations, search, export, verify.

Why this module is long: every compliance query shares the table handles, the stored-value guards
(``_num``) and the timeline shape; split by query, each part would import the others' helpers.

Every function takes a SQLAlchemy ``Connection`` and returns plain dicts/lists
(JSON-ready), so the CLI, tests and future HTTP endpoints share them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Boolean, Connection, Integer, and_, exists, func, literal, select, true, type_coerce

from hybrid_agent.audit.encoding import (
    GENESIS,
    StoredTypeError,
    canonical,
    chain_hash,
    decode_stored,
    decode_value,
    record_hash,
)
from hybrid_agent.audit.models import LEDGER, RECORD_TABLES, TABLES
from hybrid_agent.audit.store import UnknownCall

calls_t = TABLES["calls"]
endings_t = TABLES["call_endings"]
turns_t = TABLES["turns"]
interrupts_t = TABLES["turn_interruptions"]
tools_t = TABLES["tool_calls"]
results_t = TABLES["tool_results"]
decisions_t = TABLES["policy_decisions"]
disclosures_t = TABLES["disclosures"]
events_t = TABLES["call_events"]
gates_t = TABLES["gate_actions"]
metrics_t = TABLES["response_metrics"]

REFUSED_SOURCES = ("upstream_refused", "bridge_refused")
BLOCKED_ACTION = "speech_blocked"
GATE_FIELDS = ("seq", "action", "mode", "item_id", "rule_id", "effect", "held_ms", "leaked_ms", "audio_end_ms",
               "requested_ms", "latency_ms", "status", "tool", "text")
CONFIG_EVENT = "session.update"
#: bridge facts that are notes, not errors: what it mapped or rewrote so a call could go on
NOTICE_KINDS = ("model_mapped", "session_rewritten", "session_configured", "call_metadata")


def _is_error(events: Any = None) -> Any:
    """A call event that counts as an error (every event but the bridge's notes)."""
    t = events if events is not None else events_t
    return ~and_(t.c.source == "bridge", t.c.kind.in_(NOTICE_KINDS))


def config_refused_clause(call_id_col: Any) -> Any:
    """EXISTS: the call has a refused ``session.update`` (by the upstream or the bridge): the
    configuration the client asked for is not in effect, so the call must never look clean."""
    return exists().where(and_(
        events_t.c.call_id == call_id_col, events_t.c.source.in_(REFUSED_SOURCES), events_t.c.event_type == CONFIG_EVENT,
    ))


def _like_pattern(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# ---------------------------------------------------------------------------- calls
def list_calls(
    conn: Connection,
    *,
    since: float | None = None,
    until: float | None = None,
    channel: str | None = None,
    outcome: str | None = None,
    policy_version: str | None = None,
    has_violation: bool | None = None,
    has_errors: bool | None = None,
    config_refused: bool | None = None,
    blocked: bool | None = None,
    slow: bool | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Calls, newest first.  ``since``/``until`` are epoch seconds on the call's start.

    ``errors`` counts the call's ``call_events`` that are errors or refusals (not the bridge's notes);
    ``config_refused`` is true if a ``session.update`` was refused (see :func:`config_refused_clause`).
    ``blocked`` counts the call's ``speech_blocked`` gate actions and ``leaked_ms`` sums their
    ``leaked_ms`` (0.0 when none); the ``blocked`` filter keeps calls with (True) or without
    (False) a blocked speech.  ``slow`` counts the call's responses over a latency budget
    (``response_metrics.over_budget``); the ``slow`` filter keeps calls with (True) or without (False) one.
    ``ttfa_p50_ms`` / ``ttfa_max_ms``: the call's time to first audio (None without a timed response).
    """
    violation = exists().where(and_(decisions_t.c.violation == true(), decisions_t.c.call_id == calls_t.c.id))
    errors = exists().where(events_t.c.call_id == calls_t.c.id, _is_error())
    refused = config_refused_clause(calls_t.c.id)
    n_turns = select(func.count()).where(turns_t.c.call_id == calls_t.c.id).scalar_subquery()
    n_viol = select(func.count()).where(decisions_t.c.call_id == calls_t.c.id, decisions_t.c.violation == true()).scalar_subquery()
    n_err = select(func.count()).where(events_t.c.call_id == calls_t.c.id, _is_error()).scalar_subquery()
    was_blocked = exists().where(gates_t.c.call_id == calls_t.c.id, gates_t.c.action == BLOCKED_ACTION)
    n_blocked = select(func.count()).where(gates_t.c.call_id == calls_t.c.id, gates_t.c.action == BLOCKED_ACTION).scalar_subquery()
    leaked = select(func.sum(gates_t.c.leaked_ms)).where(gates_t.c.call_id == calls_t.c.id).scalar_subquery()
    was_slow = exists().where(metrics_t.c.call_id == calls_t.c.id, metrics_t.c.over_budget.is_not(None))
    n_slow = select(func.count()).where(metrics_t.c.call_id == calls_t.c.id, metrics_t.c.over_budget.is_not(None)).scalar_subquery()
    ttfa_max = select(func.max(metrics_t.c.ttfa_ms)).where(metrics_t.c.call_id == calls_t.c.id).scalar_subquery()
    q = (
        select(
            calls_t.c.id.label("call_id"), calls_t.c.started_at, calls_t.c.channel, calls_t.c.model, calls_t.c.upstream,
            calls_t.c.caller_pseudonym, calls_t.c.policy_pack, calls_t.c.policy_version, calls_t.c.gate_mode,
            endings_t.c.outcome, endings_t.c.at_ms.label("duration_ms"),
            n_turns.label("turns"), n_viol.label("violations"), n_err.label("errors"),
            refused.label("config_refused"), n_blocked.label("blocked"), leaked.label("leaked_ms"),
            n_slow.label("slow"), ttfa_max.label("ttfa_max_ms"),
        )
        .select_from(calls_t.outerjoin(endings_t, endings_t.c.call_id == calls_t.c.id))
        .order_by(calls_t.c.started_at.desc(), calls_t.c.id.desc())
        .limit(limit)
    )
    if since is not None:
        q = q.where(calls_t.c.started_at >= since)
    if until is not None:
        q = q.where(calls_t.c.started_at < until)
    if channel:
        q = q.where(calls_t.c.channel == channel)
    if outcome:
        q = q.where(endings_t.c.outcome == outcome) if outcome != "open" else q.where(endings_t.c.id.is_(None))
    if policy_version:
        q = q.where(calls_t.c.policy_version == policy_version)
    if has_violation is True:
        q = q.where(violation)
    elif has_violation is False:
        q = q.where(~violation)
    if has_errors is True:
        q = q.where(errors)
    elif has_errors is False:
        q = q.where(~errors)
    if config_refused is True:
        q = q.where(refused)
    elif config_refused is False:
        q = q.where(~refused)
    if blocked is True:
        q = q.where(was_blocked)
    elif blocked is False:
        q = q.where(~was_blocked)
    if slow is True:
        q = q.where(was_slow)
    elif slow is False:
        q = q.where(~was_slow)
    rows = [dict(r._mapping) for r in conn.execute(q)]
    ttfas: dict[str, list[float]] = {}
    if rows:
        for m in conn.execute(select(metrics_t.c.call_id, metrics_t.c.ttfa_ms).where(
                metrics_t.c.call_id.in_([r["call_id"] for r in rows]), metrics_t.c.ttfa_ms.is_not(None))):
            if (v := _num(m.ttfa_ms)) is not None:
                ttfas.setdefault(m.call_id, []).append(v)
    for r in rows:
        r["ttfa_p50_ms"] = percentile(ttfas.get(r["call_id"], []), 50)
        r["ttfa_max_ms"] = _num(r["ttfa_max_ms"])
        r["config_refused"] = bool(r["config_refused"])
        r["leaked_ms"] = _num(r["leaked_ms"]) or 0.0
    return rows


# ---------------------------------------------------------------------------- one call
def show_call(conn: Connection, call_id: str) -> dict[str, Any]:
    """The call turn by turn, with what was heard, tool calls, decisions, disclosures, call events and
    gate actions in time order (``timeline``; gate actions are ``{"kind": "gate", "action": ...}``)."""
    call = conn.execute(select(calls_t).where(calls_t.c.id == call_id)).mappings().first()
    ending = conn.execute(select(endings_t).where(endings_t.c.call_id == call_id)).mappings().first()
    turns = [dict(r) for r in conn.execute(select(turns_t).where(turns_t.c.call_id == call_id).order_by(turns_t.c.seq)).mappings()]
    events = [dict(r) for r in conn.execute(select(events_t).where(events_t.c.call_id == call_id).order_by(events_t.c.seq)).mappings()]
    gates = [dict(r) for r in conn.execute(select(gates_t).where(gates_t.c.call_id == call_id).order_by(gates_t.c.seq)).mappings()]
    if call is None and not turns and ending is None and not events and not gates:
        raise UnknownCall(f"no call {call_id!r} in the audit database")
    heard = {
        r["seq"]: dict(r)
        for r in conn.execute(select(interrupts_t).where(interrupts_t.c.call_id == call_id).order_by(interrupts_t.c.at_ms)).mappings()
    }
    results = {r["tool_call_id"]: dict(r) for r in conn.execute(select(results_t).where(results_t.c.call_id == call_id)).mappings()}
    tools = []
    for r in conn.execute(select(tools_t).where(tools_t.c.call_id == call_id).order_by(tools_t.c.at_ms)).mappings():
        t = dict(r)
        res = results.get(t["tool_call_id"])
        t["result"] = None if res is None else {
            "status": res["status"], "output": res["output"], "latency_ms": _latency(res["at_ms"], t["at_ms"]), "at_ms": res["at_ms"],
        }
        tools.append(t)
    decisions = [dict(r) for r in conn.execute(select(decisions_t).where(decisions_t.c.call_id == call_id).order_by(decisions_t.c.seq)).mappings()]
    responses = [dict(r) for r in conn.execute(select(metrics_t).where(metrics_t.c.call_id == call_id).order_by(metrics_t.c.seq)).mappings()]
    answered_by = {r["turn_seq"]: r for r in responses if r["turn_seq"] is not None}
    disclosures = [dict(r) for r in conn.execute(select(disclosures_t).where(disclosures_t.c.call_id == call_id).order_by(disclosures_t.c.at_ms)).mappings()]
    for ev in events:
        ev["refused"] = ev["source"] in REFUSED_SOURCES
        ev["notice"] = ev["source"] == "bridge" and ev["kind"] in NOTICE_KINDS
    config_refused = [ev for ev in events if ev["refused"] and ev["event_type"] == CONFIG_EVENT]
    for t in turns:
        cut = heard.get(t["seq"])
        t["interrupted"] = cut is not None
        t["heard_text"] = cut["heard_text"] if cut else t["text"]
        t["audio_end_ms"] = cut["audio_end_ms"] if cut else None
        timed = answered_by.get(t["seq"]) if t["role"] == "assistant" else None
        t["ttfa_ms"] = _num(timed["ttfa_ms"]) if timed else None
        t["over_budget"] = timed["over_budget"] if timed else None
        t["response_seq"] = timed["seq"] if timed else None

    # one timeline: turns by speech start, then everything else at its time
    timeline: list[dict[str, Any]] = []
    for t in turns:
        timeline.append({"at_ms": t["started_ms"], "order": 0, "kind": "turn", **_pick(t, "seq", "role", "status", "text", "heard_text", "interrupted", "audio_end_ms", "audio_ms", "ttfa_ms", "over_budget", "response_seq")})
    for t in tools:
        timeline.append({"at_ms": t["at_ms"], "order": 1, "kind": "tool_call", **_pick(t, "tool_call_id", "name", "arguments", "result")})
    for d in decisions:
        timeline.append({"at_ms": d["at_ms"], "order": 2, "kind": "decision", **_pick(d, "seq", "stage", "rule_id", "effect", "violation", "policy_version", "subject_id", "message")})
    for d in disclosures:
        timeline.append({"at_ms": d["at_ms"], "order": 3, "kind": "disclosure", **_pick(d, "disclosure_id", "status", "text", "turn_seq")})
    for ev in events:
        # the event's own ``kind`` is ``code`` here: ``kind`` names the timeline entry
        timeline.append({"at_ms": ev["at_ms"], "order": 4, **_pick(
            ev, "seq", "source", "event_type", "param", "message", "client_event_id", "refused", "notice"), "kind": "event", "code": ev["kind"]})
    for g in gates:
        timeline.append({"at_ms": g["at_ms"], "order": 5, "kind": "gate", **_pick(g, *GATE_FIELDS)})
    timeline.sort(key=lambda e: (_sort_ms(e["at_ms"]), e["order"]))
    for e in timeline:
        del e["order"]
    return {
        "call": dict(call) if call else {"id": call_id},
        "ended": dict(ending) if ending else None,
        "turns": turns,
        "tool_calls": tools,
        "decisions": decisions,
        "disclosures": disclosures,
        "events": events,
        "errors": sum(1 for ev in events if not ev["notice"]),
        "config_refused": bool(config_refused),
        "gate_actions": gates,
        "responses": responses,
        "slow": sum(1 for r in responses if r["over_budget"]),
        "blocked": sum(1 for g in gates if g["action"] == BLOCKED_ACTION),
        "leaked_ms": sum(n for g in gates if (n := _num(g["leaked_ms"])) is not None and n == n),
        "timeline": timeline,
    }


def _num(v: Any) -> float | None:
    """A stored number, or None if the database holds something else (SQLite keeps any type)."""
    return float(v) if type(v) in (int, float) else None


def _latency(end: Any, start: Any) -> float | None:
    a, b = _num(end), _num(start)
    return None if a is None or b is None else a - b


def _sort_ms(v: Any) -> float:
    n = _num(v)
    return n if n is not None and n == n else float("inf")


def _pick(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: d.get(k) for k in keys}


# ---------------------------------------------------------------------------- violations, search
def list_violations(conn: Connection, *, rule: str | None = None, since: float | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Decisions that are violations, newest call first; ``since`` is on the call's start."""
    q = (
        select(
            decisions_t.c.call_id, decisions_t.c.seq, calls_t.c.started_at.label("call_started_at"), decisions_t.c.at_ms,
            decisions_t.c.stage, decisions_t.c.rule_id, decisions_t.c.effect, decisions_t.c.policy_version,
            decisions_t.c.subject_id, decisions_t.c.message,
        )
        .select_from(decisions_t.join(calls_t, calls_t.c.id == decisions_t.c.call_id))
        .where(decisions_t.c.violation == true())
        .order_by(calls_t.c.started_at.desc(), decisions_t.c.call_id.desc(), decisions_t.c.seq)
        .limit(limit)
    )
    if rule:
        q = q.where(decisions_t.c.rule_id == rule)
    if since is not None:
        q = q.where(calls_t.c.started_at >= since)
    return [dict(r._mapping) for r in conn.execute(q)]


def _gate_query(action: str | None, since: float | None, call_id: str | None) -> Any:
    frm = gates_t.outerjoin(calls_t, calls_t.c.id == gates_t.c.call_id)
    q = select(
        gates_t.c.call_id, calls_t.c.started_at.label("call_started_at"), gates_t.c.at_ms,
        *(gates_t.c[f] for f in GATE_FIELDS),
    ).select_from(frm)
    if action:
        q = q.where(gates_t.c.action == action)
    if since is not None:
        q = q.where(calls_t.c.started_at >= since)
    if call_id:
        q = q.where(gates_t.c.call_id == call_id)
    return q


def list_gate_actions(
    conn: Connection, *, action: str | None = None, since: float | None = None, call_id: str | None = None, limit: int = 100,
) -> list[dict[str, Any]]:
    """Gate actions across calls, newest call first (a call whose ``calls`` row is missing last),
    each call's actions in ``seq`` order; ``since`` is on the call's start."""
    q = _gate_query(action, since, call_id).order_by(
        calls_t.c.started_at.is_(None), calls_t.c.started_at.desc(), gates_t.c.call_id.desc(), gates_t.c.seq,
    ).limit(limit)
    return [dict(r._mapping) for r in conn.execute(q)]


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100) of ``values``; None if there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def gate_stats(conn: Connection, *, action: str | None = None, since: float | None = None, call_id: str | None = None) -> dict[str, Any]:
    """p50/p99 (nearest rank) of ``held_ms`` and ``leaked_ms`` over *all* gate actions matching the
    filters (not only the ones a ``limit`` lets :func:`list_gate_actions` list): ``{"held_ms":
    {"n", "p50", "p99"} | None, "leaked_ms": ...}``, None when no matching action has the value."""
    out: dict[str, Any] = {}
    for col in ("held_ms", "leaked_ms"):
        q = _gate_query(action, since, call_id).with_only_columns(gates_t.c[col]).where(gates_t.c[col].is_not(None))
        values = [n for v in conn.execute(q).scalars() if (n := _num(v)) is not None and math.isfinite(n)]
        out[col] = {"n": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99)} if values else None
    return out


def search_text(conn: Connection, text: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """Turns whose (redacted) text, or heard text, contains ``text`` (case-insensitive)."""
    pattern = _like_pattern(text)
    q1 = (
        select(turns_t.c.call_id, turns_t.c.seq, turns_t.c.role, turns_t.c.started_ms, turns_t.c.text)
        .where(turns_t.c.text.ilike(pattern, escape="\\"))
    )
    q2 = (
        select(interrupts_t.c.call_id, interrupts_t.c.seq, literal("assistant").label("role"),
               interrupts_t.c.at_ms.label("started_ms"), interrupts_t.c.heard_text.label("text"))
        .where(interrupts_t.c.heard_text.ilike(pattern, escape="\\"))
    )
    rows = [dict(r._mapping) for r in conn.execute(q1.limit(limit))]
    seen = {(r["call_id"], r["seq"]) for r in rows}
    for r in conn.execute(q2.limit(limit)):
        if (r.call_id, r.seq) not in seen:
            rows.append({**dict(r._mapping), "heard": True})
    return rows[:limit]


# ---------------------------------------------------------------------------- chain walk (verify, export)
def _ledger_join(since: float | None = None, *, raw: bool = False) -> Any:
    """Ledger rows in chain order, each LEFT JOINed to the row it covers (columns ``<table>__<col>``).

    ``raw``: values exactly as the driver returns them (no ``bool()`` of a SQLite integer),
    for ``verify``, which must see a stored ``2`` in a boolean column as what it is.
    """
    cols = [LEDGER.c[c] for c in ("seq", "table_name", "row_id", "call_id", "record_hash", "prev_hash", "hash", "written_at")]
    frm: Any = LEDGER
    for t in RECORD_TABLES:
        cols.extend(
            (type_coerce(c, Integer) if raw and isinstance(c.type, Boolean) else c).label(f"{t.name}__{c.name}")
            for c in t.columns
        )
        frm = frm.outerjoin(t, and_(LEDGER.c.table_name == t.name, t.c.id == LEDGER.c.row_id))
    q = select(*cols).select_from(frm).order_by(LEDGER.c.seq)
    if since is not None:
        q = q.where(LEDGER.c.call_id.in_(select(calls_t.c.id).where(calls_t.c.started_at >= since)))
    return q


def _row_of(m: Any, table: str) -> dict[str, Any] | None:
    t = TABLES.get(table)
    if t is None:
        return None
    prefix = f"{table}__"
    row = {c.name: m[prefix + c.name] for c in t.columns}
    return None if row["id"] is None else row


def iter_records(conn: Connection, *, since: float | None = None, yield_per: int = 2000) -> Iterator[dict[str, Any]]:
    """Every stored record in chain order, streamed (server-side cursor on PostgreSQL)."""
    result = conn.execution_options(stream_results=True, yield_per=yield_per).execute(_ledger_join(since))
    for m in result.mappings():
        row = _row_of(m, m["table_name"])
        yield {"ledger_seq": m["seq"], "table": m["table_name"], "hash": m["hash"], "written_at": m["written_at"], "record": row}


@dataclass
class Problem:
    kind: str  # row_edited | row_missing | ledger_edited | broken_link | seq_gap | unledgered_row
    table: str
    row_id: str
    ledger_seq: int | None
    expected: str | None
    found: str | None
    detail: str

    def line(self) -> str:
        where = f"ledger seq {self.ledger_seq}, " if self.ledger_seq is not None else ""
        s = f"{self.kind}: table {self.table}, row {self.row_id} ({where}{self.detail})"
        if self.expected is not None or self.found is not None:
            s += f"\n  expected {self.expected}\n  found    {self.found}"
        return s


@dataclass
class VerifyResult:
    checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    anchor_ok: bool | None = None

    @property
    def ok(self) -> bool:
        return self.problem_count == 0 and self.anchor_ok is not False

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "checked": self.checked, "head": {"seq": self.head_seq, "hash": self.head_hash},
            "anchor_ok": self.anchor_ok, "problem_count": self.problem_count,
            "first_problem": asdict(self.problems[0]) if self.problems else None,
            "problems": [asdict(p) for p in self.problems],
        }


def verify_chain(conn: Connection, *, anchor: tuple[int, str] | None = None, max_problems: int = 100) -> VerifyResult:
    """Recompute the chain over every stored row; collect problems in chain order.

    Detects: an edited row (its canonical hash differs from the ledger's), a deleted row
    (ledger points at nothing), an edited/forged/reordered ledger entry (hash or link does
    not recompute), gaps in the ledger sequence, and rows no ledger entry covers (inserted
    around the writer).  ``anchor=(seq, hash)``: a head recorded earlier (outside the
    database) must still be in the chain, which also catches a full rewrite of the chain.
    """
    res = VerifyResult()

    def report(p: Problem) -> None:
        res.problem_count += 1
        if len(res.problems) < max_problems:
            res.problems.append(p)

    prev_hash, prev_seq = GENESIS, 0
    for m in conn.execution_options(stream_results=True, yield_per=5000).execute(_ledger_join(raw=True)).mappings():
        seq, table, row_id = m["seq"], m["table_name"], m["row_id"]
        res.checked += 1
        if seq != prev_seq + 1:
            report(Problem("seq_gap", table, row_id, seq, str(prev_seq + 1), str(seq), "ledger sequence has a gap or is reordered: entries deleted or moved"))
        if m["prev_hash"] != prev_hash:
            report(Problem("broken_link", table, row_id, seq, prev_hash, m["prev_hash"], "prev_hash does not match the previous entry's hash"))
        row = _row_of(m, table)
        if row is None:
            report(Problem("row_missing", table, row_id, seq, m["record_hash"], None, "row covered by the ledger is gone (deleted)"))
        else:
            try:
                decoded = decode_stored(table, row)
            except StoredTypeError as exc:
                report(Problem("row_edited", table, row_id, seq, m["record_hash"], f"unhashable row: {exc}",
                               f"a stored value has the wrong type ({exc}): written around the writer"))
                decoded = None
            if decoded is not None:
                canon = canonical(table, decoded)
                found = record_hash(canon)
                try:
                    written_at = decode_value("written_at", "double", m["written_at"])
                except StoredTypeError as exc:
                    written_at = None
                    report(Problem("ledger_edited", table, row_id, seq, "a float written_at", str(exc), "ledger written_at has the wrong type"))
                if found != m["record_hash"]:
                    report(Problem("row_edited", table, row_id, seq, m["record_hash"], found, "row content differs from what was recorded"))
                elif written_at is not None and chain_hash(m["prev_hash"], canon, written_at) != m["hash"]:
                    report(Problem("ledger_edited", table, row_id, seq, chain_hash(m["prev_hash"], canon, written_at), m["hash"],
                                   "ledger entry hash does not recompute (entry or its written_at edited)"))
                elif decoded.get("call_id", decoded["id"]) != m["call_id"]:
                    report(Problem("ledger_edited", table, row_id, seq, str(decoded.get("call_id", decoded["id"])), m["call_id"],
                                   "ledger call_id does not match the row"))
        if anchor is not None and seq == anchor[0]:
            res.anchor_ok = m["hash"] == anchor[1]
        prev_hash, prev_seq = m["hash"], seq
    res.head_seq, res.head_hash = prev_seq, prev_hash
    if anchor is not None and res.anchor_ok is None:
        res.anchor_ok = False  # the anchored entry is gone
    for t in RECORD_TABLES:
        covered = exists().where(and_(LEDGER.c.table_name == t.name, LEDGER.c.row_id == t.c.id))
        for (rid,) in conn.execute(select(t.c.id).where(~covered).order_by(t.c.id)):
            report(Problem("unledgered_row", t.name, rid, None, "a ledger entry for the row", "none",
                           "row is not in the ledger: inserted outside the audit writer, or its ledger entry was deleted"))
    return res


def record_counts(conn: Connection) -> dict[str, int]:
    return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in (*RECORD_TABLES, LEDGER)}


def export_rows(conn: Connection, *, since: float | None = None) -> Iterator[dict[str, Any]]:
    """Flat export rows (JSON-ready), streamed in chain order."""
    for rec in iter_records(conn, since=since):
        yield rec


def csv_row(rec: dict[str, Any]) -> list[Any]:
    r = rec["record"] or {}
    return [rec["ledger_seq"], rec["table"], r.get("id"), r.get("call_id", r.get("id")), rec["hash"], json.dumps(r, ensure_ascii=False, sort_keys=True)]


CSV_HEADER = ["ledger_seq", "table", "row_id", "call_id", "hash", "record_json"]

