"""The signed escalation webhook: a rule escalated a call, tell the operator's system.

The call session emits ``NotifyEscalation`` (ids, the rule, when; never the text that
matched) and the call's runner hands it to :meth:`EscalationNotifier.notify`, which only
puts it on a bounded queue: nothing on the caller's audio path waits for the receiver.
Background workers POST each notification as JSON, signed with HMAC-SHA256::

    X-Hybrid-Agent-Timestamp: <unix seconds>
    X-Hybrid-Agent-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>

``body`` is the exact request body (UTF-8 bytes).  A receiver recomputes the HMAC over the
timestamp header, a ``.`` and the raw body, compares in constant time, rejects a timestamp
outside a few minutes of its clock (:func:`verify_signature`) and drops a delivery ``id`` it
has already seen (a retry carries the same ``id`` with a fresh timestamp and signature).
See docs/policy.md, "Escalation webhook".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from hybrid_agent.session.actions import NotifyEscalation

__all__ = [
    "EVENT_TYPE",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "EscalationNotifier",
    "EscalationSink",
    "sign",
    "verify_signature",
]

log = logging.getLogger(__name__)

EVENT_TYPE = "call.escalated"
TIMESTAMP_HEADER = "X-Hybrid-Agent-Timestamp"
SIGNATURE_HEADER = "X-Hybrid-Agent-Signature"
_SCHEME = "sha256="

#: pauses before the 2nd, 3rd and 4th attempt (connection errors, timeouts and 5xx only)
RETRY_DELAYS_S = (0.5, 2.0, 5.0)


class EscalationSink(Protocol):
    """What a call's runner needs: hand over a notification without waiting."""

    def notify(self, action: NotifyEscalation) -> None: ...


def _key(secret: str | bytes | SecretStr) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def _as_bytes(body: str | bytes) -> bytes:
    return body.encode() if isinstance(body, str) else bytes(body)


def sign(secret: str | bytes | SecretStr, timestamp: int | str, body: str | bytes) -> str:
    """The ``X-Hybrid-Agent-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``f"{timestamp}.{body}"``."""
    message = str(timestamp).encode() + b"." + _as_bytes(body)
    return _SCHEME + hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str | bytes | SecretStr,
    timestamp: str | int | None,
    body: str | bytes,
    header: str | None,
    *,
    now: float,
    tolerance_s: float = 300,
) -> bool:
    """A receiver's check: ``header`` (``X-Hybrid-Agent-Signature``) signs ``timestamp``
    (``X-Hybrid-Agent-Timestamp``) and the raw ``body`` with ``secret``, and ``timestamp`` is
    within ``tolerance_s`` of ``now`` (unix seconds) either way.  Never raises: anything
    missing or malformed is ``False``.  Replays inside the window are the receiver's to drop
    by the payload's ``id``."""
    if timestamp is None or header is None:
        return False
    ts_text = str(timestamp).strip()
    if not ts_text.isascii() or not ts_text.isdigit():
        return False
    if abs(now - int(ts_text)) > tolerance_s:
        return False
    if not header.startswith(_SCHEME):
        return False
    try:
        expected = sign(secret, ts_text, body)
    except (TypeError, ValueError):
        return False
    return hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "replace"))


@dataclass(frozen=True, slots=True)
class _Delivery:
    id: str
    action: NotifyEscalation


def _payload(delivery: _Delivery, sent_at: int) -> dict[str, Any]:
    a = delivery.action
    return {
        "type": EVENT_TYPE,
        "call_id": a.call_id,
        "rule_id": a.rule_id,
        "stage": a.stage,
        "severity": a.severity,
        "at_ms": a.at_ms,
        "pack": a.pack,
        "pack_version": a.pack_version,
        "sent_at": sent_at,
        "id": delivery.id,
    }


