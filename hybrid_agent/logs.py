"""Logging that never carries what a caller said, at any level.

Every Realtime frame holds caller speech, transcripts, tool arguments: personal
data the bridge keeps only in its (redacting) audit store.  Two things would put
it in a log anyway:

* the ``websockets`` engine logs every frame at DEBUG (``"< TEXT '{...}' [812 bytes]"``)
  and every handshake header (``Authorization``) on ``websockets.client`` /
  ``websockets.server`` and, inside uvicorn's ``websockets-sansio`` protocol, on
  ``uvicorn.error``;
* an exception message can quote its input (pydantic's ``input_value=...``), and
  a dict or JSON event put into a message carries the payload.

:func:`install_log_redaction` sets the ``websockets`` loggers to INFO (their frame
lines are then never even formatted) and installs :class:`RedactFrames` on those
loggers and on every handler configured so far, as a second line: it rewrites a
frame line to direction, opcode and length, masks credential headers and query
strings in handshake lines, and cuts event payloads and quoted inputs out of any
other record.  The CLI calls it after configuring logging, the bridge server after
uvicorn configured its own handlers; call it again after adding a handler.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["FRAME_LOGGERS", "RedactFrames", "install_log_redaction", "redact_text"]

#: loggers the ``websockets`` engine writes frames and headers to
FRAME_LOGGERS = ("websockets", "websockets.client", "websockets.server", "uvicorn.error")
_QUIET_LOGGERS = ("websockets", "websockets.client", "websockets.server")
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "api-key", "x-api-key", "openai-api-key"}
)

# "< TEXT '{...}' [812 bytes]", "> BINARY 00 01 ... [3 bytes]", "< CONT ... [n bytes, continued]"
_FRAME_LINE = re.compile(
    r"^(?P<dir>[<>]) (?P<op>TEXT|BINARY|CONT|CLOSE|PING|PONG)\b.*?\[(?P<n>\d+) bytes(?P<more>, continued)?\]\s*$",
    re.DOTALL,
)
_REQUEST_LINE = re.compile(r"^(?P<head>[<>] [A-Z]+ )(?P<path>[^ ?]*)\?\S*(?P<tail> HTTP/1\.1)$")
_HEADER_LINE = re.compile(r"^(?P<dir>[<>]) (?P<name>[A-Za-z0-9-]+): (?P<value>.*)$", re.DOTALL)
_INPUT_VALUE = re.compile(r"input_value=.*?(?=, input_type=|\]$|$)", re.MULTILINE)
# a JSON object or dict repr with a "type" (or payload-ish) key: a Realtime event or an item (to its line's end)
_PAYLOAD = re.compile(
    r"""\{[^{}\n]*?["'](?:type|event_id|item|delta|transcript|text|audio|arguments|output|instructions)["']\s*:[^\n]*\}"""
)


def _frame_summary(direction: str, frame: Any) -> str:
    opcode = getattr(getattr(frame, "opcode", None), "name", "FRAME")
    data = getattr(frame, "data", b"") or b""
    more = "" if getattr(frame, "fin", True) else ", continued"
    return f"{direction} {opcode} [{len(data)} bytes{more}]"


def redact_text(text: str) -> str:
    """``text`` with frame payloads, quoted inputs and event JSON taken out (lengths kept)."""
    m = _FRAME_LINE.match(text)
    if m:
        return f"{m['dir']} {m['op']} [{m['n']} bytes{m['more'] or ''}]"
    text = _INPUT_VALUE.sub("input_value=[redacted]", text)
    return _PAYLOAD.sub(lambda p: f"{{[payload redacted: {len(p.group())} chars]}}", text)


class RedactFrames(logging.Filter):
    """Rewrites (never drops) records so no frame content or event payload reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_hybrid_agent_redacted", False):
            return True
        try:
            self._rewrite(record)
        except Exception:  # a filter must never lose a record: fall back to a bare line
            record.msg, record.args = f"[{record.name} log record redacted]", ()
            record.exc_info = record.exc_text = None
        record._hybrid_agent_redacted = True  # type: ignore[attr-defined]
        return True

    def _rewrite(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        msg = record.msg if isinstance(record.msg, str) else None
        frame = next((a for a in args if _is_frame(a)), None)
        if frame is not None and msg is not None and msg[:1] in "<>":
            self._set(record, _frame_summary(msg[0], frame))
            return
        if msg in ("< %s: %s", "> %s: %s") and len(args) == 2 and str(args[0]).lower() in _SECRET_HEADERS:
            self._set(record, f"{msg[0]} {args[0]}: [redacted]")
            return
        text = record.getMessage()
        new = _REQUEST_LINE.sub(r"\g<head>\g<path>?[redacted]\g<tail>", text)
        header = _HEADER_LINE.match(new)
        if header and header["name"].lower() in _SECRET_HEADERS:
            new = f"{header['dir']} {header['name']}: [redacted]"
        else:
            new = redact_text(new)
        if new != text:
            self._set(record, new)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)

    @staticmethod
    def _set(record: logging.LogRecord, message: str) -> None:
        record.msg, record.args = message, ()


def _is_frame(obj: Any) -> bool:
    try:
        from websockets.frames import Frame
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, Frame)


_FILTER = RedactFrames()


def install_log_redaction(*handlers: logging.Handler) -> RedactFrames:
    """Quiet the frame loggers and put :class:`RedactFrames` on them and on every handler there is.

    Every handler means: the root logger's, those of every logger created so far
    (uvicorn's own), and ``handlers``.  Idempotent; returns the filter.
    """
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:  # only ever raised: WARNING stays WARNING
            logger.setLevel(logging.INFO)
    for name in FRAME_LOGGERS:
        _add(logging.getLogger(name))
    # httpx logs every request's full URL at INFO (the escalation webhook's URL may carry a token)
    httpx_log = logging.getLogger("httpx")
    if httpx_log.getEffectiveLevel() < logging.WARNING:
        httpx_log.setLevel(logging.WARNING)
    found: list[logging.Handler] = [*logging.getLogger().handlers, *handlers]
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            found.extend(logger.handlers)
    for handler in found:
        _add(handler)
    return _FILTER


def _add(target: logging.Filterer) -> None:
    if _FILTER not in target.filters:
        target.addFilter(_FILTER)
