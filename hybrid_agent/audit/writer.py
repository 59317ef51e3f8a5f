"""The batched audit writer: the call path enqueues, a thread writes.

``enqueue`` appends to an in-memory deque and returns (no lock held across I/O,
no await, no database).  A dedicated thread drains the deque: it turns records
into rows (pseudonyms, PII-gate redaction of unredacted text), and appends them to the hash chain
in batches, one transaction per batch.  A batch is written when ``batch_size``
records are waiting, when ``flush_interval_s`` has passed, when a call ends
(``CallEnded``), on ``flush()`` and on ``close()``.

When the database is unreachable or a batch fails, the rows go to the spool
(:mod:`hybrid_agent.audit.spool`), and while the spool holds rows every new
batch is appended behind them, so order is kept.  The spool is replayed every
``retry_interval_s``, on ``flush()``, and at ``start()``.  When more than
``max_queue`` records are waiting (the database is slower than the calls), the
backlog goes to the spool in one fsync'd write and drains from there: records
are never dropped.

The writer runs the synchronous SQLAlchemy engine on its own thread; nothing
here needs the event loop except the ``async`` wrappers for the bridge.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError

from hybrid_agent.audit.encoding import rows_from_records
from hybrid_agent.audit.privacy import Pseudonymizer
from hybrid_agent.audit.records import AuditRecord, CallEnded
from hybrid_agent.audit.spool import Item, Spool
from hybrid_agent.audit.store import (
    AuditStoreError,
    DatabaseUnavailable,
    check_schema,
    connect,
    display_url,
    make_engine,
    write_batch,
)

log = logging.getLogger(__name__)

DEFAULT_SPOOL = "hybrid_agent_audit.spool"


class _Flush:
    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: concurrent.futures.Future[None] = concurrent.futures.Future()


class AuditWriter:
    """An :class:`~hybrid_agent.audit.sink.AuditSink` that stores records in the audit database.

    ``fault_hook``, if set, is called before every database batch; raising from it
    simulates an outage (tests use it, as the bench does).
    """

    def __init__(
        self,
        database_url: str,
        *,
        spool_path: str | Path | None = None,
        batch_size: int = 500,
        flush_interval_s: float = 0.2,
        max_queue: int = 50_000,
        retry_interval_s: float = 2.0,
        pseudonym_key: str | bytes | None = None,
    ) -> None:
        if pseudonym_key is None:
            from hybrid_agent.settings import load_settings

            secret = load_settings().pseudonym_key
            pseudonym_key = secret.get_secret_value() if secret is not None else None
        self.database_url = database_url
        self.batch_size = max(1, batch_size)
        self.flush_interval_s = flush_interval_s
        self.max_queue = max_queue
        self.retry_interval_s = retry_interval_s
        self.spool = Spool(spool_path if spool_path is not None else DEFAULT_SPOOL)
        self.fault_hook: Callable[[], None] | None = None
        self.stats = {"written": 0, "spooled": 0, "replayed": 0, "batches": 0, "db_errors": 0}
        self._pseudonym = Pseudonymizer(pseudonym_key)
        self._queue: collections.deque[AuditRecord | _Flush] = collections.deque()
        self._wake = threading.Event()
        self._spool_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._engine: Engine | None = None
        self._stopping = False
        self._closed = False
        self._db_down = False
        self._schema_checked = False
        self._next_retry = 0.0
        self._spool_lock_file: Any = None

    # ------------------------------------------------------------------ the call path
    def enqueue(self, record: AuditRecord) -> None:
        """Queue one record.  Never blocks on the database; never drops."""
        if self._closed:
            # Shutdown already drained the queue: make this straggler durable right here.
            self._spool_items(rows_from_records([record], self._pseudonym))
            return
        self._queue.append(record)
        if isinstance(record, CallEnded) or len(self._queue) >= self.batch_size:
            self._wake.set()

    @property
    def db_available(self) -> bool:
        return not self._db_down

    @property
    def queued(self) -> int:
        return len(self._queue)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Connect, check the schema, replay any spool, and start the writer thread.

        Raises :class:`~hybrid_agent.audit.store.SchemaOutdated` if the database needs
        ``hybrid-agent db upgrade``.  An unreachable database is not an error: records
        spool until it is back.
        """
        await asyncio.to_thread(self.start_sync)

    def start_sync(self) -> None:
        if self._thread is not None:
            return
        self._lock_spool()
        self._engine = make_engine(self.database_url, writer=True)
        try:
            self._ensure_schema()
        except DatabaseUnavailable as exc:
            self._mark_down(exc)
        if not self._db_down:
            self._replay()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    async def flush(self) -> None:
        """Wait until everything enqueued before this call is durable (in the database, or spooled if it is down)."""
        await asyncio.wrap_future(self._request_flush())

    def flush_sync(self, timeout: float | None = None) -> None:
        self._request_flush().result(timeout)

    def _request_flush(self) -> concurrent.futures.Future[None]:
        if self._thread is None:
            raise RuntimeError("AuditWriter.start() was not called")
        marker = _Flush()
        self._queue.append(marker)
        self._wake.set()
        return marker.future

    async def close(self) -> None:
        """Flush and stop the thread.  Records enqueued afterwards are spooled synchronously."""
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        if self._closed:
            return
        if self._thread is not None:
            self._stopping = True
            self._wake.set()
            self._thread.join()
        else:
            # never started: whatever was queued goes to the spool (replayed by the next start)
            self._spool_items(rows_from_records([r for r in self._queue if not isinstance(r, _Flush)], self._pseudonym))
            self._queue.clear()
        self._closed = True
        if self._engine is not None:
            self._engine.dispose()
        if self._spool_lock_file is not None:
            self._spool_lock_file.close()  # releases the flock
            self._spool_lock_file = None

    def _lock_spool(self) -> None:
        """One spool belongs to one writer: a second process on the same file would interleave lines."""
        import fcntl

        path = Path(str(self.spool.path) + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a")  # noqa: SIM115 - held open for the writer's lifetime
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise AuditStoreError(
                f"audit spool {self.spool.path} is in use by another writer; "
                "give each bridge process its own HYBRID_AGENT_AUDIT_SPOOL"
            ) from None
        self._spool_lock_file = f

    async def __aenter__(self) -> AuditWriter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ the writer thread
    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            stopping = self._stopping
            try:
                self._drain(final=stopping)
            except Exception:  # never let the thread die: the call path depends on it
                log.exception("audit writer: unexpected error")
            if stopping and not self._queue:
                return

    def _drain(self, final: bool = False) -> None:
        q = self._queue
        while q:
            overflow = len(q) > self.max_queue
            limit = len(q) if overflow else self.batch_size
            records: list[AuditRecord] = []
            marker: _Flush | None = None
            while q and len(records) < limit:
                item = q.popleft()
                if isinstance(item, _Flush):
                    marker = item
                    break
                records.append(item)
            try:
                if records:
                    if overflow:
                        log.warning("audit writer: %d records waiting (> %d): spooling the backlog", len(records), self.max_queue)
                    self._write(self._convert(records), spool_only=overflow)
                if marker is not None and self.spool.pending():
                    self._replay()
            except BaseException as exc:  # e.g. the spool's disk is full: the flush must not hang
                if marker is not None:
                    marker.future.set_exception(exc)
                raise
            if marker is not None:
                marker.future.set_result(None)
        if self.spool.pending() and (final or time.monotonic() >= self._next_retry):
            self._replay()

    def _write(self, items: list[Item], *, spool_only: bool = False) -> None:
        if spool_only or self._db_down or self.spool.pending():
            # keep order: nothing overtakes what is already spooled
            self._spool_items(items)
            if not spool_only and time.monotonic() >= self._next_retry:
                self._replay()
            return
        try:
            self._db_write(items)
        except Exception as exc:
            self._mark_down(exc)
            self._spool_items(items)

    def _convert(self, records: list[AuditRecord]) -> list[Item]:
        try:
            return rows_from_records(records, self._pseudonym)
        except Exception:  # one bad object must not take its batch with it
            items: list[Item] = []
            for r in records:
                try:
                    items.extend(rows_from_records([r], self._pseudonym))
                except Exception:
                    log.exception("audit writer: cannot encode %r: skipped", type(r).__name__)
            return items

    def _spool_items(self, items: Sequence[Item]) -> None:
        if not items:
            return
        with self._spool_lock:
            self.spool.append(items)
        self.stats["spooled"] += len(items)

    def _replay(self) -> None:
        with self._spool_lock:
            if not self.spool.pending():
                return
            try:
                n = self.spool.replay(self._db_write, self.batch_size)
            except Exception as exc:
                self._mark_down(exc)
                return
        if n:
            log.warning("audit writer: replayed %d spooled rows into %s", n, display_url(self.database_url))
        self.stats["replayed"] += n
        self._db_down = False

    def _mark_down(self, exc: BaseException) -> None:
        self.stats["db_errors"] += 1
        self._next_retry = time.monotonic() + self.retry_interval_s
        if not self._db_down:
            log.error("audit database unavailable (%s): spooling to %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__, self.spool.path)
        self._db_down = True
        self._schema_checked = False

    def _ensure_schema(self) -> None:
        if self._schema_checked:
            return
        assert self._engine is not None
        with connect(self._engine) as conn:
            check_schema(conn)
        self._schema_checked = True

    def _db_write(self, items: list[Item]) -> None:
        """One transaction for the batch.  A row the database refuses on its own is quarantined."""
        assert self._engine is not None
        if self.fault_hook is not None:
            self.fault_hook()
        self._ensure_schema()
        try:
            n = write_batch(self._engine, items)
        except (IntegrityError, DataError):
            n = 0
            for item in items:  # isolate the poison row; everything else lands, in order
                try:
                    n += write_batch(self._engine, [item])
                except (IntegrityError, DataError) as exc:
                    self.spool.quarantine(item, str(exc).splitlines()[0])
        self.stats["written"] += n
        self.stats["batches"] += 1


def make_writer(settings: Any, **kwargs: Any) -> AuditWriter:
    """An ``AuditWriter`` for the given :class:`~hybrid_agent.settings.Settings`."""
    key = settings.pseudonym_key.get_secret_value() if getattr(settings, "pseudonym_key", None) else None
    kwargs.setdefault("spool_path", getattr(settings, "audit_spool", None))
    return AuditWriter(settings.database_url, pseudonym_key=key, **kwargs)