class EscalationNotifier:
    """Posts signed ``call.escalated`` webhooks from background tasks.

    ``notify()`` is synchronous and never waits: the notification goes on a queue of
    ``max_queue``; when it is full the newest is dropped (counted in ``dropped``, logged with
    the call id).  ``start()`` opens the HTTP client and the workers; ``aclose()`` delivers
    what is queued for at most ``close_timeout_s`` seconds, then stops.  Every attempt has a
    ``timeout_s`` deadline; connection errors, timeouts and 5xx are retried after each of
    ``retry_delays_s``, any other answer (2xx delivered, 3xx/4xx refused) is final.
    """

    def __init__(
        self,
        url: str,
        secret: str | bytes | SecretStr,
        *,
        max_queue: int = 1000,
        timeout_s: float = 5.0,
        retry_delays_s: Sequence[float] = RETRY_DELAYS_S,
        close_timeout_s: float = 5.0,
        workers: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("escalation webhook must be an http:// or https:// URL")
        key = _key(secret)
        if not key:
            raise ValueError("escalation webhook secret is empty")
        self._url = url
        self._key = key  # never logged, never in repr
        self._host = parts.hostname
        self._timeout_s = timeout_s
        self._retry_delays_s = tuple(retry_delays_s)
        self._close_timeout_s = close_timeout_s
        self._n_workers = max(1, workers)
        self._transport = transport
        self._clock = clock
        self._queue: asyncio.Queue[_Delivery] = asyncio.Queue(maxsize=max_queue)
        self._client: httpx.AsyncClient | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight = 0
        self._closed = False
        self.queued = 0  # accepted by notify()
        self.dropped = 0  # refused by notify(): queue full or notifier closed
        self.delivered = 0  # a 2xx answer
        self.failed = 0  # refused (3xx/4xx), out of retries, or undelivered at close

    def __repr__(self) -> str:
        return f"EscalationNotifier(host={self._host!r}, queued={self._queue.qsize()}, dropped={self.dropped})"

    def stats(self) -> dict[str, int]:
        return {"queued": self.queued, "pending": self._queue.qsize() + self._in_flight, "dropped": self.dropped,
                "delivered": self.delivered, "failed": self.failed}

    # --- the caller's side: never waits -------------------------------------------------------

    def notify(self, action: NotifyEscalation) -> None:
        """Queue one notification and return at once (drops it, with a warning, when full or closed)."""
        if self._closed:
            self.dropped += 1
            log.warning("escalation webhook: call %s: notifier closed, notification dropped", action.call_id)
            return
        try:
            self._queue.put_nowait(_Delivery(id=f"esc_{uuid.uuid4().hex}", action=action))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning(
                "escalation webhook: call %s: queue full, notification dropped (%d dropped so far)",
                action.call_id, self.dropped,
            )
            return
        self.queued += 1

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._workers or self._closed:
            return
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout_s), follow_redirects=False, transport=self._transport
        )
        self._workers = [
            asyncio.create_task(self._work(), name=f"escalation-webhook-{i}") for i in range(self._n_workers)
        ]

    async def aclose(self) -> None:
        """Deliver what is queued (at most ``close_timeout_s``), then stop the workers and the client."""
        if self._closed:
            return
        self._closed = True
        if self._workers:
            try:
                await asyncio.wait_for(self._queue.join(), self._close_timeout_s)
            except TimeoutError:
                pass
        left = self._queue.qsize() + self._in_flight  # counted before the cancelled workers let go of theirs
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        if left:
            self.failed += left
            log.warning("escalation webhook: %d notification(s) undelivered at shutdown", left)
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> "EscalationNotifier":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- delivery -----------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            delivery = await self._queue.get()
            self._in_flight += 1
            try:
                await self._deliver(delivery)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the bridge's own failure; a worker must survive it
                self.failed += 1
                log.warning("escalation webhook: call %s: not delivered (%s)", delivery.action.call_id, type(exc).__name__)
            finally:
                self._in_flight -= 1
                self._queue.task_done()

    async def _deliver(self, delivery: _Delivery) -> None:
        assert self._client is not None
        call_id = delivery.action.call_id
        attempts = 1 + len(self._retry_delays_s)
        status = ""
        for attempt in range(1, attempts + 1):
            ts = int(self._clock())
            body = json.dumps(_payload(delivery, ts), separators=(",", ":")).encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "hybrid-agent-escalation/1",
                TIMESTAMP_HEADER: str(ts),
                SIGNATURE_HEADER: sign(self._key, ts, body),
            }
            try:
                async with asyncio.timeout(self._timeout_s):
                    response = await self._client.post(self._url, content=body, headers=headers)
            except (httpx.TransportError, TimeoutError) as exc:  # connect/read/write errors and timeouts
                status = "timeout" if isinstance(exc, (TimeoutError, httpx.TimeoutException)) else type(exc).__name__
            else:
                code = response.status_code
                if 200 <= code < 300:
                    self.delivered += 1
                    log.info("escalation webhook: call %s: delivered (HTTP %d, attempt %d)", call_id, code, attempt)
                    return
                if code < 500:  # the receiver refused it: sending it again would not change that
                    self.failed += 1
                    log.warning("escalation webhook: call %s: refused (HTTP %d), not retried", call_id, code)
                    return
                status = f"HTTP {code}"
            if attempt < attempts:
                log.info("escalation webhook: call %s: attempt %d failed (%s), retrying", call_id, attempt, status)
                await asyncio.sleep(self._retry_delays_s[attempt - 1])
        self.failed += 1
        log.warning("escalation webhook: call %s: not delivered after %d attempts (%s)", call_id, attempts, status)
