"""OpenTelemetry traces and metrics for the bridge, tied to the audit's ids (docs/observability.md).

``Telemetry`` is one process's providers: spans (``CallTraces``) when an exporter is configured,
metrics (``Instruments``) for ``GET /metrics`` and the OTLP receiver.  It sees the call through
the audit records (``TelemetrySink`` wraps the audit sink) and through the few stages the adapter
times itself; nothing runs per audio frame unless tracing is on, and then only a clock read.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from hybrid_agent.audit.records import AuditRecord, PolicyDecisionRecord
from hybrid_agent.telemetry.metrics import HISTOGRAMS, LATENCY_BUCKETS_MS, Instruments
from hybrid_agent.telemetry.spans import CallTraces, FrameStats

log = logging.getLogger(__name__)

EXPORTERS = ("none", "console", "otlp-http", "otlp-grpc")


class TelemetryUnavailable(ValueError):
    """The telemetry settings cannot be used; the message is one line for a person."""


def _exporters(kind: str, endpoint: str | None) -> tuple[SpanExporter | None, Any]:
    """The span exporter and metric exporter for ``kind``."""
    if kind == "none":
        return None, None
    if kind == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # stdout as it is now: the exporters' default is the one bound when their module was imported
        return ConsoleSpanExporter(out=sys.stdout), ConsoleMetricExporter(out=sys.stdout)
    if kind == "otlp-http":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        if endpoint is None:
            return OTLPSpanExporter(), OTLPMetricExporter()
        base = endpoint.rstrip("/")
        return OTLPSpanExporter(endpoint=f"{base}/v1/traces"), OTLPMetricExporter(endpoint=f"{base}/v1/metrics")
    if kind == "otlp-grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

        if endpoint is None:
            return GrpcSpanExporter(), GrpcMetricExporter()
        insecure = not endpoint.startswith("https://")
        target = endpoint.split("://", 1)[-1]
        return GrpcSpanExporter(endpoint=target, insecure=insecure), GrpcMetricExporter(endpoint=target, insecure=insecure)
    raise TelemetryUnavailable(f"unknown exporter {kind!r}: one of {', '.join(EXPORTERS)}")


class Telemetry:
    """Tracing (``traces``, None when the exporter is ``none``) and metrics (``instruments``, None when off)."""

    def __init__(self, settings: Any, *, span_exporter: SpanExporter | None = None,
                 metric_readers: Sequence[MetricReader] = ()) -> None:
        resource = Resource.create({"service.name": settings.otel_service_name})
        spans, metric_exporter = _exporters(settings.otel_exporter, settings.otel_endpoint)
        spans = span_exporter or spans
        self.tracer_provider: TracerProvider | None = None
        self.traces: CallTraces | None = None
        if spans is not None:
            self.tracer_provider = TracerProvider(resource=resource)
            self.tracer_provider.add_span_processor(BatchSpanProcessor(spans, schedule_delay_millis=500))
            self.traces = CallTraces(self.tracer_provider.get_tracer("hybrid_agent"))
        readers: list[MetricReader] = list(metric_readers)
        self.registry: Any = None
        if settings.metrics:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
            from prometheus_client import CollectorRegistry

            self.registry = CollectorRegistry(auto_describe=True)
            readers.append(PrometheusMetricReader(registry=self.registry, disable_target_info=True))
        if metric_exporter is not None and settings.metrics:
            readers.append(PeriodicExportingMetricReader(metric_exporter, int(settings.otel_metric_interval_s * 1000)))
        self.meter_provider: MeterProvider | None = None
        self.instruments: Instruments | None = None
        if readers:
            views = [View(instrument_name=name, aggregation=ExplicitBucketHistogramAggregation(LATENCY_BUCKETS_MS))
                     for name in HISTOGRAMS]
            self.meter_provider = MeterProvider(metric_readers=readers, resource=resource, views=views)
            self.instruments = Instruments(self.meter_provider.get_meter("hybrid_agent"), settings.latency_budgets)
        self._enqueued: dict[str, int] = {}  # record id -> enqueue time (ns), until durable
        self.tracks_durability = False  # set by TelemetrySink when its sink reports durable records
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.traces is not None or self.instruments is not None

    # ------------------------------------------------------------------ records
    def observe(self, record: AuditRecord) -> None:
        """A record as it is enqueued (on the event loop): metrics, spans, and its enqueue time."""
        try:
            if self.instruments is not None:
                self.instruments.observe(record)
            if self.traces is not None:
                self.traces.observe(record)
        except Exception:  # telemetry never breaks a call
            log.exception("telemetry: cannot observe a %s", type(record).__name__)
        if self.tracks_durability:  # else nothing would ever take the entry out again
            with self._lock:
                if len(self._enqueued) < 200_000:
                    self._enqueued[record.record_id] = time.time_ns()

    def durable(self, records: Sequence[AuditRecord], where: str) -> None:
        """The audit writer stored ``records`` (``where`` database | spool); on the writer's thread."""
        now = time.time_ns()
        with self._lock:
            enqueued = {r.record_id: self._enqueued.pop(r.record_id, now) for r in records}
        try:
            if self.instruments is not None:
                for t in enqueued.values():
                    self.instruments.timed("audit_lag", "hybrid_agent.audit_lag", (now - t) / 1e6)
                if where == "spool":
                    self.instruments.spooled.add(len(records))
            if self.traces is not None:
                self.traces.audit_durable(records, enqueued, now, where)
        except Exception:
            log.exception("telemetry: cannot record an audit commit")

    # ------------------------------------------------------------------ the adapter's stages
    def frame_stats(self, call_id: str) -> FrameStats | None:
        """Where the adapter adds each caller frame's time in the bridge (tracing on only)."""
        return self.traces.frame_stats(call_id) if self.traces is not None else None

    def policy_check(self, call_id: str, check: Any, outcome: Any, start_ns: int, end_ns: int, actions: Sequence[Any]) -> None:
        try:
            decisions = [a.record for a in actions if isinstance(getattr(a, "record", None), PolicyDecisionRecord)]
            if self.instruments is not None:
                self.instruments.timed("policy", "hybrid_agent.policy_check", (end_ns - start_ns) / 1e6, {"stage": check.stage})
            if self.traces is not None:
                self.traces.policy_check(
                    call_id, subject_id=check.subject_id, stage=check.stage, check_id=check.check_id, start_ns=start_ns,
                    end_ns=end_ns, decisions=decisions, pii_ms=getattr(outcome, "pii_ms", None),
                    rules_ms=getattr(outcome, "rules_ms", None), pii_types=list(getattr(outcome, "pii", {}) or {}),
                    failed=outcome is None)
        except Exception:
            log.exception("telemetry: cannot record a policy check")

    def tool_run(self, call_id: str, tool_call_id: str, name: str, status: str, start_ns: int, end_ns: int) -> None:
        try:
            if self.instruments is not None:
                self.instruments.timed("tool_run", "hybrid_agent.tool_latency", (end_ns - start_ns) / 1e6,
                                       {"tool": name[:64], "status": status})
            if self.traces is not None:
                self.traces.tool_run(call_id, tool_call_id=tool_call_id, name=name, status=status, start_ns=start_ns, end_ns=end_ns)
        except Exception:
            log.exception("telemetry: cannot record a tool run")

    def reconnect(self, call_id: str, attempt: int, ok: bool, start_ns: int, end_ns: int) -> None:
        try:
            if self.instruments is not None:
                self.instruments.reconnects.add(1, {"result": "ok" if ok else "failed"})
            if self.traces is not None:
                self.traces.reconnect(call_id, attempt=attempt, ok=ok, start_ns=start_ns, end_ns=end_ns)
        except Exception:
            log.exception("telemetry: cannot record a reconnect")

    # ------------------------------------------------------------------ export
    def prometheus_text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry) if self.registry is not None else b""

    def flush(self) -> None:
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(5000)
        if self.meter_provider is not None:
            self.meter_provider.force_flush(5000)

    def shutdown(self) -> None:
        """Export what is left and stop the exporters' threads (blocking: call off the event loop)."""
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


class TelemetrySink:
    """An audit sink that shows every record to ``telemetry`` before handing it on; everything else
    (``status``, ``flush`` ...) is the inner sink's."""

    def __init__(self, inner: Any, telemetry: Telemetry) -> None:
        self.inner = inner
        self.telemetry = telemetry
        hook = getattr(inner, "add_durable_hook", None)
        if callable(hook):
            hook(telemetry.durable)
            telemetry.tracks_durability = True

    def enqueue(self, record: AuditRecord) -> None:
        self.telemetry.observe(record)
        self.inner.enqueue(record)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def build_telemetry(settings: Any) -> Telemetry | None:
    """The process's telemetry for ``settings``; None when tracing and metrics are both off."""
    if settings.otel_exporter == "none" and not settings.metrics:
        return None
    return Telemetry(settings)


__all__ = ["EXPORTERS", "FrameStats", "Telemetry", "TelemetrySink", "TelemetryUnavailable", "build_telemetry"]
