"""The batched audit writer: the call path enqueues, a thread writes.

Why this module is long: the writer thread, its spool fallback and replay, health probes and crash recovery share one lock and one state machine; split, the locking would cross modules.

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
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from hybrid_agent.audit.encoding import rows_from_records
from hybrid_agent.audit.privacy import Pseudonymizer
from hybrid_agent.audit.records import AuditRecord, CallEnded, CallStarted
from hybrid_agent.audit.spool import Item, Spool
from hybrid_agent.audit.store import (
    AuditStoreError,
    DEFAULT_INTERRUPTED_GRACE_S,
    DatabaseUnavailable,
    SchemaOutdated,
    check_schema,
    close_interrupted_calls,
    connect,
    display_url,
    is_connectivity_error,
    make_engine,
    write_batch,
)

log = logging.getLogger(__name__)

DEFAULT_SPOOL = "hybrid_agent_audit.spool"


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = [ln.strip() for ln in str(orig).splitlines() if ln.strip()]
    return f"{type(orig).__name__}: {lines[0]}" if lines else type(orig).__name__


def _is_down(exc: BaseException) -> bool:
    """The database cannot take anything right now (spool and retry), as opposed to refusing
    this batch (write row by row, quarantine what it refuses)."""
    return is_connectivity_error(exc) or isinstance(exc, (DatabaseUnavailable, SchemaOutdated, OSError))


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
        probe_interval_s: float = 5.0,
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
        self.probe_interval_s = probe_interval_s
        self.spool = Spool(spool_path if spool_path is not None else DEFAULT_SPOOL)
        self.fault_hook: Callable[[], None] | None = None
        self._durable_hooks: list[Callable[[list[AuditRecord], str], None]] = []
        self.stats = {"written": 0, "spooled": 0, "replayed": 0, "batches": 0, "db_errors": 0, "spool_errors": 0}
        self._pseudonym = Pseudonymizer(pseudonym_key)
        self._queue: collections.deque[AuditRecord | _Flush] = collections.deque()
        self._wake = threading.Event()
        self._spool_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._engine: Engine | None = None
        self._stopping = False
        # _state orders enqueue/flush against close(): after _closing, records go straight to the
        # spool; after _closed (everything left behind is spooled), flush() returns at once.
        self._state = threading.Lock()
        self._closing = False
        self._closed = False
        self._retry_now = False
        self._spool_error: str | None = None  # set while records can be made durable neither in the DB nor the spool
        self._write_failures = 0
        self._write_retry_at = 0.0
        self._db_down = False
        self._schema_checked = False
        self._next_retry = 0.0
        self._spool_lock_file: Any = None
        self._live_calls: set[str] = set()  # CallStarted enqueued here, CallEnded not yet (under _state)
        # <spool>.calls: the calls this writer made durably started and not yet durably ended (see _note_started)
        self._calls_path = Path(str(self.spool.path) + ".calls")
        self._calls_lock = threading.Lock()
        self._calls_open: set[str] = set()  # listed "+" in the file, no "-" yet
        self._calls_lines = 0  # lines in the file (compacted now and then)
        self._calls_error: str | None = None
        self._crashed: set[str] = set()  # listed open by the spool's previous owner, a process that is gone
        self.started_at: float | None = None  # epoch seconds start() was called
        # health, read by status() without I/O; written by the writer thread (and start/close)
        self._db_error: str | None = None  # last reason the database could not be reached, None once it is back
        self._spool_probe_error: str | None = None  # last spool writability probe failure, None when it succeeds
        self._next_probe = 0.0
        self._db_reachable = True  # health only; the write path uses _db_down (which also covers the spool order)
        self._last_db_ok = 0.0

    # ------------------------------------------------------------------ the call path
    def enqueue(self, record: AuditRecord) -> None:
        """Queue one record.  Never blocks on the database; never drops."""
        with self._state:
            closing = self._closing
            if isinstance(record, CallStarted):
                self._live_calls.add(record.call_id)
            elif isinstance(record, CallEnded):
                self._live_calls.discard(record.call_id)
            if not closing:
                self._queue.append(record)
                wake = isinstance(record, CallEnded) or len(self._queue) >= self.batch_size
        if closing:
            # close() has begun: the thread may already have drained its last batch, so make
            # this straggler durable right here (the spool is replayed at the next start)
            self._note_started([record])
            self._spool_items(self._convert([record]))
            self._note_ended([record])
            return
        if wake:
            self._wake.set()

    def add_durable_hook(self, hook: Callable[[list[AuditRecord], str], None]) -> None:
        """Call ``hook(records, "database" | "spool")`` on the writer's thread once records are durable
        (telemetry's audit lag); a hook that raises is logged, never allowed to stop the writer."""
        self._durable_hooks.append(hook)

    @property
    def db_available(self) -> bool:
        return not self._db_down

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def healthy(self) -> bool:
        """False while records can be made durable neither in the database nor in the spool
        (e.g. the database is down and the spool's disk is full): they wait in memory and are
        retried with backoff; ``last_error`` says why, and ``flush()`` raises meanwhile."""
        return self._spool_error is None

    @property
    def last_error(self) -> str | None:
        """Why records are not durable (``healthy`` False); else the last spool-probe or database
        failure still in effect; None when everything works."""
        return self._spool_error or self._spool_probe_error or self._db_error

    @property
    def live_calls(self) -> frozenset[str]:
        """Calls whose ``CallStarted`` was enqueued here and whose ``CallEnded`` was not."""
        with self._state:
            return frozenset(self._live_calls)

    @property
    def ready(self) -> bool:
        """A record enqueued now can be made durable: the database takes it, or the spool does."""
        return bool(self.status()["ready"])

    def status(self) -> dict[str, Any]:
        """Health for ``/healthz`` and readiness; cheap (no I/O, no lock held across I/O), any thread.

        - ``ready`` (= ``healthy``): an audit record enqueued now can be stored durably, in the
          database or in the spool; False = "not ready" (neither accepts writes, or the writer
          is not running).
        - ``records_stuck``: records wait in memory because neither the database nor the spool
          took them (the old ``writer.healthy`` False); they are retried with backoff.
        - ``database_reachable``: the last contact with the database (a write, a replay, or the
          writer thread's probe every ``probe_interval_s`` while idle) succeeded.
        - ``spooling``: new records go to the spool (the database is down or did not answer
          the last probe, or spooled rows still wait to be replayed ahead of them).
        - ``spool_writable``: the last spool write or probe (every ``probe_interval_s``: the
          spool opens for append, a small file next to it can be written and fsync'd) worked.
        - ``queued``: records waiting in memory; ``last_error``: why something is wrong, or None.
        """
        running = self._thread is not None and self._thread.is_alive() and not self._closing
        db_ok = self._db_reachable
        spool_ok = self._spool_probe_error is None and self._spool_error is None
        try:
            pending = self.spool.pending()  # one stat(); cheap
        except OSError:
            pending = False
        spooling = self._db_down or not db_ok or pending
        stuck = self._spool_error is not None
        ready = running and not stuck and (spool_ok or not spooling)
        return {
            "ready": ready,
            "healthy": ready,
            "running": running,
            "records_stuck": stuck,
            "database_reachable": db_ok,
            "spooling": spooling,
            "spool_writable": spool_ok,
            "queued": len(self._queue),
            "last_error": self.last_error,
            "database_error": self._db_error,
            "spool_error": self._spool_error or self._spool_probe_error,
            "spool_path": str(self.spool.path),
        }

    def probe_sync(self) -> dict[str, Any]:
        """Check the database and the spool now (blocking I/O: not on the event loop); returns ``status()``.

        The writer thread does the same every ``probe_interval_s`` while idle.
        """
        self._probe(force=True)
        return self.status()

    async def probe(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.probe_sync)

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
        self.started_at = time.time()
        self._lock_spool()
        self._load_calls()
        from hybrid_agent.pii import get_analyzer

        get_analyzer()  # build the PII gate now (about a second of imports), not on the first call's records
        self._engine = make_engine(self.database_url, writer=True)
        try:
            self._ensure_schema()
        except DatabaseUnavailable as exc:
            self._mark_down(exc)
        if not self._db_down:
            self._replay()
        with self._spool_lock:
            self.spool.repair_tail()  # a crash mid-append left a torn line: set it aside before appending
        self._probe_spool()
        self._next_probe = time.monotonic() + self.probe_interval_s
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    async def flush(self) -> None:
        """Wait until everything enqueued before this call is durable (in the database, or spooled if it is down)."""
        await asyncio.wrap_future(self._request_flush())

    def flush_sync(self, timeout: float | None = None) -> None:
        self._request_flush().result(timeout)

    def _request_flush(self) -> concurrent.futures.Future[None]:
        marker = _Flush()
        with self._state:
            if not self._closed:
                if self._thread is None:
                    raise RuntimeError("AuditWriter.start() was not called")
                self._queue.append(marker)
                self._retry_now = True
                self._wake.set()
                return marker.future
        # closed: everything enqueued earlier is in the database or the spool (close() says if not)
        if self._queue:
            marker.future.set_exception(AuditStoreError(
                f"{len(self._queue)} audit records could not be stored when the writer closed: {self._spool_error}"))
        else:
            marker.future.set_result(None)
        return marker.future

    async def close(self) -> None:
        """Flush and stop the thread.  Records enqueued afterwards are spooled synchronously."""
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        with self._state:
            if self._closing:
                return
            self._closing = True  # from here on, enqueue() spools synchronously
        if self._thread is not None:
            self._stopping = True
            self._wake.set()
            self._thread.join()
        # Whatever is still queued (never started, or the final write failed): spool it now.
        error: Exception | None = None
        with self._state:
            left = list(self._queue)
            self._queue.clear()
            records = [r for r in left if not isinstance(r, _Flush)]
            markers = [r for r in left if isinstance(r, _Flush)]
            if records:
                try:
                    self._note_started(records)
                    self._spool_items(self._convert(records))
                    self._note_ended(records)
                except Exception as exc:  # keep them visible (``queued``), and say so loudly
                    error = exc
                    self._spool_error = _one_line(exc)
                    self._queue.extend(records)
            self._closed = True
        for m in markers:
            if error is None:
                m.future.set_result(None)
            else:
                m.future.set_exception(AuditStoreError(f"audit records could not be stored: {self._spool_error}"))
        if self._engine is not None:
            self._engine.dispose()
        if self._spool_lock_file is not None:
            self._spool_lock_file.close()  # releases the flock
            self._spool_lock_file = None
        if error is not None:
            log.critical("audit writer closed with %d records neither in the database nor in the spool %s: %s",
                         len(records), self.spool.path, self._spool_error)
            raise AuditStoreError(f"{len(records)} audit records could not be stored (database and spool {self.spool.path} "
                                  f"both failed: {self._spool_error})") from error

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

    # ------------------------------------------------------------------ calls a crash left open
    def close_interrupted_calls_sync(
        self,
        *,
        sole_writer: bool = False,
        older_than_s: float = DEFAULT_INTERRUPTED_GRACE_S,
        dry_run: bool = False,
    ) -> list[CallEnded]:
        """Record ``CallEnded(outcome="interrupted")`` for open calls a previous process left behind.

        Call after ``start()`` (the spool has been replayed, so endings that were only spooled are
        in the database first).  Never closes a call live in this writer (``live_calls``).

        - ``sole_writer=False`` (default; several bridge processes may share the database): only
          calls started before this writer started *and* whose last record was stored more than
          ``older_than_s`` (default 300 s) ago -- another process's live call cannot be known.
        - ``sole_writer=True``: this is the only process writing to the database, so every
          open call not live here was left by a crash: no age limits.
        - Either way, the calls the previous owner of this spool still listed open (``<spool>.calls``)
          are closed whatever their age: that process is gone (this writer holds the spool's lock).

        Returns the endings recorded (they are in the hash chain); ``[]`` without touching
        anything if the database is down or rows wait in the spool (try again later, or run
        ``hybrid-agent audit close-interrupted``).  Blocking: use :meth:`close_interrupted_calls`
        from the event loop.
        """
        if self._engine is None:
            raise RuntimeError("AuditWriter.start() was not called")
        if self._db_down or self.spool.pending():
            log.warning("audit: not closing interrupted calls now: the database is down or the spool %s holds rows",
                        self.spool.path)
            return []
        with self._state:
            live = set(self._live_calls)
        with self._calls_lock:
            crashed = set(self._crashed)
        records = close_interrupted_calls(
            self._engine,
            older_than_s=None if sole_writer else older_than_s,
            started_before=None if sole_writer else self.started_at,
            exclude=live,
            crashed=crashed,
            dry_run=dry_run,
        )
        if not dry_run:
            self.stats["written"] += len(records)
            if crashed:  # closed, or already ended, or never durably started: nothing left to close
                with self._calls_lock:
                    self._crashed -= crashed
                    self._compact_calls()
        return records

    async def close_interrupted_calls(
        self, *, sole_writer: bool = False, older_than_s: float = DEFAULT_INTERRUPTED_GRACE_S, dry_run: bool = False,
    ) -> list[CallEnded]:
        """:meth:`close_interrupted_calls_sync` off the event loop."""
        return await asyncio.to_thread(
            self.close_interrupted_calls_sync, sole_writer=sole_writer, older_than_s=older_than_s, dry_run=dry_run)

    async def __aenter__(self) -> AuditWriter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ the calls this spool's writer holds open
    # ``<spool>.calls`` lists, one JSON string a line, ``+"call"`` for a call whose CallStarted this writer is about to
    # make durable (fsync'd first) and ``-"call"`` once its CallEnded is durable.  Like the spool it belongs to one writer
    # (the spool's lock), so the calls it still lists at start were open in a process that is gone: a crash's calls,
    # closed as interrupted at start whatever their age, even on a PostgreSQL that other bridge processes share.
    def _load_calls(self) -> None:
        try:
            data = self._calls_path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("audit: cannot read %s (%s): calls a crash left open close after the grace period",
                        self._calls_path, _one_line(exc))
            return
        crashed: set[str] = set()
        for line in data.splitlines():
            try:
                call_id = json.loads(line[1:])
            except ValueError:
                continue  # a torn last line: its CallStarted was never written
            if isinstance(call_id, str):
                if line[:1] == b"+":
                    crashed.add(call_id)
                elif line[:1] == b"-":
                    crashed.discard(call_id)
        with self._calls_lock:
            self._crashed = crashed
            self._compact_calls()

    def _note_started(self, records: Sequence[Any]) -> None:
        ids = [r.call_id for r in records if isinstance(r, CallStarted)]
        with self._calls_lock:
            new = [c for c in dict.fromkeys(ids) if c not in self._calls_open]
            if new and self._append_calls("+", new, fsync=True):
                self._calls_open.update(new)

    def _note_ended(self, records: Sequence[Any]) -> None:
        ids = [r.call_id for r in records if isinstance(r, CallEnded)]
        with self._calls_lock:
            done = [c for c in dict.fromkeys(ids) if c in self._calls_open]
            if not done:
                return
            self._calls_open.difference_update(done)
            self._append_calls("-", done, fsync=False)  # lost in a crash: the call is found ended, nothing done
            if self._calls_lines > 1000 + 2 * (len(self._calls_open) + len(self._crashed)):
                self._compact_calls()

    def _append_calls(self, op: str, ids: Sequence[str], *, fsync: bool) -> bool:
        data = "".join(f"{op}{json.dumps(c)}\n" for c in ids).encode("utf-8")
        try:
            fd = os.open(self._calls_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:  # never a reason not to store the records themselves
            if self._calls_error is None:
                log.warning("audit: cannot write %s (%s): calls a crash leaves open close after the grace period",
                            self._calls_path, _one_line(exc))
            self._calls_error = _one_line(exc)
            return False
        self._calls_error = None
        self._calls_lines += len(ids)
        return True

    def _compact_calls(self) -> None:
        """Rewrite the file with only the calls still open (under ``_calls_lock``)."""
        keep = sorted(self._calls_open | self._crashed)
        if not keep and not self._calls_path.exists():
            return
        tmp = self._calls_path.with_name(self._calls_path.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write("".join(f"+{json.dumps(c)}\n" for c in keep).encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._calls_path)
        except OSError as exc:
            log.warning("audit: cannot rewrite %s (%s)", self._calls_path, _one_line(exc))
            return
        self._calls_lines = len(keep)

    # ------------------------------------------------------------------ the writer thread
    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            stopping = self._stopping
            try:
                ok = self._drain(final=stopping)
            except Exception:  # never let the thread die: the call path depends on it
                log.exception("audit writer: unexpected error")
                ok = False
            if not stopping:
                try:
                    self._probe()
                except Exception:
                    log.exception("audit writer: health probe failed unexpectedly")
            if stopping and (not self._queue or not ok):
                return  # close_sync() spools whatever is left

    def _drain(self, final: bool = False) -> bool:
        """Write what is queued; False if records could not be made durable (they stay queued)."""
        q = self._queue
        if self._spool_error is not None and not (final or self._retry_now) and time.monotonic() < self._write_retry_at:
            return False  # backing off after a failed write: the records wait in the queue
        self._retry_now = False
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
                    self._note_started(records)
                    where = self._write(self._convert(records), spool_only=overflow)
                    self._note_ended(records)
                    for hook in self._durable_hooks:
                        try:
                            hook(records, where)
                        except Exception:
                            log.exception("audit writer: a durable hook failed")
            except Exception as exc:  # neither the database nor the spool took them (e.g. disk full)
                q.extendleft(reversed(records))  # back at the front, in order: retried, never dropped
                self._write_failed(exc, len(records))
                if marker is not None:
                    marker.future.set_exception(AuditStoreError(
                        f"audit records are not durable yet ({len(q)} waiting in memory): {self._spool_error}"))
                return False
            if self._spool_error is not None:
                log.warning("audit writer: records are durable again (%s)", "database" if not self._db_down else "spool")
                self._spool_error, self._write_failures = None, 0
            if marker is not None:
                if self.spool.pending():
                    self._replay()
                marker.future.set_result(None)
        if self.spool.pending() and (final or time.monotonic() >= self._next_retry):
            self._replay()
        return True

    # ------------------------------------------------------------------ health probes
    def _probe(self, force: bool = False) -> None:
        """Every ``probe_interval_s``: can the spool be written, and (if nothing proved it lately)
        does the database answer?  Only updates the health flags read by ``status()``; the write
        path keeps its own state, so this is safe from any thread."""
        now = time.monotonic()
        if not force and now < self._next_probe:
            return
        self._next_probe = now + self.probe_interval_s
        self._probe_spool()
        if self._engine is None:
            return
        if force or (not self._queue and now - self._last_db_ok >= self.probe_interval_s):
            self._probe_db()

    def _probe_db(self) -> None:
        assert self._engine is not None
        try:
            if self.fault_hook is not None:
                self.fault_hook()
            with connect(self._engine) as conn:
                conn.exec_driver_sql("SELECT 1")
        except Exception as exc:
            if _is_down(exc) or isinstance(exc, DatabaseUnavailable):
                if self._db_reachable:
                    log.error("audit database unreachable (%s)", _one_line(exc))
                self._db_reachable, self._db_error = False, _one_line(exc)
            return
        self._db_reachable, self._last_db_ok = True, time.monotonic()
        self._db_error = None
        if self._db_down and not self.spool.pending():
            self._db_down = False  # nothing to replay first: write to the database again
        elif self._db_down:
            self._next_retry = 0.0  # the writer thread replays the spool at its next pass

    def _probe_spool(self) -> None:
        """Is the spool writable?  It must open for append, and a small file next to it must
        take a write and an fsync (full disk, read-only or vanished directory).  A spool that
        is a device (``/dev/full`` in tests) must take an empty write."""
        path = self.spool.path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    os.write(fd, b"")
            finally:
                os.close(fd)
            probe = path.with_name(f".{path.name}.probe")
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"\n" * 4096)
                os.fsync(fd)
            finally:
                os.close(fd)
                try:
                    os.unlink(probe)
                except OSError:
                    pass
        except OSError as exc:
            if self._spool_probe_error is None:
                log.error("audit spool %s is not writable: %s", path, _one_line(exc))
            self._spool_probe_error = _one_line(exc)
            return
        self._spool_probe_error = None

    def _write_failed(self, exc: BaseException, n: int) -> None:
        self.stats["spool_errors"] += 1
        self._write_failures += 1
        delay = min(self.retry_interval_s * 2 ** min(self._write_failures - 1, 8), 30.0)
        self._write_retry_at = time.monotonic() + delay
        self._spool_error = _one_line(exc)
        log.error("audit writer: %d records could not be written to the database or the spool %s (%s); "
                  "kept in memory, retrying in %.1fs", n, self.spool.path, self._spool_error, delay)

    def _write(self, items: list[Item], *, spool_only: bool = False) -> str:
        """Store ``items``; returns where they went: ``database`` or ``spool``."""
        if spool_only or self._db_down or self.spool.pending():
            # keep order: nothing overtakes what is already spooled
            self._spool_items(items)
            if not spool_only and time.monotonic() >= self._next_retry:
                self._replay()
            return "spool"
        try:
            self._db_write(items)
        except Exception as exc:  # the database is down (rows it refuses were quarantined in _db_write)
            self._mark_down(exc)
            self._spool_items(items)
            return "spool"
        return "database"

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
            try:
                self.spool.append(items)
            except OSError as exc:
                self._spool_probe_error = _one_line(exc)
                raise
        self._spool_probe_error = None
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
        self._db_reachable, self._db_error, self._last_db_ok = True, None, time.monotonic()

    def _mark_down(self, exc: BaseException) -> None:
        self.stats["db_errors"] += 1
        self._next_retry = time.monotonic() + self.retry_interval_s
        self._db_reachable, self._db_error = False, _one_line(exc)
        if not self._db_down:
            log.error("audit database unavailable (%s): spooling to %s", _one_line(exc), self.spool.path)
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
        """One transaction for the batch.  A row the database refuses on its own is quarantined.

        Only a connectivity error (:func:`~hybrid_agent.audit.store.is_connectivity_error`) means
        "down" and propagates (the caller spools and retries).  Any other failure (an
        IntegrityError, a DataError, an ``OverflowError`` for a 64-bit overflow on SQLite ...)
        is about the rows: the batch is written row by row and the rows that fail are
        quarantined, so one poison row cannot stall everything behind it.
        """
        assert self._engine is not None
        if self.fault_hook is not None:
            self.fault_hook()
        self._ensure_schema()
        try:
            n = write_batch(self._engine, items)
        except Exception as exc:
            if _is_down(exc):
                raise
            n = 0
            for item in items:  # isolate the poison row; everything else lands, in order
                try:
                    n += write_batch(self._engine, [item])
                except Exception as exc1:
                    if _is_down(exc1):
                        raise
                    self.spool.quarantine(item, _one_line(exc1))
        self.stats["written"] += n
        self.stats["batches"] += 1
        self._db_reachable, self._db_error, self._last_db_ok = True, None, time.monotonic()


def make_writer(settings: Any, **kwargs: Any) -> AuditWriter:
    """An ``AuditWriter`` for the given :class:`~hybrid_agent.settings.Settings`."""
    key = settings.pseudonym_key.get_secret_value() if getattr(settings, "pseudonym_key", None) else None
    kwargs.setdefault("spool_path", getattr(settings, "audit_spool", None))
    return AuditWriter(settings.database_url, pseudonym_key=key, **kwargs)
