"""``policy replay``: re-evaluate recorded calls with a (new) pack and list the decisions that would change.

The core works on the audit record types (:mod:`hybrid_agent.audit.records`), grouped
per call, so it runs on any source of records: the audit database (``--db``), a spool,
or records built in a test.  For each call, the session is rebuilt in time order:

* ``session_start`` once, at the start (subject: the call id);
* ``user_text`` / ``assistant_text`` for every turn with text, when it ended (subject: the turn id);
* ``tool_call`` for every tool call (subject: the tool call's record id), with its JSON arguments;
* ``tool_result`` for every tool result.

Session state follows the records as the live session does: ``disclosures`` from
:class:`DisclosureRecord` (given or acknowledged add, missing removes) at their time, after the
turn that spoke them; a tool result is decided on first and then noted: ``verification_level``
from a ``verifies_identity`` tool's result whose JSON output (or ``extra``) carries
``verification_level``, ``transferred`` from successful calls of tools with an ``amount_arg``;
turn and tool counts, elapsed time and history from the turns so far.  Recorded text is redacted: ``pii`` is rebuilt from the redaction
placeholders (``[CREDIT_CARD]`` counts as one ``CREDIT_CARD``), so rules on ``pii`` replay,
while regex rules on raw digits cannot see numbers the PII gate already removed.

The old decision of an event is the strongest recorded :class:`PolicyDecisionRecord` effect
with the event's subject id and stage; an event with no recorded decision counts as ``allow``,
except ``session_start``: when the call has given disclosures (:class:`DisclosureRecord`), the
old decision at the start is taken to have been ``require_disclosure`` (by the record's rule id).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from hybrid_agent.audit.records import (
    CallStarted,
    DisclosureRecord,
    PolicyDecisionRecord,
    ToolCallRecord,
    ToolResultRecord,
    TurnRecord,
)
from hybrid_agent.policy.engine import Decision, Pack, strongest
from hybrid_agent.policy.live import PolicySession
from hybrid_agent.policy.schema import PolicyInput

_PLACEHOLDER = re.compile(r"\[([A-Z][A-Z0-9_]*)\]|<([A-Z][A-Z0-9_]*)>")


class ReplayUnavailable(Exception):
    """Replay cannot read its input (no audit store reader, database unreachable...); one line for a person."""


@dataclass
class RecordedCall:
    call_id: str
    records: list[Any]
    started_at: float | None = None


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    call_id: str
    subject_id: str
    stage: str
    at_ms: float
    turn_seq: int | None
    tool_call_id: str | None
    summary: str
    old_effect: str | None
    old_rules: tuple[str, ...]
    new: Decision

    @property
    def changed(self) -> bool:
        return self.new.effect != (self.old_effect or "allow")

    def to_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id, "subject_id": self.subject_id, "stage": self.stage, "at_ms": self.at_ms,
            "turn": self.turn_seq, "tool_call_id": self.tool_call_id, "summary": self.summary,
            "old_effect": self.old_effect, "old_rules": list(self.old_rules),
            "new_effect": self.new.effect, "new_rules": list(self.new.rule_ids), "changed": self.changed,
            "messages": list(self.new.messages),
        }


@dataclass
class ReplayReport:
    pack: str
    pack_version: str
    calls: int = 0
    events: list[ReplayEvent] = field(default_factory=list)

    @property
    def changes(self) -> list[ReplayEvent]:
        return [e for e in self.events if e.changed]

    def to_json(self, include_all: bool = False) -> dict[str, Any]:
        return {
            "pack": self.pack, "pack_version": self.pack_version, "calls": self.calls, "events": len(self.events),
            "changed": len(self.changes),
            "changes": [e.to_json() for e in (self.events if include_all else self.changes)],
        }


# ------------------------------------------------------------------------------------------ grouping
def group_records(records: Iterable[Any]) -> list[RecordedCall]:
    """Audit records (any order, several calls) -> one :class:`RecordedCall` per call, in first-seen order."""
    calls: dict[str, RecordedCall] = {}
    for rec in records:
        cid = getattr(rec, "call_id", None)
        if cid is None:
            continue
        call = calls.get(cid)
        if call is None:
            call = calls[cid] = RecordedCall(cid, [])
        call.records.append(rec)
        if isinstance(rec, CallStarted):
            call.started_at = rec.started_at
    return list(calls.values())


def pii_from_placeholders(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for a, b in _PLACEHOLDER.findall(text or ""):
        k = a or b
        out[k] = out.get(k, 0) + 1
    return out


def _clip(s: str, n: int = 60) -> str:
    s = " ".join((s or "").split())
    return s if len(s) <= n else s[: n - 1] + "…"


# ------------------------------------------------------------------------------------------ the replay
def replay_call(pack: Pack, call: RecordedCall) -> Iterator[ReplayEvent]:
    """Re-evaluate one call's events in time order (pure: no I/O)."""
    recs = call.records
    old: dict[str, list[PolicyDecisionRecord]] = {}
    for r in recs:
        if isinstance(r, PolicyDecisionRecord):
            subject = r.subject_id or (call.call_id if r.stage == "session_start" else None)
            if subject:
                old.setdefault(subject, []).append(r)
    started = next((r for r in recs if isinstance(r, CallStarted)), None)
    channel = started.channel if started else ""
    tool_calls = {r.tool_call_id: r for r in recs if isinstance(r, ToolCallRecord)}

    # (time, order, record), in the order the live session handles events at the same time: a tool
    # result, then the turn that ends, then the disclosures that turn spoke (live notes them after
    # deciding on the turn), then tool calls
    timeline: list[tuple[float, int, Any]] = []
    for r in recs:
        if isinstance(r, DisclosureRecord):
            timeline.append((r.at_ms, 3, r))
        elif isinstance(r, TurnRecord):
            timeline.append((r.ended_ms, 2, r))
        elif isinstance(r, ToolCallRecord):
            timeline.append((r.at_ms, 4, r))
        elif isinstance(r, ToolResultRecord):
            timeline.append((r.at_ms, 1, r))
    timeline.sort(key=lambda x: (x[0], x[1], getattr(x[2], "seq", 0)))

    state = PolicySession(channel=channel, history_turns=pack.manifest.history_turns, tools=dict(pack.manifest.tools))

    def old_for(stage: str, *subjects: str) -> tuple[str | None, tuple[str, ...]]:
        rs = [r for s in dict.fromkeys(subjects) for r in old.get(s, []) if r.stage == stage]
        eff = strongest(r.effect for r in rs if r.effect in _EFFECTS)
        if eff is None:
            return None, ()
        return eff, tuple(dict.fromkeys(r.rule_id for r in rs if r.effect == eff))

    def event(stage: str, subject: str, at_ms: float, inp: PolicyInput, *, alt: tuple[str, ...] = (), turn: int | None = None,
              tool_call_id: str | None = None, summary: str = "") -> ReplayEvent:
        oe, orules = old_for(stage, subject, *alt)
        return ReplayEvent(call.call_id, subject, stage, at_ms, turn, tool_call_id, summary, oe, orules, pack.evaluate(inp))

    start = event("session_start", call.call_id, 0.0, state.session_start(), summary="(call start)")
    if start.old_effect is None:
        # no recorded decision: disclosures given in the call show the old pack required them at the start
        given = [r for r in recs if isinstance(r, DisclosureRecord) and r.status in ("given", "acknowledged")]
        if given:
            start = replace(start, old_effect="require_disclosure", old_rules=tuple(dict.fromkeys(r.rule_id or r.disclosure_id for r in given)))
    yield start

    for at, _, r in timeline:
        if isinstance(r, DisclosureRecord):
            if r.status in ("given", "acknowledged"):
                state.note_disclosure(r.disclosure_id)
            elif r.status == "missing" and r.disclosure_id in state.disclosures:
                state.disclosures.remove(r.disclosure_id)  # the caller did not hear it (live: _unhear_disclosures)
        elif isinstance(r, ToolResultRecord):
            tc = tool_calls.get(r.tool_call_id)
            name, arguments = (tc.name, tc.arguments) if tc else ("", "")
            inp = state.tool_result(name, arguments, r.output or "", at, pii_from_placeholders(r.output))
            yield event("tool_result", r.record_id, at, inp, alt=(r.tool_call_id,), tool_call_id=r.tool_call_id,
                        summary=f"{tc.name if tc else '?'} -> {_clip(r.output, 40)}")
            # as live: the result is decided on with the state before it, then noted
            state.note_tool_result(r.output, r.extra, ok=r.status == "ok", tool=name, arguments=arguments)
        elif isinstance(r, ToolCallRecord):
            yield event("tool_call", r.record_id, at, state.tool_call(r.name, r.arguments, at), alt=(r.tool_call_id,),
                        tool_call_id=r.tool_call_id, summary=f"{r.name}({_clip(r.arguments, 40)})")
            state.note_tool_call()
        elif isinstance(r, TurnRecord):
            if r.text:
                inp = state.turn(r.role, r.text, at, pii_from_placeholders(r.text))
                yield event(str(inp.stage), r.turn_id, at, inp, alt=(r.item_id,), turn=r.seq, summary=_clip(r.text))
            state.note_turn(r.role, r.text)


