"""Spans per call, turn and stage, built from the audit records as they are enqueued.

One trace per call: the ``call`` span is its root, every turn a child, every stage a child of
its turn (or of the call).  Span attributes are the audit store's ids (``hybrid_agent.call_id``,
``hybrid_agent.record_id`` = the row's primary key, ``hybrid_agent.turn_id``), codes and
numbers; never text, so a trace holds no personal data whatever the caller said.

Turn and response spans are made after the fact with the times the records carry (call clock
ms since the call started, placed on the wall clock of the call's start), so nothing is timed on
the audio path; the adapter's own stages (policy checks, tool runs, reconnects, audit commits)
are reported with the wall-clock nanoseconds it measured.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanContext, Status, StatusCode, Tracer

from hybrid_agent.audit.records import (
    AuditRecord,
    CallEnded,
    CallEventRecord,
    CallStarted,
    GateActionRecord,
    PolicyDecisionRecord,
    ResponseMetrics,
    TurnInterrupted,
    TurnRecord,
)

#: ended calls kept for the spans that arrive after the end (late policy checks, audit commits)
KEEP_ENDED = 1024
#: open calls traced at once (a bound for calls whose end never came)
MAX_LIVE = 20_000
MAX_RECORD_IDS = 50


@dataclass(slots=True)
class FrameStats:
    """Caller audio frames forwarded upstream since the last caller turn: how long each took in the bridge."""

    frames: int = 0
    total_ns: int = 0
    max_ns: int = 0

    def add(self, ns: int) -> None:
        self.frames += 1
        self.total_ns += ns
        if ns > self.max_ns:
            self.max_ns = ns

    def take(self) -> tuple[int, int, int]:
        out = (self.frames, self.total_ns, self.max_ns)
        self.frames = self.total_ns = self.max_ns = 0
        return out


@dataclass(slots=True)
class _CallTrace:
    span: Span
    started_ns: int
    turns: dict[int, SpanContext] = field(default_factory=dict)
    frames: FrameStats = field(default_factory=FrameStats)

    def at(self, ms: float | None) -> int:
        return self.started_ns + int((ms or 0.0) * 1e6)


def _attrs(**kw: Any) -> dict[str, Any]:
    return {f"hybrid_agent.{k}": v for k, v in kw.items() if v is not None}


class CallTraces:
    """The open traces of this process's calls; thread-safe (the audit writer reports from its thread)."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self._calls: OrderedDict[str, _CallTrace] = OrderedDict()
        self._ended: OrderedDict[str, _CallTrace] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, call_id: str) -> _CallTrace | None:
        with self._lock:
            return self._calls.get(call_id) or self._ended.get(call_id)

    def _context(self, trace_: _CallTrace, turn_seq: int | None = None) -> Any:
        parent = trace_.turns.get(turn_seq) if turn_seq is not None else None
        if parent is not None:
            return trace.set_span_in_context(trace.NonRecordingSpan(parent))
        return trace.set_span_in_context(trace_.span)

    def _span(self, trace_: _CallTrace, name: str, start_ns: int, end_ns: int, attributes: Mapping[str, Any],
              turn_seq: int | None = None, error: bool = False) -> Span:
        span = self.tracer.start_span(name, context=self._context(trace_, turn_seq), start_time=start_ns,
                                      attributes=dict(attributes))
        if error:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=max(start_ns, end_ns))
        return span

    def frame_stats(self, call_id: str) -> FrameStats | None:
        t = self._get(call_id)
        return t.frames if t is not None else None

    # ------------------------------------------------------------------ from audit records
    def observe(self, record: AuditRecord) -> None:
        if isinstance(record, CallStarted):
            started_ns = int(record.started_at * 1e9)
            span = self.tracer.start_span("call", start_time=started_ns, attributes=_attrs(
                call_id=record.call_id, record_id=record.record_id, channel=record.channel, model=record.model,
                upstream=record.upstream, policy_pack=record.policy_pack, policy_version=record.policy_version,
                gate_mode=record.gate_mode))
            with self._lock:
                self._calls[record.call_id] = _CallTrace(span, started_ns)
                while len(self._calls) > MAX_LIVE:  # calls whose end never came: bounded
                    self._calls.popitem(last=False)[1].span.end()
            return
        t = self._get(record.call_id)
        if t is None:
            return
        if isinstance(record, TurnRecord):
            self._turn(t, record)
        elif isinstance(record, ResponseMetrics):
            self._response(t, record)
        elif isinstance(record, TurnInterrupted):
            self._span(t, "barge_in", t.at(record.at_ms), t.at(record.at_ms), _attrs(
                call_id=record.call_id, record_id=record.record_id, turn_id=f"{record.call_id}/turn/{record.seq}",
                audio_end_ms=record.audio_end_ms), turn_seq=record.seq)
        elif isinstance(record, GateActionRecord):
            held = record.held_ms or 0.0
            self._span(t, f"gate.{record.action}", t.at(record.at_ms - held), t.at(record.at_ms), _attrs(
                call_id=record.call_id, record_id=record.record_id, action=record.action, mode=record.mode,
                rule_id=record.rule_id, effect=record.effect, held_ms=record.held_ms, leaked_ms=record.leaked_ms,
                status=record.status, tool=record.tool))
        elif isinstance(record, CallEventRecord):
            self._span(t, "call_event", t.at(record.at_ms), t.at(record.at_ms), _attrs(
                call_id=record.call_id, record_id=record.record_id, source=record.source, code=record.kind[:64]),
                error=record.source == "upstream")
        elif isinstance(record, CallEnded):
            t.span.set_attribute("hybrid_agent.outcome", record.outcome)
            t.span.set_attribute("hybrid_agent.end_record_id", record.record_id)
            if record.outcome in ("error", "upstream_unavailable", "interrupted"):
                t.span.set_status(Status(StatusCode.ERROR))
            t.span.end(end_time=t.at(record.at_ms))
            with self._lock:
                ended = self._calls.pop(record.call_id, None)
                if ended is not None:
                    self._ended[record.call_id] = ended
                    while len(self._ended) > KEEP_ENDED:
                        self._ended.popitem(last=False)

    def _turn(self, t: _CallTrace, r: TurnRecord) -> None:
        attrs = _attrs(call_id=r.call_id, record_id=r.record_id, turn_id=r.turn_id, seq=r.seq, role=r.role,
                       status=r.status, audio_ms=r.audio_ms)
        span = self.tracer.start_span(f"turn.{r.role}", context=self._context(t), start_time=t.at(r.started_ms), attributes=attrs)
        t.turns[r.seq] = span.get_span_context()
        if r.role == "user":
            frames, total, worst = t.frames.take()
            if frames:
                self._span(t, "stage.caller_audio_to_upstream", t.at(r.started_ms), t.at(r.ended_ms), _attrs(
                    call_id=r.call_id, turn_id=r.turn_id, frames=frames, mean_forward_us=round(total / frames / 1000, 1),
                    max_forward_us=round(worst / 1000, 1)), turn_seq=r.seq)
        span.end(end_time=max(t.at(r.started_ms), t.at(r.ended_ms)))

    def _response(self, t: _CallTrace, r: ResponseMetrics) -> None:
        turn_id = f"{r.call_id}/turn/{r.turn_seq}" if r.turn_seq is not None else None
        start = r.reference_ms if r.reference_ms is not None else r.at_ms
        attrs = _attrs(call_id=r.call_id, record_id=r.record_id, turn_id=turn_id, response_id=r.response_id,
                       model=r.model, status=r.status, reference=r.reference, ttfa_ms=r.ttfa_ms, gate_ms=r.gate_ms,
                       over_budget=r.over_budget, input_tokens=r.input_text_tokens + r.input_audio_tokens,
                       output_tokens=r.output_text_tokens + r.output_audio_tokens,
                       user_turn_id=f"{r.call_id}/turn/{r.user_seq}" if r.user_seq is not None else None)
        span = self.tracer.start_span("response", context=self._context(t, r.turn_seq), start_time=t.at(start), attributes=attrs)
        ctx = trace.set_span_in_context(span)
        stage_attrs = _attrs(call_id=r.call_id, record_id=r.record_id, turn_id=turn_id)
        if r.released_ms is not None and r.reference_ms is not None:
            self._child(ctx, "stage.time_to_first_audio", t.at(r.reference_ms), t.at(r.released_ms),
                        {**stage_attrs, "hybrid_agent.over_budget": "time_to_first_audio" in (r.over_budget or "")})
        if r.released_ms is not None and r.first_audio_ms is not None:
            self._child(ctx, "stage.gate_hold", t.at(r.first_audio_ms), t.at(r.released_ms),
                        {**stage_attrs, "hybrid_agent.over_budget": "gate_hold" in (r.over_budget or "")})
        span.end(end_time=max(t.at(start), t.at(r.at_ms)))

    def _child(self, ctx: Any, name: str, start_ns: int, end_ns: int, attributes: Mapping[str, Any]) -> None:
        span = self.tracer.start_span(name, context=ctx, start_time=start_ns, attributes=dict(attributes))
        span.end(end_time=max(start_ns, end_ns))

    # ------------------------------------------------------------------ from the adapter
    def policy_check(self, call_id: str, *, subject_id: str, stage: str, check_id: int, start_ns: int, end_ns: int,
                     decisions: Sequence[PolicyDecisionRecord], pii_ms: float | None, rules_ms: float | None,
                     pii_types: Iterable[str], failed: bool) -> None:
        t = self._get(call_id)
        if t is None:
            return
        seq = _turn_seq(call_id, subject_id)
        worst = next((d for d in decisions if d.is_violation), decisions[0] if decisions else None)
        span = self.tracer.start_span("policy.check", context=self._context(t, seq), start_time=start_ns, attributes=_attrs(
            call_id=call_id, subject_id=subject_id, stage=stage, check_id=check_id,
            record_ids=[d.record_id for d in decisions][:MAX_RECORD_IDS] or None,
            rule_id=worst.rule_id if worst else None, effect=worst.effect if worst else None,
            violation=any(d.is_violation for d in decisions), pii_types=sorted(set(pii_types)) or None))
        if failed:
            span.set_status(Status(StatusCode.ERROR))
        ctx = trace.set_span_in_context(span)
        if rules_ms is not None:
            self._child(ctx, "policy.evaluate", end_ns - int(rules_ms * 1e6), end_ns, _attrs(call_id=call_id, subject_id=subject_id))
            if pii_ms:
                pii_end = end_ns - int(rules_ms * 1e6)
                self._child(ctx, "pii.scan", pii_end - int(pii_ms * 1e6), pii_end, _attrs(call_id=call_id, subject_id=subject_id))
        span.end(end_time=end_ns)

    def tool_run(self, call_id: str, *, tool_call_id: str, name: str, status: str, start_ns: int, end_ns: int) -> None:
        t = self._get(call_id)
        if t is not None:
            rid = f"{call_id}/tool/{tool_call_id}"
            self._span(t, "tool.run", start_ns, end_ns, _attrs(
                call_id=call_id, record_id=rid, result_record_id=f"{rid}/result", tool=name[:64], status=status),
                error=status != "ok")

    def reconnect(self, call_id: str, *, attempt: int, ok: bool, start_ns: int, end_ns: int) -> None:
        t = self._get(call_id)
        if t is not None:
            self._span(t, "upstream.reconnect", start_ns, end_ns, _attrs(call_id=call_id, attempt=attempt, ok=ok), error=not ok)

    def audit_durable(self, records: Sequence[AuditRecord], enqueued_ns: Mapping[str, int], now_ns: int, where: str) -> None:
        by_call: dict[str, list[AuditRecord]] = {}
        for r in records:
            by_call.setdefault(r.call_id, []).append(r)
        for call_id, rs in by_call.items():
            t = self._get(call_id)
            if t is None:
                continue
            start = min((enqueued_ns.get(r.record_id, now_ns) for r in rs), default=now_ns)
            self._span(t, "audit.commit", start, now_ns, _attrs(
                call_id=call_id, records=len(rs), destination=where,
                record_ids=[r.record_id for r in rs][:MAX_RECORD_IDS]))


def _turn_seq(call_id: str, subject_id: str) -> int | None:
    prefix = f"{call_id}/turn/"
    if subject_id.startswith(prefix) and subject_id[len(prefix):].isdigit():
        return int(subject_id[len(prefix):])
    return None
