"""The bridge's ASGI app.

Why Starlette on uvicorn: the telephony webhook is an HTTP POST and a plain
``websockets`` server answers only GET upgrades.  One ASGI app serves both, and
uvicorn's ``websockets-sansio`` protocol keeps ``websockets``' own protocol
engine on the WebSocket paths (see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
from collections import OrderedDict
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from hybrid_agent.audit.sink import AuditSink
from hybrid_agent.policy.gate import PolicyGate
from hybrid_agent.server.drain import ActiveCalls
from hybrid_agent.server.auth import bearer_token, token_is_valid
from hybrid_agent.server.escalation import EscalationSink
from hybrid_agent.server.twilio_webhook import MEDIA_PATH, VOICE_PATH, stream_tokens_for, twilio_voice_endpoint
from hybrid_agent.transports.twilio import serve_twilio_media
from hybrid_agent.transports.twilio_transfer import TwilioTransfer
from hybrid_agent.settings import Settings
from hybrid_agent.transports.realtime_ws import run_bridged_call, serve_realtime_client
from hybrid_agent.upstream.connector import UpstreamConnector

log = logging.getLogger(__name__)


_REFUSALS = {
    "draining": "this bridge is shutting down; connect again (another instance takes the call)",
    "at_capacity": "this bridge takes no more calls now (HYBRID_AGENT_MAX_CALLS); try again",
}


def _refused(code: str) -> Response:
    """A call not taken now (``ActiveCalls.admit``): 503, try again in a second."""
    return JSONResponse({"error": {"type": "server_error", "code": code, "message": _REFUSALS[code]}},
                        status_code=503, headers={"Retry-After": "1"})


def _unauthorized() -> Response:
    return JSONResponse(
        {"error": {"type": "invalid_request_error", "code": "invalid_api_key", "message": "Missing or invalid bridge token."}},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def audit_state(audit: object) -> dict[str, Any] | None:
    """The audit sink's ``status()`` (``AuditWriter``), or ``None`` for a sink without one (memory sink)."""
    status = getattr(audit, "status", None)
    if not callable(status):
        return None
    try:
        state = json.loads(json.dumps(dict(status()), default=str))  # whatever it holds, the answer is JSON
    except Exception as exc:  # a health probe must answer, whatever the writer does
        log.exception("audit status failed")
        return {"healthy": False, "database_reachable": False, "spooling": False, "spool_writable": False,
                "last_error": f"status unavailable: {type(exc).__name__}"}
    return state


def audit_degraded(state: dict[str, Any] | None) -> bool:
    """Records are not reaching the database (spooling), the writer says it is unhealthy, or the spool
    (the fallback when the database goes) cannot be written."""
    return state is not None and (
        bool(state.get("spooling")) or not state.get("healthy", True) or state.get("spool_writable") is False
    )


def audit_durable(state: dict[str, Any] | None) -> bool:
    """An audit record can be stored durably now: the database or the spool takes it."""
    if state is None:
        return True  # a sink without status() (memory, fan-out in the demo) keeps what it is given
    if "ready" in state:  # AuditWriter's own verdict: running, and the database or the spool takes writes
        return bool(state["ready"])
    return bool(state.get("database_reachable")) or bool(state.get("spool_writable"))


