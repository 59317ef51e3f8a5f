"""The signed escalation webhook, against a real HTTP receiver on 127.0.0.1.

What is posted (ids and the rule only), how it is signed and verified, retries (5xx and
connection errors, never 4xx), a down receiver never holding up ``notify()`` nor shutdown,
the settings (a webhook without a secret is refused), and the wiring CallRunner -> notifier
through a real BridgeServer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from websockets.asyncio.client import connect as ws_connect

from hybrid_agent import cli
from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.server.escalation import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EscalationNotifier,
    sign,
    verify_signature,
)
from hybrid_agent.server.runner import BridgeServer, EscalationUnavailable
from hybrid_agent.session import NotifyEscalation
from hybrid_agent.settings import Settings
from hybrid_agent.transports import realtime_ws

SECRET = "whsec-test-0123456789abcdef"
TOKEN = "escalation-test-token"
PAYLOAD_KEYS = {"type", "call_id", "rule_id", "stage", "severity", "at_ms", "pack", "pack_version", "sent_at", "id"}
FAST_RETRIES = (0.05, 0.05, 0.05)


def action(call_id: str = "call_abc123", **kw: Any) -> NotifyEscalation:
    fields: dict[str, Any] = {
        "call_id": call_id, "rule_id": "bank.user.complaint", "stage": "user_text", "severity": "high",
        "at_ms": 1234.5, "pack": "retail-banking", "pack_version": "1.2.0",
    }
    fields.update(kw)
    return NotifyEscalation(**fields)


class Receiver:
    """A local webhook receiver (http.server in a thread): records every POST, answers the
    statuses it is given in order, then 200."""

    def __init__(self, statuses: tuple[int, ...] = ()) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.statuses = deque(statuses)
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    receiver.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.statuses.popleft() if receiver.statuses else 200
                answer = b'{"ok": true}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/escalation"

    async def wait_for(self, n: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < n:
            assert time.monotonic() < deadline, f"receiver got {len(self.requests)} of {n} requests"
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- what is posted, and its signature ------------------------------------------------------------


async def test_posts_signed_payload_with_ids_only(receiver: Receiver) -> None:
    before = int(time.time())
    async with EscalationNotifier(receiver.url, SECRET, retry_delays_s=FAST_RETRIES) as notifier:
        notifier.notify(action())
        notifier.notify(action("call_second", severity=None))
        await receiver.wait_for(2)
    assert notifier.stats()["delivered"] == 2 and notifier.stats()["pending"] == 0

    bodies = {}
    for path, headers, body in receiver.requests:
        assert path == "/hooks/escalation"
        assert headers["content-type"] == "application/json"
        payload = json.loads(body)
        bodies[payload["call_id"]] = payload
        assert set(payload) == PAYLOAD_KEYS  # nothing else: no transcript, no matched text
        ts = headers[TIMESTAMP_HEADER.lower()]
        assert payload["sent_at"] == int(ts) and before <= int(ts) <= time.time() + 1
        # the documented scheme, computed by hand
        expected = hmac.new(SECRET.encode(), f"{ts}.{body.decode()}".encode(), hashlib.sha256).hexdigest()
        assert headers[SIGNATURE_HEADER.lower()] == f"sha256={expected}"
        assert verify_signature(SECRET, ts, body, headers[SIGNATURE_HEADER.lower()], now=time.time())
    first = bodies["call_abc123"]
    assert {k: v for k, v in first.items() if k not in ("sent_at", "id")} == {
        "type": "call.escalated", "call_id": "call_abc123", "rule_id": "bank.user.complaint", "stage": "user_text",
        "severity": "high", "at_ms": 1234.5, "pack": "retail-banking", "pack_version": "1.2.0",
    }
    assert bodies["call_second"]["severity"] is None
    assert first["id"].startswith("esc_") and first["id"] != bodies["call_second"]["id"]


def test_verify_signature_rejects_wrong_secret_old_timestamps_and_tampering() -> None:
    body = json.dumps({"type": "call.escalated", "call_id": "call_1"}).encode()
    ts = 1_700_000_000
    header = sign(SECRET, ts, body)
    assert header.startswith("sha256=")
    assert verify_signature(SECRET, str(ts), body, header, now=ts + 10)
    assert verify_signature(SecretStr(SECRET), ts, body.decode(), header, now=ts)  # str body, SecretStr key
    assert not verify_signature("another-secret", str(ts), body, header, now=ts)
    assert not verify_signature(SECRET, str(ts), body + b" ", header, now=ts)  # body changed
    assert not verify_signature(SECRET, str(ts + 1), body, header, now=ts)  # timestamp changed
    # a replay: a valid signature, but too old (or too far in the future)
    assert verify_signature(SECRET, str(ts), body, header, now=ts + 300)
    assert not verify_signature(SECRET, str(ts), body, header, now=ts + 301)
    assert not verify_signature(SECRET, str(ts), body, header, now=ts - 301)
    assert not verify_signature(SECRET, str(ts), body, header, now=ts + 61, tolerance_s=60)
    # malformed or missing
    assert not verify_signature(SECRET, None, body, header, now=ts)
    assert not verify_signature(SECRET, str(ts), body, None, now=ts)
    assert not verify_signature(SECRET, "not-a-time", body, header, now=ts)
    assert not verify_signature(SECRET, str(ts), body, header.removeprefix("sha256="), now=ts)
    assert not verify_signature(SECRET, str(ts), body, "sha256=" + "0" * 64, now=ts)
    assert not verify_signature(SECRET, str(ts), body, "sha256=ünïcode", now=ts)


# --- retries -----------------------------------------------------------------------------------------


async def test_5xx_is_retried_with_the_same_id_and_a_fresh_signature(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hybrid_agent.server.escalation")
    receiver = Receiver(statuses=(500, 503))
    try:
        async with EscalationNotifier(receiver.url, SECRET, retry_delays_s=FAST_RETRIES) as notifier:
            notifier.notify(action())
            await receiver.wait_for(3)
            await asyncio.sleep(0.2)
        assert len(receiver.requests) == 3
        ids = {json.loads(body)["id"] for _, _, body in receiver.requests}
        assert len(ids) == 1  # one delivery: the receiver deduplicates on id
        for _, headers, body in receiver.requests:
            assert verify_signature(SECRET, headers[TIMESTAMP_HEADER.lower()], body,
                                    headers[SIGNATURE_HEADER.lower()], now=time.time())
        assert notifier.delivered == 1 and notifier.failed == 0
    finally:
        receiver.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("call_abc123" in m and "HTTP 500" in m and "retrying" in m for m in messages)
    assert any("call_abc123" in m and "delivered (HTTP 200, attempt 3)" in m for m in messages)


async def test_4xx_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hybrid_agent.server.escalation")
    receiver = Receiver(statuses=(400, 400, 400))
    try:
        async with EscalationNotifier(receiver.url, SECRET, retry_delays_s=FAST_RETRIES) as notifier:
            notifier.notify(action())
            await receiver.wait_for(1)
            await asyncio.sleep(0.4)  # longer than every retry delay together
        assert len(receiver.requests) == 1
        assert notifier.failed == 1 and notifier.delivered == 0
    finally:
        receiver.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["escalation webhook: call call_abc123: refused (HTTP 400), not retried"]


async def test_connection_errors_are_retried_then_given_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hybrid_agent.server.escalation")
    notifier = EscalationNotifier(f"http://127.0.0.1:{closed_port()}/hook", SECRET, retry_delays_s=(0.01, 0.01))
    async with notifier:
        notifier.notify(action())
        for _ in range(300):
            if notifier.failed:
                break
            await asyncio.sleep(0.01)
    assert notifier.failed == 1
    messages = [r.getMessage() for r in caplog.records]
    assert sum("attempt" in m and "failed (ConnectError), retrying" in m for m in messages) == 2
    assert "escalation webhook: call call_abc123: not delivered after 3 attempts (ConnectError)" in messages


# --- never on the audio path ------------------------------------------------------------------------


async def test_down_receiver_never_blocks_notify_and_aclose_keeps_its_deadline() -> None:
    # a receiver that accepts connections and never answers: every attempt waits for its timeout
    hung = socket.create_server(("127.0.0.1", 0), backlog=128)
    try:
        url = f"http://127.0.0.1:{hung.getsockname()[1]}/hook"
        notifier = EscalationNotifier(url, SECRET, close_timeout_s=0.5)  # default 5 s timeout, default retries
        await notifier.start()
        started = time.perf_counter()
        for i in range(200):
            notifier.notify(action(f"call_{i}"))
        assert time.perf_counter() - started < 0.05  # 200 notifications, no waiting on the receiver
        await asyncio.sleep(0.1)  # the workers are now stuck in their requests
        started = time.perf_counter()
        await notifier.aclose()
        assert time.perf_counter() - started < 1.5
        assert notifier.delivered == 0 and notifier.failed == 200
        notifier.notify(action("call_late"))  # after close: dropped, never raises
        assert notifier.dropped == 1
    finally:
        hung.close()

    # connection refused: the same
    notifier = EscalationNotifier(f"http://127.0.0.1:{closed_port()}/hook", SECRET, close_timeout_s=0.5)
    async with notifier:
        started = time.perf_counter()
        notifier.notify(action())
        assert time.perf_counter() - started < 0.01
        started = time.perf_counter()
    assert time.perf_counter() - started < 1.5


async def test_full_queue_drops_the_newest(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    notifier = EscalationNotifier(receiver.url, SECRET, max_queue=2, retry_delays_s=FAST_RETRIES)
    for call in ("call_1", "call_2", "call_3"):
        notifier.notify(action(call, rule_id="secret.rule.text"))  # not started: the queue fills
    assert notifier.dropped == 1 and notifier.queued == 2
    dropped = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert dropped == ["escalation webhook: call call_3: queue full, notification dropped (1 dropped so far)"]
    async with notifier:
        await receiver.wait_for(2)
    assert sorted(json.loads(b)["call_id"] for _, _, b in receiver.requests) == ["call_1", "call_2"]


async def test_the_secret_is_never_logged(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.statuses.extend([502])
    async with EscalationNotifier(receiver.url, SecretStr(SECRET), retry_delays_s=FAST_RETRIES) as notifier:
        notifier.notify(action())
        await receiver.wait_for(2)
    assert SECRET not in caplog.text and SECRET not in repr(notifier)
    for record in caplog.records:
        if record.name.startswith("hybrid_agent"):
            assert "bank.user.complaint" not in record.getMessage()  # call id and status only


def test_notifier_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="http"):
        EscalationNotifier("ftp://example.com/hook", SECRET)
    with pytest.raises(ValueError, match="empty"):
        EscalationNotifier("https://example.com/hook", "")


# --- settings -----------------------------------------------------------------------------------------


def test_settings_read_and_validate_the_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRID_AGENT_ESCALATION_WEBHOOK", "https://ops.example.com/hooks/escalation")
    monkeypatch.setenv("HYBRID_AGENT_ESCALATION_SECRET", SECRET)
    settings = Settings()
    assert settings.escalation_webhook == "https://ops.example.com/hooks/escalation"
    assert settings.escalation_secret is not None and settings.escalation_secret.get_secret_value() == SECRET
    assert SECRET not in repr(settings) and SECRET not in settings.model_dump_json()

    for bad in ("ftp://example.com/x", "example.com/hook", "https://", "not a url"):
        with pytest.raises(ValidationError, match="escalation_webhook"):
            Settings(escalation_webhook=bad)
    assert Settings(escalation_webhook="  ").escalation_webhook is None
    assert Settings(escalation_webhook="http://127.0.0.1:9000/x").escalation_webhook == "http://127.0.0.1:9000/x"
    assert Settings(escalation_secret="").escalation_secret is None


def test_bridge_refuses_a_webhook_without_a_secret() -> None:
    settings = Settings(upstream="sim", port=0, bridge_tokens=[TOKEN], escalation_webhook="https://ops.example.com/hook")
    with pytest.raises(EscalationUnavailable, match="HYBRID_AGENT_ESCALATION_SECRET"):
        BridgeServer(settings, audit=MemoryAuditSink())
    with pytest.raises(EscalationUnavailable):  # an injected notifier does not make the settings right
        BridgeServer(settings, audit=MemoryAuditSink(), escalations=SimpleNamespace(notify=lambda a: None))
    ok = BridgeServer(settings.model_copy(update={"escalation_secret": SecretStr(SECRET)}), audit=MemoryAuditSink())
    assert isinstance(ok.escalations, EscalationNotifier)
    assert BridgeServer(Settings(upstream="sim", port=0), audit=MemoryAuditSink()).escalations is None


def test_serve_refuses_to_start_with_a_webhook_without_a_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYBRID_AGENT_BRIDGE_TOKENS", TOKEN)
    monkeypatch.setenv("HYBRID_AGENT_ESCALATION_WEBHOOK", "https://ops.example.com/hook")
    monkeypatch.delenv("HYBRID_AGENT_ESCALATION_SECRET", raising=False)
    assert cli.main(["serve", "--upstream", "sim", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: HYBRID_AGENT_ESCALATION_WEBHOOK is set but HYBRID_AGENT_ESCALATION_SECRET is not")
    assert list(tmp_path.iterdir()) == []  # refused before anything was created

    monkeypatch.setenv("HYBRID_AGENT_ESCALATION_WEBHOOK", "gopher://ops.example.com/hook")
    monkeypatch.setenv("HYBRID_AGENT_ESCALATION_SECRET", SECRET)
    assert cli.main(["serve", "--upstream", "sim", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "invalid setting escalation_webhook" in err and SECRET not in err


# --- wiring: CallRunner and a real bridge -------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.actions: list[NotifyEscalation] = []

    def notify(self, action: NotifyEscalation) -> None:
        self.actions.append(action)


async def test_call_runner_hands_escalations_to_the_notifier() -> None:
    session = SimpleNamespace(call_id="call_wired")
    recorder = Recorder()
    runner = realtime_ws.CallRunner(session, None, None, MemoryAuditSink(), escalations=recorder)  # type: ignore[arg-type]
    await runner.execute([action("call_wired")])
    assert recorder.actions == [action("call_wired")]

    def broken(_: NotifyEscalation) -> None:
        raise RuntimeError("boom")

    runner = realtime_ws.CallRunner(session, None, None, MemoryAuditSink(),  # type: ignore[arg-type]
                                    escalations=SimpleNamespace(notify=broken))
    await runner.execute([action("call_wired")])  # a failing notifier never ends the call
    without = realtime_ws.CallRunner(session, None, None, MemoryAuditSink())  # type: ignore[arg-type]
    await without.execute([action("call_wired")])  # no notifier configured: nothing happens


@pytest.mark.parametrize("how", ["settings", "injected"])
async def test_bridge_posts_the_webhook_for_an_escalating_call(
    how: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until the call session escalates on its own, the call's runner is made to emit one
    NotifyEscalation at the start of the call; everything after it is the real path."""
    runners: list[realtime_ws.CallRunner] = []

    class EscalatingRunner(realtime_ws.CallRunner):
        async def execute(self, actions: list[Any]) -> None:
            if self not in runners:
                runners.append(self)
                actions = [*actions, action(self.session.call_id)]
            await super().execute(actions)

    monkeypatch.setattr(realtime_ws, "CallRunner", EscalatingRunner)
    base = {"upstream": "sim", "host": "127.0.0.1", "port": 0, "bridge_tokens": [TOKEN]}
    injected: EscalationNotifier | None = None
    if how == "settings":
        bridge = BridgeServer(Settings(**base, escalation_webhook=receiver.url, escalation_secret=SECRET),  # type: ignore[arg-type]
                              audit=MemoryAuditSink())
    else:
        injected = EscalationNotifier(receiver.url, SECRET, retry_delays_s=FAST_RETRIES)
        await injected.start()
        bridge = BridgeServer(Settings(**base), audit=MemoryAuditSink(), escalations=injected)  # type: ignore[arg-type]
    async with bridge:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime", additional_headers=headers) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.created"
            await receiver.wait_for(1)
    if injected is not None:
        await injected.aclose()
    assert len(runners) == 1
    _, headers_, body = receiver.requests[0]
    payload = json.loads(body)
    assert payload["call_id"] == runners[0].session.call_id and payload["type"] == "call.escalated"
    assert verify_signature(SECRET, headers_[TIMESTAMP_HEADER.lower()], body, headers_[SIGNATURE_HEADER.lower()],
                            now=time.time())
    if how == "settings":
        assert isinstance(bridge.escalations, EscalationNotifier)
        assert bridge.escalations.stats()["pending"] == 0  # flushed and closed with the bridge
        assert bridge.escalations.delivered == 1