_EFFECTS = {"allow", "deny", "confirm", "step_up", "redact", "block_speech", "escalate", "require_disclosure"}


def replay(pack: Pack, calls: Iterable[RecordedCall] | Iterable[Any]) -> ReplayReport:
    """Replay calls (``RecordedCall`` objects, or a flat iterable of audit records)."""
    items = list(calls)
    if items and not all(isinstance(c, RecordedCall) for c in items):
        items = group_records(items)
    report = ReplayReport(pack.name, pack.version)
    for call in items:
        report.calls += 1
        report.events.extend(replay_call(pack, call))
    return report


# ------------------------------------------------------------------------------------------ output
def print_report(report: ReplayReport, out: TextIO, *, show_all: bool = False) -> None:
    rows = report.events if show_all else report.changes
    out.write(f"replayed {report.calls} call(s), {len(report.events)} decision(s) with {report.pack} (version {report.pack_version}); "
              f"{len(report.changes)} would change\n")
    if not rows:
        return
    header = ("call", "at", "stage", "old", "new", "new rule", "old rule", "what")
    table = []
    for e in rows:
        where = f"turn {e.turn_seq}" if e.turn_seq is not None else (f"tool {e.tool_call_id}" if e.tool_call_id else "start")
        table.append((
            e.call_id, where, e.stage, (e.old_effect or "allow*") + ("" if e.changed else " ="), e.new.effect,
            ",".join(e.new.rule_ids) or "(default)", ",".join(e.old_rules) or "-", e.summary,
        ))
    widths = [max(len(h), *(len(str(r[i])) for r in table)) for i, h in enumerate(header)]
    out.write("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip() + "\n")
    for r in table:
        out.write("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() + "\n")
    out.write("(allow* = no decision recorded for this event)\n")


# ------------------------------------------------------------------------------------------ input: the audit database
def parse_since(value: str) -> float:
    """``7d``/``12h``/``30m``/``90s`` ago, an ISO date or date-time (UTC if naive), or epoch seconds.

    The same parser as the ``audit`` commands' ``--since``, so both accept the same forms.
    """
    import argparse

    from hybrid_agent.audit.cli import parse_time

    try:
        return parse_time(value)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(str(exc)) from None


def calls_from_show(shown: dict[str, Any]) -> RecordedCall:
    """``audit.queries.show_call`` output -> a :class:`RecordedCall` of audit records."""
    c = shown["call"]
    cid = c["id"]
    recs: list[Any] = []
    if "started_at" in c:
        recs.append(CallStarted(call_id=cid, started_at=c["started_at"], channel=c.get("channel") or "", model=c.get("model") or "",
                                upstream=c.get("upstream") or "", policy_pack=c.get("policy_pack"), policy_version=c.get("policy_version")))
    for t in shown.get("turns", []):
        recs.append(TurnRecord(cid, t["seq"], t["role"], t.get("item_id") or "", t.get("text"), t.get("status") or "completed",
                               t.get("started_ms") or 0.0, t.get("ended_ms") or 0.0, t.get("audio_ms") or 0.0, t.get("response_id"), True))
    for tc in shown.get("tool_calls", []):
        recs.append(ToolCallRecord(cid, tc["tool_call_id"], tc["name"], tc.get("arguments") or "", tc.get("at_ms") or 0.0,
                                   tc.get("response_id"), True))
        res = tc.get("result")
        if res:
            recs.append(ToolResultRecord(cid, tc["tool_call_id"], res.get("output") or "", res.get("at_ms") or 0.0, True,
                                         {}, res.get("status") or "ok"))
    for d in shown.get("decisions", []):
        recs.append(PolicyDecisionRecord(cid, d["seq"], d["stage"], d["rule_id"], d["effect"], d.get("policy_version") or "",
                                         d.get("at_ms") or 0.0, d.get("policy_pack"), d.get("subject_id"), d.get("input_digest"),
                                         d.get("message"), d.get("violation"), True))
    for d in shown.get("disclosures", []):
        recs.append(DisclosureRecord(cid, d["disclosure_id"], d.get("text") or "", d.get("at_ms") or 0.0, d.get("status") or "given",
                                     d.get("turn_seq"), d.get("rule_id"), True))
    return RecordedCall(cid, recs, c.get("started_at"))


def read_calls_from_db(database_url: str | None, *, since: float | None = None, limit: int = 10000) -> list[RecordedCall]:
    """The recorded calls (newest ``limit`` since ``since``), read through the audit store's query layer."""
    try:
        from hybrid_agent.audit import queries, store
        from hybrid_agent.audit.store import AuditStoreError
    except ImportError as exc:
        raise ReplayUnavailable(f"the audit store reader is not available yet ({exc}); replay needs hybrid_agent.audit.queries") from None
    if not all(hasattr(queries, n) for n in ("list_calls", "show_call")) or not all(
        hasattr(store, n) for n in ("make_engine", "connect", "check_schema")
    ):
        raise ReplayUnavailable("the audit store reader is not available yet (hybrid_agent.audit.queries lacks list_calls/show_call)")
    from sqlalchemy.exc import DBAPIError

    if database_url is None:
        from hybrid_agent.settings import load_settings

        database_url = load_settings().database_url
    try:
        engine = store.make_engine(database_url, must_exist=True)
        try:
            with store.connect(engine) as conn:
                store.check_schema(conn)
                rows = queries.list_calls(conn, since=since, limit=limit)
                calls = [calls_from_show(queries.show_call(conn, r["call_id"])) for r in rows]
        finally:
            engine.dispose()
    except AuditStoreError as exc:
        raise ReplayUnavailable(str(exc)) from None
    except DBAPIError as exc:
        orig = getattr(exc, "orig", None) or exc
        first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        raise ReplayUnavailable(f"audit database error: {first}") from None
    calls.sort(key=lambda c: (c.started_at or 0.0, c.call_id))
    return calls
