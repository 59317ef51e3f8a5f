"""The bridge's ASGI app.

Why Starlette on uvicorn: the telephony webhook is an HTTP POST and a plain
``websockets`` server answers only GET upgrades.  One ASGI app serves both, and
uvicorn's ``websockets-sansio`` protocol keeps ``websockets``' own protocol
engine on the WebSocket paths (see docs/architecture.md).
"""

from __future__ import annotations

import concurrent.futures
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from hybrid_agent.audit.sink import AuditSink
from hybrid_agent.policy.gate import PolicyGate
from hybrid_agent.server.auth import bearer_token, token_is_valid
from hybrid_agent.settings import Settings
from hybrid_agent.transports.realtime_ws import serve_realtime_client
from hybrid_agent.upstream.connector import UpstreamConnector

log = logging.getLogger(__name__)


def _unauthorized() -> Response:
    return JSONResponse(
        {"error": {"type": "invalid_request_error", "code": "invalid_api_key", "message": "Missing or invalid bridge token."}},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def build_app(
    settings: Settings,
    connector: UpstreamConnector,
    audit: AuditSink,
    policy_gate: PolicyGate | None = None,
    gate_executor: concurrent.futures.Executor | None = None,
) -> Starlette:
    async def healthz(request: Request) -> Response:
        if not token_is_valid(bearer_token(request.headers), settings.bridge_tokens):
            return _unauthorized()
        return JSONResponse({"status": "ok", "upstream": connector.label})

    async def realtime(websocket: WebSocket) -> None:
        if not token_is_valid(bearer_token(websocket.headers), settings.bridge_tokens):
            await websocket.send_denial_response(_unauthorized())
            return
        await serve_realtime_client(
            websocket,
            settings=settings,
            connector=connector,
            audit=audit,
            policy_gate=policy_gate,
            gate_executor=gate_executor,
        )

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            WebSocketRoute("/v1/realtime", realtime),
        ],
    )
