"""Connecting to the audit database, migrating it, and appending hash-chained batches.

Users give sync-style URLs (``sqlite:///audit.db``, ``postgresql://user@host/db``);
:func:`make_engine` maps them to the drivers this package uses (the standard
library's ``sqlite3``, ``psycopg`` 3).  All database work here is synchronous:
the :class:`~hybrid_agent.audit.writer.AuditWriter` runs it on its own thread,
so the event loop never waits for the database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, create_engine, event, exists, func, insert, or_, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, ArgumentError, DBAPIError, InterfaceError, NoSuchModuleError, OperationalError

from hybrid_agent.audit.encoding import GENESIS, Row, canonical, chain_hash, record_hash
from hybrid_agent.audit.models import LEDGER, TABLES

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = REPO_ROOT / "migrations"
ALEMBIC_INI = REPO_ROOT / "alembic.ini"

# pg_advisory_xact_lock key serializing appends to the chain across processes ("Audit" in ASCII).
CHAIN_LOCK_KEY = 0x4175646974


class AuditStoreError(Exception):
    """Base of the audit store's errors; ``str(exc)`` is one line meant for a person."""


class DatabaseUnavailable(AuditStoreError):
    """The database URL is wrong, or the server cannot be reached."""


class SchemaOutdated(AuditStoreError):
    """The database schema is not the one this code expects: run ``hybrid-agent db upgrade``."""


class UnknownCall(AuditStoreError):
    """No call with this id is recorded."""


# ---------------------------------------------------------------------------- URLs and engines
def to_url(database_url: str | URL) -> URL:
    """Map a user's URL to a SQLAlchemy URL with our drivers; ``DatabaseUnavailable`` if unusable."""
    try:
        url = make_url(database_url) if isinstance(database_url, str) else database_url
    except ArgumentError:
        raise DatabaseUnavailable(f"invalid database URL {str(database_url)!r} (expected sqlite:///FILE or postgresql://...)") from None
    backend = url.drivername.split("+", 1)[0]
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return url.set(drivername="sqlite")
    raise DatabaseUnavailable(f"unsupported database {backend!r}: use sqlite:///FILE or postgresql://...")


def display_url(database_url: str | URL) -> str:
    """The URL without its password, for messages."""
    try:
        url = make_url(database_url) if isinstance(database_url, str) else database_url
        return url.render_as_string(hide_password=True)
    except ArgumentError:
        return str(database_url)


def make_engine(database_url: str | URL, *, writer: bool = False, must_exist: bool = False) -> Engine:
    """An engine for the audit database.

    ``writer``: on SQLite, transactions start with ``BEGIN IMMEDIATE`` so the chain head
    read and the append happen under one write lock.  ``must_exist``: for read commands,
    a missing SQLite file is ``DatabaseUnavailable`` instead of a new empty database.
    """
    url = to_url(database_url)
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        path = url.database
        if path and path != ":memory:" and not path.startswith("file:"):
            p = Path(path)
            if must_exist and not p.exists():
                raise DatabaseUnavailable(f"no audit database at {path} (create it with: hybrid-agent db upgrade --db {display_url(url)})")
            if not p.parent.exists():
                raise DatabaseUnavailable(f"cannot create the audit database {path}: directory {p.parent} does not exist")
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["connect_args"] = {"connect_timeout": 5}
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise DatabaseUnavailable(f"cannot use database URL {display_url(url)}: {exc}") from None

    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            if url.database and url.database != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()
            if writer:
                dbapi_conn.isolation_level = None  # we emit BEGIN ourselves

        if writer:

            @event.listens_for(engine, "begin")
            def _sqlite_begin(conn: Connection) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_connectivity_error(exc: BaseException) -> bool:
    """True if ``exc`` means "the database is not reachable right now" (worth spooling and retrying)."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return False


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = [ln.strip() for ln in str(orig).splitlines() if ln.strip()]
    return lines[0] if lines else type(orig).__name__


@contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """``engine.connect()`` that turns connection failures into :class:`DatabaseUnavailable`."""
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise DatabaseUnavailable(f"cannot reach the audit database {display_url(engine.url)}: {_reason(exc)}") from None
    with conn:
        yield conn


# ---------------------------------------------------------------------------- migrations
def alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config(str(ALEMBIC_INI)) if ALEMBIC_INI.exists() else Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def _script_revisions() -> tuple[str | None, frozenset[str]]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return script.get_current_head(), frozenset(r.revision for r in script.walk_revisions())


def head_revision() -> str | None:
    return _script_revisions()[0]


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def check_schema(conn: Connection) -> None:
    """Raise :class:`SchemaOutdated` unless the database is at this code's head revision."""
    head, known = _script_revisions()
    try:
        current = current_revision(conn)
    except DBAPIError as exc:
        if is_connectivity_error(exc) and not _is_missing_table(exc):
            raise DatabaseUnavailable(f"cannot read the audit database {display_url(conn.engine.url)}: {_reason(exc)}") from None
        current = None
    if current == head:
        return
    if current is None:
        raise SchemaOutdated("the audit database has no schema yet: run hybrid-agent db upgrade")
    if current in known:
        raise SchemaOutdated(f"the audit schema is older than this code ({current}, need {head}): run hybrid-agent db upgrade")
    raise SchemaOutdated(f"the audit schema revision {current} is unknown to this code (newer release?); this code needs {head}")


