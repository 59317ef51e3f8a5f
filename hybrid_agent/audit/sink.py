"""Where ``Audit`` actions go.  ``enqueue`` never blocks: it is called on the audio path."""

from __future__ import annotations

from typing import Protocol

from hybrid_agent.audit.records import AuditRecord


class AuditSink(Protocol):
    def enqueue(self, record: AuditRecord) -> None: ...


class MemoryAuditSink:
    """Keeps records in a list: for the demo, tests, and until a database writer is configured."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def enqueue(self, record: AuditRecord) -> None:
        self.records.append(record)

    def for_call(self, call_id: str) -> list[AuditRecord]:
        return [r for r in self.records if r.call_id == call_id]


class FanOutSink:
    """Hands every record to several sinks (the demo keeps a copy in memory beside the database)."""

    def __init__(self, *sinks: AuditSink) -> None:
        self.sinks = sinks

    def enqueue(self, record: AuditRecord) -> None:
        for sink in self.sinks:
            sink.enqueue(record)
