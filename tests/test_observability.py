"""Tracing and metrics through the real entry point: a call through the bridge with OTLP export on
(HTTP and gRPC) arrives at a local receiver as one trace whose spans carry the audit rows' ids and
no personal data; ``/metrics`` needs the bridge token and shows the counters."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import json
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from sqlalchemy import select

from hybrid_agent.audit.models import TABLES
from hybrid_agent.audit.store import make_engine, upgrade
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.settings import Settings

from test_gate_e2e import AUTH, CARD, ROOT, SCENARIO, TOKEN, call


class Received:
    """What a local OTLP receiver decoded: spans (as dicts) and metric names."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.metrics: set[str] = set()
        self.resource_attrs: list[dict[str, Any]] = []

    def traces(self, req: trace_service_pb2.ExportTraceServiceRequest) -> None:
        for rs in req.resource_spans:
            self.resource_attrs.append({a.key: _value(a.value) for a in rs.resource.attributes})
            for ss in rs.scope_spans:
                for s in ss.spans:
                    self.spans.append({
                        "name": s.name, "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                        "parent": s.parent_span_id.hex() or None, "start": s.start_time_unix_nano,
                        "end": s.end_time_unix_nano, "attrs": {a.key: _value(a.value) for a in s.attributes},
                    })

    def metrics_request(self, req: metrics_service_pb2.ExportMetricsServiceRequest) -> None:
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                self.metrics.update(m.name for m in sm.metrics)


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


@pytest.fixture
def http_receiver() -> Iterator[tuple[str, Received]]:
    got = Received()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path == "/v1/traces":
                req = trace_service_pb2.ExportTraceServiceRequest()
                req.ParseFromString(body)
                got.traces(req)
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            elif self.path == "/v1/metrics":
                mreq = metrics_service_pb2.ExportMetricsServiceRequest()
                mreq.ParseFromString(body)
                got.metrics_request(mreq)
                reply = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", got
    server.shutdown()