def _is_missing_table(exc: BaseException) -> bool:
    return "no such table" in str(exc) or "does not exist" in str(exc)


def upgrade(database_url: str | URL, revision: str = "head") -> str | None:
    """Run the Alembic migrations up to ``revision``; returns the revision the database is now at."""
    from alembic import command

    engine = make_engine(database_url)
    try:
        with connect(engine) as conn:
            try:
                with conn.begin():
                    command.upgrade(alembic_config(conn), revision)
            except DBAPIError as exc:
                if is_connectivity_error(exc):
                    raise DatabaseUnavailable(f"cannot migrate the audit database {display_url(engine.url)}: {_reason(exc)}") from None
                raise
            return current_revision(conn)
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------- appending
def chain_head(conn: Connection) -> tuple[int, str]:
    row = conn.execute(select(LEDGER.c.seq, LEDGER.c.hash).order_by(LEDGER.c.seq.desc()).limit(1)).first()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def _existing_ids(conn: Connection, table: str, ids: Sequence[str]) -> set[str]:
    t = TABLES[table]
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        found.update(conn.execute(select(t.c.id).where(t.c.id.in_(chunk))).scalars())
    return found


def append_rows(
    conn: Connection, items: Sequence[tuple[str, Row]], *, now: float | None = None, check_existing: bool = True
) -> int:
    """Append rows and their ledger links in the caller's transaction; returns how many were new.

    Rows whose id is already stored (and duplicates within ``items``) are skipped, which
    makes replay idempotent.  ``check_existing=False`` skips the look-up of stored ids (one
    query per table): a batch that then hits a stored id fails on the primary key instead.
    On PostgreSQL an advisory transaction lock serializes appends across processes; on
    SQLite the writer engine's ``BEGIN IMMEDIATE`` does.
    """
    if not items:
        return 0
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
    by_table: dict[str, list[str]] = {}
    for table, row in items:
        by_table.setdefault(table, []).append(row["id"])
    existing = {
        table: _existing_ids(conn, table, ids) if check_existing else set() for table, ids in by_table.items()
    }
    seq, prev = chain_head(conn)
    written_at = float(time.time() if now is None else now) + 0.0
    rows: dict[str, list[Row]] = {}
    links: list[Row] = []
    for table, row in items:
        seen = existing[table]
        if row["id"] in seen:
            continue
        seen.add(row["id"])
        canon = canonical(table, row)
        seq += 1
        h = chain_hash(prev, canon, written_at)
        links.append({
            "seq": seq, "table_name": table, "row_id": row["id"], "call_id": row.get("call_id") or row["id"],
            "record_hash": record_hash(canon), "prev_hash": prev, "hash": h, "written_at": written_at,
        })
        prev = h
        rows.setdefault(table, []).append(row)
    for table, table_rows in rows.items():
        conn.execute(insert(TABLES[table]), table_rows)
    if links:
        conn.execute(insert(LEDGER), links)
    return len(links)


def write_batch(engine: Engine, items: Sequence[tuple[str, Row]]) -> int:
    """One transaction: append ``items`` to the chain.  Errors propagate (the writer spools).

    Live records are new, so the batch first goes in without looking up stored ids; only
    if that meets a stored id (a replay, a record enqueued twice) is it rolled back and
    appended again with the look-up, skipping what is already there.
    """
    try:
        with engine.begin() as conn:
            return append_rows(conn, items, check_existing=False)
    except IntegrityError:
        with engine.begin() as conn:
            return append_rows(conn, items)


# ---------------------------------------------------------------------------- calls left open by a crash
#: (table, at-ms column) pairs whose maximum is a call's last recorded moment
_LAST_MS_COLUMNS = (
    ("turns", "started_ms"), ("turns", "ended_ms"), ("turn_interruptions", "at_ms"), ("tool_calls", "at_ms"),
    ("tool_results", "at_ms"), ("policy_decisions", "at_ms"), ("disclosures", "at_ms"), ("call_events", "at_ms"),
    ("gate_actions", "at_ms"),
)

DEFAULT_INTERRUPTED_GRACE_S = 300.0


