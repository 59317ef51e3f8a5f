"""uvicorn's h11 HTTP protocol with a request-header deadline and a header size answer.

What stock uvicorn (0.54, h11) does before a request's headers are complete:

* no timeout at all: ``timeout_keep_alive`` is armed only after a response, and the
  first byte of the next request cancels it; a socket that sends a header byte
  now and then (slow loris) stays open forever;
* ``h11_max_incomplete_event_size`` (16 KiB by default) is checked only while the
  head is incomplete: a larger head that arrives in one read is accepted, one that
  arrives in pieces makes h11 raise ``RemoteProtocolError(error_status_hint=431)``
  and uvicorn answers 400 and closes at once, with the rest of the client's head
  unread, so the kernel resets the connection and the client usually never sees
  the answer.

:class:`GuardedH11Protocol` adds a deadline (``header_timeout_s``) from the moment
the connection opens, or the previous response ends, until a request's headers
are complete; a head of ``max_header_bytes`` or more gets ``431 Request Header
Fields Too Large``.  Refusals (408, 431, and uvicorn's 400) are written, the write
side is shut, and what the client still sends is read and thrown away for up to
``LINGER_S`` before the socket closes, so the status line reaches the client.

WebSocket upgrades pass through this protocol too (uvicorn parses the upgrade
request with h11 and then hands the socket to the ``websockets-sansio`` protocol),
so the same deadline and limit cover ``/v1/realtime``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["DEFAULT_HEADER_TIMEOUT_S", "LINGER_S", "MAX_HEADER_BYTES", "GuardedH11Protocol", "guarded_h11_protocol"]

#: a request head (request line and headers) of this size or more gets 431
MAX_HEADER_BYTES = 64 * 1024
DEFAULT_HEADER_TIMEOUT_S = 10.0
#: how long a refused connection is drained before it is closed
LINGER_S = 2.0
_END_OF_HEAD = re.compile(rb"\n\r?\n")


class _Connection(h11.Connection):
    """Remembers the last ``RemoteProtocolError`` (uvicorn's handler does not pass it on)."""

    last_error: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.last_error = exc
            raise


class GuardedH11Protocol(H11Protocol):
    """See the module docstring; configure with :func:`guarded_h11_protocol`."""

    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    max_header_bytes: int = MAX_HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = self.config.h11_max_incomplete_event_size or self.max_header_bytes
        self.conn = _Connection(h11.SERVER, limit)
        self._header_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self._awaiting_head = False
        self._head_bytes = 0
        self._head_tail = b""
        self._head_scope: Any = None
        self._refused = False

    # deadline ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def _await_head(self) -> None:
        self._cancel_header_timer()
        self._awaiting_head = True
        self._head_bytes = 0
        self._head_tail = b""
        self._head_scope = self.scope
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _head_done(self) -> None:
        self._awaiting_head = False
        self._cancel_header_timer()

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self._awaiting_head or self.transport.is_closing():
            return
        if self.scope is not self._head_scope or (self.cycle is not None and not self.cycle.response_complete):
            self._awaiting_head = False  # a request got through meanwhile (pipelining)
            return
        if self._head_bytes:
            self._refuse(408, "Request headers not received in time.")
        else:
            self.transport.close()  # never said anything: nothing to answer

    # size --------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # draining after a refusal
        if self._awaiting_head:
            window = self._head_tail + data
            end = _END_OF_HEAD.search(window)
            head = self._head_bytes + (end.start() - len(self._head_tail) if end else len(data))
            if head >= self.max_header_bytes:
                self._head_done()
                self.logger.warning("Request header fields too large (%d bytes or more).", self.max_header_bytes)
                self._refuse(431, "Request header fields too large.")
                return
            self._head_bytes += len(data)
            self._head_tail = window[-3:]
        super().data_received(data)
        if self._awaiting_head and self.scope is not self._head_scope:
            self._head_done()
        self._maybe_await_head()  # e.g. the rest of a body after an early response: the next head is due

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._head_done()
        super().handle_websocket_upgrade(event)

    def send_400_response(self, msg: str) -> None:
        self._head_done()
        error = self.conn.last_error
        if error is not None and error.error_status_hint == 431:
            self._refuse(431, "Request header fields too large.")
        else:
            self._refuse(400, msg)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._maybe_await_head()  # the next request's head has the same deadline

    def _maybe_await_head(self) -> None:
        """Arm the deadline when the connection is between requests and no deadline runs."""
        if (
            not self._awaiting_head
            and not self._refused
            and not self.transport.is_closing()
            and self.conn.their_state is h11.IDLE
            and (self.cycle is None or self.cycle.response_complete)
        ):
            self._await_head()

    # refusal -----------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` and close, after draining what the client still sends."""
        self._refused = True
        self._cancel_header_timer()
        body = message.encode("ascii")
        reason = self._phrase(status)
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode("ascii")
        self.transport.write(head + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.transport.resume_reading()
            self._linger_timer = self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()

    @staticmethod
    def _phrase(status: int) -> str:
        import http

        return http.HTTPStatus(status).phrase

    def eof_received(self) -> bool | None:
        if self._refused:
            self.transport.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        super().connection_lost(exc)


def guarded_h11_protocol(header_timeout_s: float, max_header_bytes: int = MAX_HEADER_BYTES) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` class with these limits, for ``uvicorn.Config(http=...)``."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout_s": header_timeout_s, "max_header_bytes": max_header_bytes, "__module__": __name__},
    )
