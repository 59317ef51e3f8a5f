"""The bridge's metrics (OpenTelemetry instruments), recorded from audit records and the adapter's timings.

Every figure comes from a fact the audit also keeps (a response's ``ResponseMetrics``, a gate
action, a decision), so a dashboard and ``audit show`` never disagree.  Nothing is recorded per
audio frame.  Labels are bounded sets (stage, outcome, rule id of the loaded pack, model, event
source and code), never caller text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.metrics import Meter

from hybrid_agent.audit.records import (
    AuditRecord,
    CallEnded,
    CallEventRecord,
    CallStarted,
    GateActionRecord,
    PolicyDecisionRecord,
    ResponseMetrics,
    TurnInterrupted,
)

#: histogram bucket bounds in ms: the useful range of a voice turn (users judge the worst 200 ms)
LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000)
HISTOGRAMS = {
    "hybrid_agent.time_to_first_audio": "caller stopped speaking -> first audio of the answer sent to the caller",
    "hybrid_agent.gate_hold": "first audio from the model -> released to the caller by the speech gate",
    "hybrid_agent.leaked_audio": "monitor mode: violating audio that reached the caller before the block",
    "hybrid_agent.tool_latency": "a server tool's run",
    "hybrid_agent.policy_check": "one policy check (PII scan and rules) on its worker",
    "hybrid_agent.audit_lag": "an audit record enqueued -> durable in the database or the spool",
}


class Instruments:
    """The counters and histograms, created once per process on ``meter``."""

    def __init__(self, meter: Meter, budgets: Mapping[str, float]) -> None:
        self.budgets = dict(budgets)
        self.hist = {name: meter.create_histogram(name, unit="ms", description=desc) for name, desc in HISTOGRAMS.items()}
        c = meter.create_counter
        self.calls = c("hybrid_agent.calls", description="calls started, by channel")
        self.calls_ended = c("hybrid_agent.calls_ended", description="calls ended, by outcome")
        self.responses = c("hybrid_agent.responses", description="model responses, by model and status")
        self.violations = c("hybrid_agent.violations", description="policy decisions that are violations, by rule")
        self.barge_ins = c("hybrid_agent.barge_ins", description="answers cut short by the caller")
        self.truncates_clamped = c("hybrid_agent.truncates_clamped", description="client truncates clamped to the audio sent")
        self.upstream_errors = c("hybrid_agent.upstream_errors", description="error events from the model, by code")
        self.reconnects = c("hybrid_agent.reconnects", description="upstream reconnects, by result")
        self.spooled = c("hybrid_agent.audit_spooled_records", description="audit records written to the spool (database down)")
        self.over_budget = c("hybrid_agent.budget_exceeded", description="stages over their latency budget, by stage")
        self.tokens = c("hybrid_agent.tokens", description="tokens the model billed, by model and kind")
        self.gate_actions = c("hybrid_agent.gate_actions", description="what the gate did, by action")
        for counter in (self.calls, self.calls_ended, self.responses, self.violations, self.barge_ins, self.truncates_clamped,
                        self.upstream_errors, self.reconnects, self.spooled, self.over_budget, self.tokens, self.gate_actions):
            counter.add(0)  # every counter is exported from the start: a dashboard shows 0, not "no data"

    def observe(self, record: AuditRecord) -> None:
        """One audit record as it is enqueued."""
        if isinstance(record, ResponseMetrics):
            self.responses.add(1, {"model": record.model, "status": record.status})
            if record.ttfa_ms is not None:
                self.hist["hybrid_agent.time_to_first_audio"].record(record.ttfa_ms, {"model": record.model})
            if record.gate_ms is not None:
                self.hist["hybrid_agent.gate_hold"].record(record.gate_ms)
            for stage in (record.over_budget or "").split(","):
                if stage:
                    self.over_budget.add(1, {"stage": stage})
            for kind in ("input_text", "input_audio", "cached_text", "cached_audio", "output_text", "output_audio"):
                n = getattr(record, f"{kind}_tokens")
                if n:
                    self.tokens.add(n, {"model": record.model, "kind": kind})
        elif isinstance(record, CallStarted):
            self.calls.add(1, {"channel": record.channel})
        elif isinstance(record, CallEnded):
            self.calls_ended.add(1, {"outcome": record.outcome})
        elif isinstance(record, PolicyDecisionRecord):
            if record.is_violation:
                self.violations.add(1, {"rule": record.rule_id[:128], "stage": record.stage})
        elif isinstance(record, TurnInterrupted):
            self.barge_ins.add(1)
        elif isinstance(record, GateActionRecord):
            self.gate_actions.add(1, {"action": record.action})
            if record.action == "truncate_clamped":
                self.truncates_clamped.add(1)
            if record.leaked_ms is not None and record.action == "speech_blocked":
                self.hist["hybrid_agent.leaked_audio"].record(record.leaked_ms)
        elif isinstance(record, CallEventRecord):
            if record.source == "upstream":
                self.upstream_errors.add(1, {"code": _label(record.kind)})

    def timed(self, stage: str, histogram: str, ms: float, attributes: Mapping[str, Any] | None = None) -> None:
        """A stage the adapter timed (tool run, policy check, audit lag), against its budget."""
        self.hist[histogram].record(ms, dict(attributes or {}))
        budget = self.budgets.get(stage)
        if budget is not None and ms > budget:
            self.over_budget.add(1, {"stage": stage})


def _label(code: str) -> str:
    """A code as a label: short and plain (an upstream could send anything)."""
    code = code[:64]
    return code if code.replace("_", "").replace(".", "").isalnum() else "other"