def build_app(
    settings: Settings,
    connector: UpstreamConnector,
    audit: AuditSink,
    policy_gate: PolicyGate | None = None,
    gate_executor: concurrent.futures.Executor | None = None,
    *,
    escalations: EscalationSink | None = None,
    calls: ActiveCalls | None = None,
) -> Starlette:
    calls = calls if calls is not None else ActiveCalls()

    async def healthz(request: Request) -> Response:
        if not token_is_valid(bearer_token(request.headers), settings.bridge_tokens):
            return _unauthorized()
        body: dict[str, Any] = {"status": "ok", "upstream": connector.label, "calls": len(calls),
                                "tasks": len(asyncio.all_tasks())}  # this worker's event loop: a leak shows here
        state = audit_state(audit)
        if state is not None:
            body["audit"] = state
            if audit_degraded(state):
                body["status"] = "degraded"  # alive and taking calls, but records are not in the database
        if calls.draining:
            body["status"] = "draining"  # alive, finishing its calls, taking no new ones
        return JSONResponse(body)

    async def readyz(request: Request) -> Response:
        """200 when a call's audit records can be stored durably (database or spool), else 503."""
        if not token_is_valid(bearer_token(request.headers), settings.bridge_tokens):
            return _unauthorized()
        state = audit_state(audit)
        ready = audit_durable(state)
        body: dict[str, Any] = {"status": "ready" if ready else "unavailable", "upstream": connector.label}
        if state is not None:
            body["audit"] = state
        if not ready:
            body["reason"] = "audit records cannot be stored: neither the database nor the spool is writable"
        if calls.draining:  # SIGTERM: a load balancer takes this instance out while its calls finish
            ready = False
            body.update(status="draining", reason=f"shutting down: {len(calls)} call(s) finishing, no new ones")
        return JSONResponse(body, status_code=200 if ready else 503)

    telemetry = getattr(audit, "telemetry", None)  # a TelemetrySink (hybrid_agent/telemetry) carries it

    async def metrics(request: Request) -> Response:
        """Prometheus text format; the bridge token is required like on every endpoint."""
        if not token_is_valid(bearer_token(request.headers), settings.bridge_tokens):
            return _unauthorized()
        if telemetry is None or telemetry.registry is None:
            return JSONResponse({"error": {"type": "not_found", "message": "metrics are off (HYBRID_AGENT_METRICS=0)"}},
                                status_code=404)
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(telemetry.prometheus_text(), media_type=CONTENT_TYPE_LATEST)

    async def realtime(websocket: WebSocket) -> None:
        if not token_is_valid(bearer_token(websocket.headers), settings.bridge_tokens):
            await websocket.send_denial_response(_unauthorized())
            return
        refused = calls.admit(settings.max_calls)
        if refused is not None:
            log.warning("call refused (%s): %d calls open", refused, calls.connections)
            await websocket.send_denial_response(_refused(refused))
            return
        try:
            await serve_realtime_client(
                websocket,
                settings=settings,
                connector=connector,
                audit=audit,
                policy_gate=policy_gate,
                gate_executor=gate_executor,
                escalations=escalations,
                calls=calls,
            )
        finally:
            calls.release()

    # Twilio: the voice webhook is authenticated by X-Twilio-Signature, not a bridge token
    # (Twilio cannot send one); the media stream by the token the webhook put in its TwiML
    stream_tokens = stream_tokens_for(settings)
    streamed_calls: OrderedDict[str, None] = OrderedDict()  # one media stream per call (a token is not reusable)

    async def twilio_media(websocket: WebSocket) -> None:
        async def run_call(client: Any, caller_id: str | None, metadata: dict[str, str], first_events: list[dict[str, Any]]) -> None:
            async def refuse(message: str) -> None:
                await client.close(1011, "upstream unavailable")

            await run_bridged_call(
                client, channel="twilio", requested_model=None, refuse=refuse, settings=settings, connector=connector,
                audit=audit, policy_gate=policy_gate, gate_executor=gate_executor, escalations=escalations,
                caller_id=caller_id, call_metadata=metadata, first_client_events=first_events, calls=calls,
            )

        # Twilio cannot be refused at the handshake with a status it acts on: 1013, try again later
        refused = calls.admit(settings.max_calls)
        if refused is not None:
            await websocket.accept()
            await websocket.close(1013, "bridge shutting down" if refused == "draining" else "bridge at capacity")
            return
        try:
            await serve_twilio_media(websocket, stream_tokens=stream_tokens, run_call=run_call, streamed=streamed_calls,
                                     transfer=transfer_for_call)
        finally:
            calls.release()

    def transfer_for_call() -> TwilioTransfer | None:
        if not settings.twilio_transfer_number or settings.twilio_auth_token is None:
            return None
        return TwilioTransfer(settings.twilio_api_base, settings.twilio_auth_token.get_secret_value(), settings.twilio_transfer_number)

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            WebSocketRoute("/v1/realtime", realtime),
            Route(VOICE_PATH, twilio_voice_endpoint(settings, stream_tokens, lambda: calls.draining), methods=["POST"]),
            WebSocketRoute(MEDIA_PATH, twilio_media),
        ],
    )
    app.state.stream_tokens = stream_tokens  # None when Twilio is not configured
    return app
