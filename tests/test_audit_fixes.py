"""Regression tests for the audit-store review findings (type confusion, torn spool, poison rows,
spool failures, close() races, pseudonym collisions, SSN separators, -0.0, written_at, CLI export)."""

from __future__ import annotations

import asyncio
import errno
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from hybrid_agent.audit.models import LEDGER
from hybrid_agent.audit.records import CallEnded, CallStarted, PolicyDecisionRecord, ToolCallRecord, ToolResultRecord, TurnRecord
from hybrid_agent.audit.spool import Spool
from hybrid_agent.audit.store import AuditStoreError, alembic_config, make_engine
from hybrid_agent.audit.writer import AuditWriter
from hybrid_agent.cli import main

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/test"
T0 = 1_767_225_600.0


def writer_for(db_url: str, spool: Path, **kw: Any) -> AuditWriter:
    kw.setdefault("flush_interval_s", 0.02)
    kw.setdefault("retry_interval_s", 0.05)
    return AuditWriter(db_url, spool_path=spool, pseudonym_key="k", **kw)


def ledger_ids(db_url: str) -> list[str]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        ids = list(conn.execute(select(LEDGER.c.row_id).order_by(LEDGER.c.seq)).scalars())
    engine.dispose()
    return ids


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def decision(call_id: str = "c", seq: int = 0) -> PolicyDecisionRecord:
    return PolicyDecisionRecord(call_id, seq, "tool_call", "tool.transfer_funds", "deny", "v1", 1500.0,
                                message="blocked transfer", redacted=True)


def turn(call_id: str, i: int, **kw: Any) -> TurnRecord:
    kw.setdefault("redacted", True)
    return TurnRecord(call_id, i, "user", f"i{i}", f"turn {i}", "completed", i * 1000.0, i * 1000.0 + 900, **kw)


def sqlite_path(db_url: str) -> str:
    return db_url.removeprefix("sqlite:///")


# ---------------------------------------------------------------------------- 1. type confusion, INSERT OR REPLACE
async def test_guard_rejects_replace_and_odd_types(db_url: str, tmp_path: Path) -> None:
    """SQLite: INSERT OR REPLACE cannot swap a row (no DELETE trigger fires for it), and the
    type checks keep ``violation = 2`` / ``seq = '٢'`` out.  PostgreSQL: ON CONFLICT DO UPDATE is an UPDATE."""
    w = writer_for(db_url, tmp_path / "w.spool")
    await w.start()
    w.enqueue(CallStarted("c", T0, "web", "m", "sim"))
    w.enqueue(decision())
    await w.close()
    if db_url.startswith("sqlite"):
        db = sqlite3.connect(sqlite_path(db_url))
        cur = db.execute("SELECT * FROM policy_decisions")
        cols = [d[0] for d in cur.description]
        row = dict(zip(cols, cur.fetchone()))
        ins = f"INTO policy_decisions ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})"
        for verb, changes in [
            ("INSERT OR REPLACE", {"violation": 2}),           # same id: the old row would vanish silently
            ("INSERT OR REPLACE", {"id": "c/decision/9"}),     # new id, same (call_id, seq): also a replace
            ("INSERT", {"id": "c/decision/7", "seq": 7, "violation": 2}),
            ("INSERT", {"id": "c/decision/8", "seq": "٢"}),
            ("INSERT", {"id": "c/decision/6", "seq": 6, "at_ms": "later"}),
        ]:
            with pytest.raises(sqlite3.IntegrityError):
                db.execute(f"{verb} {ins}", list({**row, **changes}.values()))
        db.close()
    else:
        engine = make_engine(db_url)
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("INSERT INTO policy_decisions SELECT * FROM policy_decisions "
                              "ON CONFLICT (id) DO UPDATE SET violation = false"))
        engine.dispose()
    assert ledger_ids(db_url) == ["c", "c/decision/0"]


@pytest.fixture
def unguarded_sqlite(tmp_path: Path) -> str:
    """A SQLite database at the head revision but without triggers or type checks
    (what someone with the file can make of it: SQLite keeps any value in any column)."""
    from alembic import command

    from hybrid_agent.audit.models import metadata

    url = f"sqlite:///{tmp_path}/unguarded.db"
    engine = make_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        command.stamp(alembic_config(conn), "head")
    engine.dispose()
    return url


