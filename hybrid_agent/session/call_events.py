"""Errors and refusals of one call as audit facts.

A compliance officer must be able to tell a clean call from one that ran without
its configuration: an upstream ``error``, a caller event the upstream refused
(a ``session.update`` with instructions and tools, say), a caller event the bridge
refused (bad JSON, oversize, invalid audio) and what the bridge changed in a
caller's update all become ``CallEventRecord``s of the call.

Bounded: a caller that sends a million bad frames gets a million ``error`` events
but the audit keeps the first ``max_records`` facts and one summary of the rest.
The event ids the caller used are remembered (a bounded window) so an upstream
``error`` naming one is attributed to that event's type.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from hybrid_agent.audit.records import CallEventRecord

#: caller event ids remembered for attributing upstream errors (the newest win)
EVENT_ID_WINDOW = 512
#: audio appends' ids, in a window of their own: 50 a second when a client numbers them (pipecat
#: does), and an upstream error about one comes back within milliseconds; in the main window they
#: would push every other event's id out and cost about 85 KB a call
AUDIO_ID_WINDOW = 50
APPEND = "input_audio_buffer.append"
#: facts recorded per call before the rest are only counted
MAX_EVENT_RECORDS = 200
_TEXT_LIMIT = 500


def _short(value: Any, limit: int = _TEXT_LIMIT) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text[:limit]


class CallEventLog:
    """Turns error and refusal events of one call into audit records."""

    def __init__(self, call_id: str, max_records: int = MAX_EVENT_RECORDS) -> None:
        self.call_id = call_id
        self.max_records = max_records
        self.seq = 0
        self.suppressed = 0
        self.counts: dict[str, int] = {}
        self._sent: OrderedDict[str, str] = OrderedDict()  # caller event_id -> event type
        self._appends: OrderedDict[str, None] = OrderedDict()  # the newest appends' event ids

    def note_sent(self, event: dict[str, Any]) -> None:
        """A caller event went upstream: remember its id in case the upstream refuses it."""
        event_id = event.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            return
        key = event_id[:128]
        if event.get("type") == APPEND:
            self._appends[key] = None
            self._appends.move_to_end(key)
            if len(self._appends) > AUDIO_ID_WINDOW:
                self._appends.popitem(last=False)
            return
        self._sent[key] = str(event.get("type"))[:64]
        self._sent.move_to_end(key)
        while len(self._sent) > EVENT_ID_WINDOW:
            self._sent.popitem(last=False)

    def sent_type(self, event_id: str) -> str | None:
        """The type of the caller event that had ``event_id``, if it is still remembered."""
        key = event_id[:128]
        return self._sent.get(key) or (APPEND if key in self._appends else None)

    def record(
        self,
        source: str,
        kind: str,
        at_ms: float,
        *,
        message: str | None = None,
        event_type: str | None = None,
        param: str | None = None,
        client_event_id: str | None = None,
        redacted: bool = False,
    ) -> CallEventRecord | None:
        """The record for one fact, or ``None`` once the call's budget is spent (then only counted)."""
        self.counts[source] = self.counts.get(source, 0) + 1
        if self.seq >= self.max_records:
            self.suppressed += 1
            return None
        record = CallEventRecord(
            call_id=self.call_id,
            seq=self.seq,
            at_ms=at_ms,
            source=source,  # type: ignore[arg-type]
            kind=_short(kind, 64) or "unknown",
            event_type=_short(event_type, 64),
            param=_short(param, 128),
            message=_short(message),
            client_event_id=_short(client_event_id, 128),
            redacted=redacted,
        )
        self.seq += 1
        return record

    def upstream_error(self, event: dict[str, Any], at_ms: float, *, own_event_type: str | None = None) -> CallEventRecord | None:
        """An upstream ``error`` event: a refusal of a caller's event when it names one."""
        err = event.get("error") if isinstance(event.get("error"), dict) else {}
        caused_by = err.get("event_id")
        caused_by = caused_by if isinstance(caused_by, str) and caused_by else None
        event_type = own_event_type or (self.sent_type(caused_by) if caused_by else None)
        source = "upstream_refused" if event_type else "upstream"
        return self.record(
            source,
            str(err.get("code") or err.get("type") or "error"),
            at_ms,
            message=_short(err.get("message")),
            event_type=event_type,
            param=_short(err.get("param")),
            client_event_id=caused_by,
        )

    def summary(self, at_ms: float) -> CallEventRecord | None:
        """At call end: how many facts were only counted (``None`` if none were)."""
        if not self.suppressed:
            return None
        suppressed, self.suppressed = self.suppressed, 0
        self.max_records += 1  # room for the summary itself
        by_source = ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
        return self.record(
            "bridge",
            "events_suppressed",
            at_ms,
            message=f"{suppressed} further error events were not recorded one by one (totals: {by_source})",
            redacted=True,
        )