@pytest.fixture
def grpc_receiver() -> Iterator[tuple[str, Received]]:
    got = Received()

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
            got.traces(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
            got.metrics_request(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", got
    server.stop(0)


def bridge_settings(tmp_path: Path, db: str, **kw: Any) -> Settings:
    scenario = tmp_path / "card.yaml"
    scenario.write_text(SCENARIO)
    return Settings(upstream="sim", host="127.0.0.1", port=0, bridge_tokens=[TOKEN], sim_scenario=scenario,
                    policy_pack=ROOT / "policies" / "retail-banking", gate_mode="hold", database_url=db,
                    audit_spool=tmp_path / "spool", **kw)


def audit_rows(db: str) -> dict[str, list[dict[str, Any]]]:
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = {name: [dict(r) for r in conn.execute(select(TABLES[name])).mappings()] for name in
                ("calls", "turns", "response_metrics", "policy_decisions", "gate_actions")}
    engine.dispose()
    return rows


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, list):
        for v in value:
            yield from strings_in(v)
    elif value is not None:
        yield str(value)


@pytest.mark.parametrize("exporter", ["otlp-http", "otlp-grpc"])
async def test_one_trace_per_call_matches_the_audit_rows(
    exporter: str, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    endpoint, got = request.getfixturevalue("http_receiver" if exporter == "otlp-http" else "grpc_receiver")
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(db)
    settings = bridge_settings(tmp_path, db, otel_exporter=exporter, otel_endpoint=endpoint,
                               latency_budgets={"time_to_first_audio": 1.0})
    async with BridgeServer(settings) as bridge:
        await call(bridge)
        await asyncio.sleep(0.3)  # the last checks and records of the call
    rows = audit_rows(db)
    (call_row,) = rows["calls"]
    spans = [s for s in got.spans if s["attrs"].get("hybrid_agent.call_id") == call_row["id"]]
    assert spans, f"no span for the call at the {exporter} receiver ({len(got.spans)} spans in all)"
    assert len({s["trace_id"] for s in spans}) == 1, "one trace per call"
    by_id = {s["span_id"]: s for s in spans}
    (root,) = [s for s in spans if s["name"] == "call"]
    assert root["parent"] is None and root["attrs"]["hybrid_agent.record_id"] == call_row["id"]
    assert root["attrs"]["hybrid_agent.outcome"] == "completed"
    # every turn row is a span under the call, by its primary key
    turn_spans = {s["attrs"]["hybrid_agent.record_id"]: s for s in spans if s["name"].startswith("turn.")}
    assert {t["id"] for t in rows["turns"]} == set(turn_spans)
    assert all(s["parent"] == root["span_id"] for s in turn_spans.values())
    # every response row is a span under its answer's turn, with its stages under it
    response_spans = {s["attrs"]["hybrid_agent.record_id"]: s for s in spans if s["name"] == "response"}
    assert {m["id"] for m in rows["response_metrics"]} == set(response_spans)
    for m in rows["response_metrics"]:
        span = response_spans[m["id"]]
        if m["turn_seq"] is not None:
            assert by_id[span["parent"]]["attrs"]["hybrid_agent.turn_id"] == f"{call_row['id']}/turn/{m['turn_seq']}"
    ttfa = [s for s in spans if s["name"] == "stage.time_to_first_audio"]
    assert ttfa and all(by_id[s["parent"]]["name"] == "response" for s in ttfa)
    assert {s["name"] for s in spans} >= {"stage.gate_hold", "policy.check", "policy.evaluate", "pii.scan", "audit.commit",
                                          "stage.caller_audio_to_upstream"}
    forwarded = [s for s in spans if s["name"] == "stage.caller_audio_to_upstream"]
    assert all(s["attrs"]["hybrid_agent.frames"] > 0 and by_id[s["parent"]]["name"] == "turn.user" for s in forwarded)
    # every decision row is named by a policy check span
    decided = {rid for s in spans if s["name"] == "policy.check" for rid in s["attrs"].get("hybrid_agent.record_ids", [])}
    assert {d["id"] for d in rows["policy_decisions"]} <= decided
    gate_ids = {s["attrs"]["hybrid_agent.record_id"] for s in spans if s["name"].startswith("gate.")}
    assert {g["id"] for g in rows["gate_actions"]} == gate_ids
    committed = {rid for s in spans if s["name"] == "audit.commit" for rid in s["attrs"]["hybrid_agent.record_ids"]}
    assert {t["id"] for t in rows["turns"]} <= committed
    # the budget of 1 ms: the answer is marked slow in the audit and its stage span says so
    assert all(m["over_budget"] and "time_to_first_audio" in m["over_budget"] for m in rows["response_metrics"] if m["ttfa_ms"])
    assert any(s["attrs"].get("hybrid_agent.over_budget") is True for s in ttfa)
    # no personal data in any exported attribute: the card the model read out, the words of the turns
    planted = [CARD, CARD.replace(" ", ""), "1111 1111", "card number", "What is my card"]
    everything = [v for s in got.spans for v in strings_in(list(s["attrs"].values()))]
    everything += [v for r in got.resource_attrs for v in strings_in(list(r.values()))]
    leaked = [v for v in everything if any(p.lower() in v.lower() for p in planted)]
    assert not leaked, leaked
    assert any("hybrid_agent.calls" in m or "hybrid_agent.time_to_first_audio" in m for m in got.metrics), got.metrics


async def test_metrics_endpoint_needs_the_token_and_counts_the_call(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(db)
    async with BridgeServer(bridge_settings(tmp_path, db)) as bridge:
        base = f"http://127.0.0.1:{bridge.port}"
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{base}/metrics")).status_code == 401
            assert (await http.get(f"{base}/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
            await call(bridge)
            await asyncio.sleep(0.3)
            reply = await http.get(f"{base}/metrics", headers=AUTH)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    text = reply.text
    assert 'hybrid_agent_calls_total{channel="realtime"' in text
    assert "hybrid_agent_time_to_first_audio_milliseconds_bucket" in text
    assert 'hybrid_agent_responses_total{model="gpt-realtime"' in text
    assert "hybrid_agent_audit_lag_milliseconds_count" in text
    assert CARD not in text and "1111" not in text.replace("_", " ").split("le=")[0]
    # the shipped Grafana dashboard queries only metrics the bridge exports
    import re

    dashboard = json.loads((ROOT / "docs" / "grafana" / "hybrid-agent.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    wanted = {m for e in exprs for m in re.findall(r"hybrid_agent_[a-z_]+", e)}
    from hybrid_agent.telemetry.metrics import HISTOGRAMS

    exported = set(re.findall(r"^# TYPE (hybrid_agent_[a-z_]+)", text, re.M))
    exported |= {name.replace(".", "_") + "_milliseconds" for name in HISTOGRAMS}  # a histogram shows once recorded
    series = {m for m in wanted if any(m == name or m.startswith(name + "_") for name in exported)}
    assert wanted - series == set(), f"dashboard names metrics the bridge does not export: {wanted - series}"


async def test_metrics_off_and_tracing_off_make_no_telemetry(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(db)
    async with BridgeServer(bridge_settings(tmp_path, db, metrics=False)) as bridge:
        assert bridge.telemetry is None
        async with httpx.AsyncClient() as http:
            reply = await http.get(f"http://127.0.0.1:{bridge.port}/metrics", headers=AUTH)
    assert reply.status_code == 404 and "metrics are off" in json.dumps(reply.json())


def test_bad_telemetry_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="otel_exporter"):
        Settings(otel_exporter="jaeger")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown stage"):
        Settings(latency_budgets={"ttfb": 100})


def test_console_exporter_prints_the_call_span(capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid_agent.audit.records import CallEnded, CallStarted, TurnRecord
    from hybrid_agent.telemetry import Telemetry

    telemetry = Telemetry(Settings(otel_exporter="console", metrics=False))
    telemetry.observe(CallStarted("call_console", 1_700_000_000.0, "realtime", "gpt-realtime", "sim"))
    telemetry.observe(TurnRecord("call_console", 1, "user", "item_1", "my card is " + CARD, "completed", 0.0, 900.0))
    telemetry.observe(CallEnded("call_console", 1_000.0, "completed"))
    telemetry.shutdown()
    out = capsys.readouterr().out
    assert '"name": "call"' in out and '"name": "turn.user"' in out and '"hybrid_agent.turn_id": "call_console/turn/1"' in out
    assert CARD not in out and "my card" not in out