async def test_verify_decodes_strictly(unguarded_sqlite: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = unguarded_sqlite
    w = writer_for(url, tmp_path / "w.spool")
    await w.start()
    for r in [CallStarted("c", T0, "web", "m", "sim"), decision(), turn("c", 2),
              ToolCallRecord("c", "t1", "lookup", "{}", 1600.0, redacted=True), ToolResultRecord("c", "t1", "ok", 1700.0, redacted=True)]:
        w.enqueue(r)
    await w.close()
    assert cli(capsys, "audit", "verify", "--db", url)[0] == 0
    db = sqlite3.connect(sqlite_path(url))
    db.execute("UPDATE policy_decisions SET violation = 2")  # bool(2) is True: the old verify hashed it as unchanged
    db.commit()
    rc, out, _ = cli(capsys, "audit", "violations", "--json", "--db", url)
    assert json.loads(out) == []  # the violation is gone from the queries...
    rc, out, _ = cli(capsys, "audit", "verify", "--db", url)
    assert rc == 1 and "row_edited: table policy_decisions, row c/decision/0" in out and "violation" in out  # ...and verify says so

    db.execute("UPDATE turns SET seq = '٢'")  # int('٢') == 2, but it sorts as text
    db.execute("UPDATE tool_calls SET at_ms = 'soon'")
    db.commit()
    db.close()
    result = json.loads(cli(capsys, "audit", "verify", "--json", "--db", url)[1])
    bad = {(p["table"], p["kind"]) for p in result["problems"]}
    assert {("policy_decisions", "row_edited"), ("turns", "row_edited"), ("tool_calls", "row_edited")} <= bad
    # show renders odd stored types instead of a traceback
    rc, out, err = cli(capsys, "audit", "show", "c", "--db", url)
    assert rc == 0 and "Traceback" not in err and "lookup" in out
    rc, out, err = cli(capsys, "audit", "show", "c", "--json", "--db", url)
    assert rc == 0 and json.loads(out)["tool_calls"][0]["result"]["latency_ms"] is None


# ---------------------------------------------------------------------------- 2. torn spool tail
async def test_torn_spool_tail_does_not_swallow_the_next_record(db_url: str, tmp_path: Path) -> None:
    sp = tmp_path / "t.spool"
    w = writer_for(UNREACHABLE, sp)
    await w.start()
    w.enqueue(CallStarted("c", T0, "web", "m", "sim"))
    await w.flush()
    await w.close()
    line = Spool._line("call_endings", {"id": "c/end", "call_id": "c", "at_ms": 5.0, "outcome": "completed"})
    with open(sp, "ab") as f:
        f.write(line.encode()[:30])  # crash mid-append
    w = writer_for(UNREACHABLE, sp)  # restart, database still down
    await w.start()
    w.enqueue(CallStarted("d", T0, "web", "m", "sim"))
    w.enqueue(decision("d"))
    await w.flush()  # reported durable
    await w.close()
    assert sp.read_bytes().endswith(b"\n") and Spool(sp).count() == 3
    up = writer_for(db_url, sp)  # database back
    await up.start()
    await up.close()
    assert ledger_ids(db_url) == ["c", "d", "d/decision/0"]
    reasons = [json.loads(q)["reason"] for q in Spool(sp).quarantine_path.read_text().splitlines()]
    assert reasons == ["truncated line (no newline: torn write)"]


def test_spool_append_repairs_a_torn_tail(tmp_path: Path) -> None:
    s = Spool(tmp_path / "s.spool")
    row = {"id": "x", "started_at": 1.0, "channel": "web", "model": "m", "upstream": "u", "caller_pseudonym": None,
           "account_pseudonym": None, "policy_pack": None, "policy_version": None, "gate_mode": None}
    s.append([("calls", row)])
    with open(s.path, "ab") as f:
        f.write(b'{"sha256": "ab')
    s.append([("calls", {**row, "id": "y"})])
    assert [s.parse(line)[1]["id"] for line in s.path.read_bytes().splitlines(keepends=True)] == ["x", "y"]
    assert s.quarantined == 1


# ---------------------------------------------------------------------------- 3. poison rows other than Integrity/DataError
async def test_poison_row_of_any_error_is_quarantined_not_an_outage(db_url: str, tmp_path: Path) -> None:
    sp = tmp_path / "p.spool"
    w = writer_for(db_url, sp)
    await w.start()
    w.enqueue(CallStarted("c", T0, "web", "m", "sim"))
    w.enqueue(decision("c", 2**63))  # SQLite: OverflowError (not an IntegrityError/DataError)
    for i in range(3):
        w.enqueue(turn("c", i))
    await w.flush()
    assert w.db_available
    w.enqueue(CallEnded("c", 9000.0, "completed"))
    await w.close()
    assert ledger_ids(db_url) == ["c", "c/turn/0", "c/turn/1", "c/turn/2", "c/end"]
    assert Spool(sp).count() == 0
    q = [json.loads(x) for x in Spool(sp).quarantine_path.read_text().splitlines()]
    assert [x["r"]["id"] for x in q] == [f"c/decision/{2**63}"]


async def test_poison_row_in_spool_replay_is_quarantined(db_url: str, tmp_path: Path) -> None:
    sp = tmp_path / "p.spool"
    down = writer_for(UNREACHABLE, sp)
    await down.start()
    for r in [CallStarted("c", T0, "web", "m", "sim"), decision("c", 2**63), turn("c", 0)]:
        down.enqueue(r)
    await down.close()
    up = writer_for(db_url, sp)
    await up.start()
    await up.close()
    assert ledger_ids(db_url) == ["c", "c/turn/0"] and Spool(sp).count() == 0


# ---------------------------------------------------------------------------- 4. failed spool write
def outage() -> None:
    raise OperationalError("INSERT ...", {}, ConnectionError("server closed the connection unexpectedly"))


async def test_failed_spool_write_keeps_records_and_is_visible(db_url: str, tmp_path: Path) -> None:
    w = writer_for(db_url, tmp_path / "f.spool")
    await w.start()
    w.fault_hook = outage  # database down...
    real_append = w.spool.append
    disk_full = [True]

    def append(items: Any) -> None:  # ...and the spool's disk full
        if disk_full[0]:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_append(items)

    w.spool.append = append  # type: ignore[method-assign]
    w.enqueue(CallStarted("c", T0, "web", "m", "sim"))
    w.enqueue(decision())
    await asyncio.sleep(0.1)  # the periodic drain hits the full disk
    assert not w.healthy and "No space left" in (w.last_error or "") and w.queued == 2
    with pytest.raises(AuditStoreError, match="not durable"):
        await w.flush()
    disk_full[0] = False
    w.enqueue(CallEnded("c", 2000.0, "completed"))
    await w.flush()  # now durable (spooled)
    assert w.healthy and w.queued == 0 and Spool(w.spool.path).count() == 3
    w.fault_hook = None
    await w.close()
    assert ledger_ids(db_url) == ["c", "c/decision/0", "c/end"]


# ---------------------------------------------------------------------------- 5. close() races
async def test_enqueue_in_the_close_window_is_not_lost(db_url: str, tmp_path: Path) -> None:
    sp = tmp_path / "c.spool"
    w = writer_for(db_url, sp)
    w.start_sync()
    w.enqueue(CallStarted("c", T0, "web", "m", "sim"))
    assert w._thread is not None
    real_join = w._thread.join

    def join_then_enqueue(*a: Any, **k: Any) -> None:  # the event loop enqueues right after the thread's final drain
        real_join(*a, **k)
        w.enqueue(CallEnded("c", 9000.0, "completed"))

    w._thread.join = join_then_enqueue  # type: ignore[method-assign]
    w.close_sync()
    assert w.queued == 0
    assert len(ledger_ids(db_url)) + Spool(sp).count() == 2
    await asyncio.wait_for(w.flush(), 2)  # flush after close returns (used to hang forever)


def test_enqueue_racing_close_loses_nothing(db_url: str, tmp_path: Path) -> None:
    lost = 0
    for trial in range(4):
        sp = tmp_path / f"r{trial}.spool"
        w = writer_for(db_url, sp, flush_interval_s=0.001)
        w.start_sync()
        n = 400
        go = threading.Event()

        def producer(w: AuditWriter = w, trial: int = trial) -> None:
            go.wait()
            for i in range(n):
                w.enqueue(turn(f"c{trial}", i))

        th = threading.Thread(target=producer)
        th.start()
        go.set()
        w.close_sync()
        th.join()
        lost += n - (sum(1 for x in ledger_ids(db_url) if x.startswith(f"c{trial}/")) + Spool(sp).count())
        assert w.queued == 0
    assert lost == 0


# ---------------------------------------------------------------------------- 6. pseudonym collisions
def test_pseudonyms_do_not_collide() -> None:
    from hybrid_agent.audit.encoding import record_to_row
    from hybrid_agent.audit.privacy import Pseudonymizer

    p = Pseudonymizer("k")
    for nobody in (None, "", "  ", "anonymous", "Restricted", "sip:anonymous@anonymous.invalid", "unknown"):
        assert p("phone", nobody) is None, nobody
    uris = {p("phone", v) for v in ("sip:alice@example.com", "sip:bob@example.com", "sip:carol@example.org")}
    assert len(uris) == 3
    phone = p("phone", "+1 (415) 555-0199")
    assert phone not in uris
    # every form of one number still joins
    assert {p("phone", v) for v in ("+14155550199", "415-555-0199", "four one five five five five zero one nine nine",
                                    "tel:+14155550199", "sip:+14155550199@carrier.example")} == {phone}
    accounts = [p("account", v) for v in ("ACC-12-XY", "12", "ACC-12-ZZ")]
    assert len(set(accounts)) == 3
    assert p("account", "9988 7766") == p("account", "99887766")
    _, row = record_to_row(CallStarted("c", T0, "sip", "m", "sim", caller_id="anonymous"), p)
    assert row["caller_pseudonym"] is None


# ---------------------------------------------------------------------------- 8. -0.0
async def test_negative_zero_verifies(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = writer_for(db_url, tmp_path / "z.spool")
    await w.start()
    w.enqueue(CallStarted("c", T0, "web", "m", "sim"))
    w.enqueue(TurnRecord("c", 0, "user", "x", "t", "completed", -0.0, 1.0, audio_ms=-0.0, redacted=True))
    for i, v in enumerate([5e-324, 1e308, 0.1 + 0.2, 2.0**53 + 1, 1e16], 1):
        w.enqueue(TurnRecord("c", i, "user", "x", "t", "completed", v, 1.0, redacted=True))
    await w.close()
    rc, out, _ = cli(capsys, "audit", "verify", "--db", db_url)
    assert rc == 0, out


# ---------------------------------------------------------------------------- 9. PostgreSQL: owner role vs app role
@pytest.mark.postgres
async def test_pg_app_role_cannot_disable_the_guard(tmp_path: Path) -> None:
    """The set-up documented in docs/audit.md: migrations as the owner, the app with INSERT/SELECT only."""
    import secrets

    import psycopg
    from conftest import PG_BASE, _admin_execute, require_postgres

    from hybrid_agent.audit.store import upgrade

    require_postgres()
    sfx = secrets.token_hex(4)
    owner, app, schema = f"audit_owner_{sfx}", f"audit_app_{sfx}", f"audit_roles_{sfx}"
    base = PG_BASE.split("://", 1)[1].split("@", 1)[1]  # host:port/db[?...]
    try:
        _admin_execute(f"CREATE ROLE {owner} LOGIN; CREATE ROLE {app} LOGIN; CREATE SCHEMA {schema} AUTHORIZATION {owner}")
        upgrade(f"postgresql://{owner}@{base}?options=-csearch_path%3D{schema}")
        _admin_execute(f"GRANT USAGE ON SCHEMA {schema} TO {app}; "
                       f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {schema} TO {app}")
        app_url = f"postgresql://{app}@{base}?options=-csearch_path%3D{schema}"
        w = writer_for(app_url, tmp_path / "g.spool")
        await w.start()
        w.enqueue(CallStarted("c", T0, "web", "m", "sim"))
        w.enqueue(decision())
        await w.close()
        assert w.stats["spooled"] == 0 and ledger_ids(app_url) == ["c", "c/decision/0"]
        with psycopg.connect(f"postgresql://{app}@{base.split('?')[0]}", options=f"-csearch_path={schema}", autocommit=True) as c:
            for sql in ["CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$ BEGIN RETURN COALESCE(NEW, OLD); END $$",
                        "ALTER TABLE ledger DISABLE TRIGGER ledger_append_only", "DROP TRIGGER ledger_append_only ON ledger",
                        "UPDATE ledger SET written_at = 0", "DELETE FROM policy_decisions", "TRUNCATE turns"]:
                with pytest.raises(psycopg.Error):
                    c.execute(sql)
    finally:
        _admin_execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        for role in (app, owner):
            _admin_execute(f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
                           f"EXECUTE 'DROP OWNED BY {role}'; EXECUTE 'DROP ROLE {role}'; END IF; END $$")


# ---------------------------------------------------------------------------- 10. CLI export and --limit
async def test_export_errors_are_one_line_and_keep_the_previous_export(db_url: str, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    w = writer_for(db_url, tmp_path / "e.spool")
    await w.start()
    w.enqueue(CallStarted("c", T0, "web", "m", "sim"))
    await w.close()
    rc, out, err = cli(capsys, "audit", "export", "--db", db_url, "-o", str(tmp_path / "no" / "such" / "dir" / "x.jsonl"))
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    prev = tmp_path / "prev.jsonl"
    prev.write_text("yesterday's export\n")
    rc, out, err = cli(capsys, "audit", "export", "--db", f"sqlite:///{tmp_path}/missing.db", "-o", str(prev))
    assert rc == 2 and prev.read_text() == "yesterday's export\n"
    rc, out, err = cli(capsys, "audit", "export", "--db", db_url, "-o", str(prev))
    assert rc == 0 and json.loads(prev.read_text().splitlines()[0])["record"]["id"] == "c"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("prev")) == ["prev.jsonl"]  # no temp file left


@pytest.mark.parametrize("cmd", [("calls",), ("violations",), ("search", "x")])
def test_limit_must_be_positive(cmd: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("0", "-1"):
        with pytest.raises(SystemExit) as exc:
            main(["audit", *cmd, "--limit", bad, "--db", "sqlite:///unused.db"])
        assert exc.value.code == 2
        assert "must be at least 1" in capsys.readouterr().err