def _no_pseudonym(kind: str, value: str | None) -> str | None:  # CallEnded carries no identifier
    return None


def close_interrupted_calls(
    db: str | URL | Engine,
    *,
    older_than_s: float | None = DEFAULT_INTERRUPTED_GRACE_S,
    started_before: float | None = None,
    exclude: Iterable[str] = (),
    crashed: Iterable[str] = (),
    now: float | None = None,
    limit: int | None = None,
    dry_run: bool = False,
) -> list[Any]:
    """Record ``CallEnded(outcome="interrupted")`` for calls a crashed bridge left open.

    A call is open when it has a ``calls`` row (a ``CallStarted``) and no ``call_endings`` row.
    Each one closed gets ``at_ms`` = its last recorded moment (the largest ``*_ms`` of its turns,
    interruptions, tool calls and results, decisions, disclosures, call events and gate actions; 0 if none).
    The endings go through the normal record path (``rows_from_records`` + :func:`append_rows`),
    so they are in the hash chain and ``audit verify`` covers them.  Everything (finding the
    open calls and appending) happens in one transaction under the chain lock, so two processes
    running this at once close each call once.  Returns the records written (or, with
    ``dry_run``, that would be written), oldest call first.

    Which calls may be closed -- an open call may just be *live* in another process:

    - ``exclude``: call ids live in this process (``AuditWriter.close_interrupted_calls`` passes
      its own live calls).
    - ``older_than_s`` (default 300 s): only calls whose last record was stored (ledger
      ``written_at``) more than this long before ``now``.  ``None`` or 0 disables the check:
      only safe when this is the only process writing to the database and it has no live calls.
    - ``started_before`` (epoch seconds): only calls started before this (e.g. this process's
      start time).
    - ``crashed``: call ids known to have been open in a process that is gone (the calls the
      previous owner of a writer's spool still listed, ``AuditWriter`` passes them): closed
      whatever ``older_than_s`` and ``started_before`` say, if they are open.

    With several bridge processes sharing one database, give both ``started_before`` (this
    process's start) and a grace ``older_than_s`` longer than any silence in a live call (a
    live call records something at least every turn), or run it once from an operator
    command: ``hybrid-agent audit close-interrupted --older-than 5m``.  A live call closed by
    mistake keeps its records; its real ``CallEnded`` (same id ``<call>/end``) is then skipped
    as already stored.
    """
    from hybrid_agent.audit.encoding import rows_from_records
    from hybrid_agent.audit.records import CallEnded

    own = not isinstance(db, Engine)
    engine = make_engine(db, writer=True) if own else db  # type: ignore[arg-type]
    now_s = time.time() if now is None else now
    excluded = set(exclude)
    dead = sorted(set(crashed) - excluded)
    calls, endings = TABLES["calls"], TABLES["call_endings"]
    try:
        with connect(engine) as conn, conn.begin():
            check_schema(conn)
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
            q = (
                select(calls.c.id)
                .where(~exists().where(endings.c.call_id == calls.c.id))
                .order_by(calls.c.started_at, calls.c.id)
            )
            limits = []
            if started_before is not None:
                limits.append(calls.c.started_at < started_before)
            if older_than_s:
                cutoff = now_s - older_than_s
                limits.append(~exists().where(LEDGER.c.call_id == calls.c.id, LEDGER.c.written_at >= cutoff))
            if limits:
                q = q.where(or_(calls.c.id.in_(dead), and_(*limits)) if dead else and_(*limits))
            ids = [cid for cid in conn.execute(q).scalars() if cid not in excluded]
            if limit is not None:
                ids = ids[:limit]
            last: dict[str, float] = dict.fromkeys(ids, 0.0)
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                for table, col in _LAST_MS_COLUMNS:
                    t = TABLES[table]
                    for cid, ms in conn.execute(select(t.c.call_id, func.max(t.c[col])).where(t.c.call_id.in_(chunk)).group_by(t.c.call_id)):
                        if type(ms) in (int, float) and ms == ms and ms > last[cid] and ms != float("inf"):
                            last[cid] = float(ms)
            records = [CallEnded(cid, last[cid], "interrupted") for cid in ids]
            if records and not dry_run:
                append_rows(conn, rows_from_records(records, _no_pseudonym))  # type: ignore[arg-type]
    except DBAPIError as exc:
        if is_connectivity_error(exc):
            raise DatabaseUnavailable(f"cannot reach the audit database {display_url(engine.url)}: {_reason(exc)}") from None
        raise
    finally:
        if own:
            engine.dispose()
    if records and not dry_run:
        log.warning("audit: recorded %d calls left open by a previous process as interrupted: %s",
                    len(records), ", ".join(r.call_id for r in records[:20]) + (" ..." if len(records) > 20 else ""))
    return records
