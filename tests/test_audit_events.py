"""Call events ("errors are audit facts"), calls left open by a crash, and the writer's health status.

Every database test runs on SQLite and on PostgreSQL (see conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import cli, cli_json
from audit_helpers import record as _record
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from hybrid_agent.audit.models import LEDGER
from hybrid_agent.audit.records import (
    CALL_OUTCOMES,
    CallEnded,
    CallEventRecord,
    CallStarted,
    DisclosureRecord,
    PolicyDecisionRecord,
    ToolCallRecord,
    ToolResultRecord,
    TurnInterrupted,
    TurnRecord,
)
from hybrid_agent.audit.store import AuditStoreError, DatabaseUnavailable, alembic_config, close_interrupted_calls, make_engine
from hybrid_agent.audit.writer import AuditWriter

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/test"
T0 = 1_767_225_600.0
MODEL_MSG = "The model of a session cannot be changed."


def writer_for(db_url: str, spool: Path, **kw: Any) -> AuditWriter:
    kw.setdefault("flush_interval_s", 0.02)
    kw.setdefault("retry_interval_s", 0.05)
    return AuditWriter(db_url, spool_path=spool, pseudonym_key="k", **kw)


async def record(db_url: str, records: list[Any], tmp_path: Path) -> AuditWriter:
    return await _record(db_url, records, tmp_path, flush_interval_s=0.02, retry_interval_s=0.05)


def ledger_ids(db_url: str) -> list[str]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        ids = list(conn.execute(select(LEDGER.c.row_id).order_by(LEDGER.c.seq)).scalars())
    engine.dispose()
    return ids


def rows(db_url: str, sql: str) -> list[Any]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        out = list(conn.execute(text(sql)))
    engine.dispose()
    return out


def refused_call(call_id: str = "call_R", started_at: float = T0) -> list[Any]:
    """A call whose session.update (a model change) the upstream refused, among other events."""
    return [
        CallStarted(call_id, started_at, "realtime", "gpt-realtime", "openai"),
        TurnRecord(call_id, 0, "user", "i0", "Hello there", "completed", 100.0, 900.0, redacted=True),
        CallEventRecord(call_id, 0, 50.0, "upstream_refused", "invalid_value", "session.update", "session.model",
                        MODEL_MSG, client_event_id="evt_client_1"),
        CallEventRecord(call_id, 1, 1_000.0, "bridge_refused", "invalid_json", None, None, "Expected a JSON object"),
        CallEventRecord(call_id, 2, 1_200.0, "upstream", "rate_limit_exceeded", message="Rate limit reached"),
        TurnRecord(call_id, 1, "assistant", "i1", "Hi, how can I help?", "completed", 1_100.0, 2_000.0, redacted=True),
        CallEventRecord(call_id, 3, 2_500.0, "bridge", "session_rewritten", "session.update", "session.model",
                        "model gpt-4o rewritten to gpt-realtime", redacted=True),
        CallEnded(call_id, 3_000.0, "completed"),
    ]


def clean_call(call_id: str, started_at: float = T0 + 10, *events: CallEventRecord) -> list[Any]:
    return [
        CallStarted(call_id, started_at, "web", "gpt-realtime", "openai"),
        TurnRecord(call_id, 0, "user", "i0", "Hi", "completed", 0.0, 500.0, redacted=True),
        *events,
        CallEnded(call_id, 1_000.0, "completed"),
    ]


# ---------------------------------------------------------------------------- A. the record
def test_record_shape() -> None:
    e = CallEventRecord("c", 3, 12.5, "upstream_refused", "invalid_value", "session.update", "session.model", MODEL_MSG)
    assert e.record_id == "c/event/3" and e.refused and e.client_event_id is None and e.redacted is False
    assert not CallEventRecord("c", 0, 0.0, "upstream", "server_error").refused
    with pytest.raises(AttributeError):
        e.kind = "x"  # type: ignore[misc]
    assert not hasattr(e, "__dict__")  # slots
    assert "interrupted" in CALL_OUTCOMES


async def test_events_show_in_order_with_turns(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await record(db_url, refused_call(), tmp_path)
    shown = cli_json(capsys, "audit", "show", "call_R", "--db", db_url)
    assert [e["seq"] for e in shown["events"]] == [0, 1, 2, 3]
    assert shown["errors"] == 3 and shown["config_refused"] is True
    ev0 = shown["events"][0]
    assert (ev0["source"], ev0["kind"], ev0["event_type"], ev0["param"], ev0["message"], ev0["client_event_id"], ev0["refused"]) == (
        "upstream_refused", "invalid_value", "session.update", "session.model", MODEL_MSG, "evt_client_1", True)
    timeline = [(e["kind"], e.get("code") if e["kind"] == "event" else e.get("seq")) for e in shown["timeline"]]
    assert timeline == [("event", "invalid_value"), ("turn", 0), ("event", "invalid_json"), ("turn", 1),
                        ("event", "rate_limit_exceeded"), ("event", "session_rewritten")]

    rc, out, _ = cli(capsys, "audit", "show", "call_R", "--db", db_url)
    assert rc == 0
    assert f"REFUSED session.update (session.model): {MODEL_MSG}" in out
    assert "CONFIGURATION REFUSED" in out
    lines = out.splitlines()
    order = [next(i for i, ln in enumerate(lines) if needle in ln)
             for needle in ("REFUSED session.update", "Hello there", "invalid_json", "Hi, how can I help", "rate_limit_exceeded",
                            "session_rewritten")]
    assert order == sorted(order)
    assert "ERROR upstream rate_limit_exceeded: Rate limit reached" in out and "NOTE bridge session_rewritten" in out


async def test_calls_errors_column_filters_and_config_flag(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = (
        refused_call("r1", T0)
        + clean_call("ok", T0 + 10)
        + clean_call("err", T0 + 20, CallEventRecord("err", 0, 10.0, "upstream", "server_error", message="boom"))
        # refused by the bridge (invalid schema): the configuration was not applied either
        + clean_call("br", T0 + 30, CallEventRecord("br", 0, 10.0, "bridge_refused", "invalid_schema", "session.update", "session.tools"))
        # a refused event that is not configuration
        + clean_call("ap", T0 + 40, CallEventRecord("ap", 0, 10.0, "upstream_refused", "invalid_value", "response.create", None))
    )
    await record(db_url, recs, tmp_path)
    calls = {c["call_id"]: c for c in cli_json(capsys, "audit", "calls", "--db", db_url)}
    assert {k: (c["errors"], c["config_refused"]) for k, c in calls.items()} == {
        "r1": (3, True), "ok": (0, False), "err": (1, False), "br": (1, True), "ap": (1, False)}

    def ids(*args: str) -> list[str]:
        return [c["call_id"] for c in cli_json(capsys, "audit", "calls", "--db", db_url, *args)]

    assert ids("--has-errors") == ["ap", "br", "err", "r1"]
    assert ids("--no-errors") == ["ok"]
    assert ids("--config-refused") == ["br", "r1"]
    rc, out, _ = cli(capsys, "audit", "calls", "--db", db_url)
    assert rc == 0 and "ERRORS" in out and "2 with a refused session.update" in out
    flagged = [ln.split()[0] for ln in out.splitlines() if "CONFIG REFUSED" in ln]
    assert sorted(flagged) == ["br", "r1"]
    # the BI view agrees
    summary = {r[0]: (r[1], bool(r[2])) for r in rows(db_url, "SELECT call_id, errors, config_refused FROM audit_call_summary")}
    assert summary["r1"] == (3, True) and summary["ok"] == (0, False) and summary["br"] == (1, True)
    assert len(rows(db_url, "SELECT * FROM audit_call_events WHERE refused")) == 4


async def test_event_text_is_redacted_unless_marked(db_url: str, tmp_path: Path) -> None:
    recs = [
        CallStarted("p", T0, "web", "m", "sim"),
        CallEventRecord("p", 0, 1.0, "bridge_refused", "invalid_json", None, None,
                        "Unexpected token in 'my card is 4111 1111 1111 1111, mail jane.doe@example.com'"),
        CallEventRecord("p", 1, 2.0, "upstream_refused", "invalid_value", "session.update", "session.instructions",
                        "Invalid value: 'call me on +1 415 555 0199'", client_event_id="jane.doe@example.com"),
        CallEventRecord("p", 2, 3.0, "upstream", "x", message="keep +1 415 555 0199 as given", redacted=True),
    ]
    await record(db_url, recs, tmp_path)
    got = {r[0]: r[1:] for r in rows(db_url, "SELECT seq, message, client_event_id, event_type, param, redaction FROM call_events")}
    blob = json.dumps([got[0], got[1]])
    for planted in ("4111 1111 1111 1111", "jane.doe@example.com", "415 555 0199"):
        assert planted not in blob, planted
    assert got[0][4] == "pii_gate" and got[1][2:4] == ("session.update", "session.instructions")  # codes kept as they are
    assert got[2] == ("keep +1 415 555 0199 as given", None, None, None, "caller")


# ---------------------------------------------------------------------------- A. chain, verify, guards
async def test_events_are_chained_and_replay_is_idempotent(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = refused_call()
    await record(db_url, recs + recs[2:5], tmp_path)
    await record(db_url, recs, tmp_path)
    assert ledger_ids(db_url) == [r.record_id for r in recs]
    res = cli_json(capsys, "audit", "verify", "--db", db_url)
    assert res["ok"] and res["checked"] == len(recs)
    exported = [json.loads(x) for x in cli(capsys, "audit", "export", "--db", db_url)[1].splitlines()]
    assert [x["table"] for x in exported].count("call_events") == 4


EVENT_TAMPERING = {
    "edit_message": "UPDATE call_events SET message = 'all fine' WHERE id = 'call_R/event/0'",
    "soften_source": "UPDATE call_events SET source = 'upstream' WHERE id = 'call_R/event/0'",
    "delete_event": "DELETE FROM call_events WHERE id = 'call_R/event/0'",
    "forge_event": ("INSERT INTO call_events (id, call_id, seq, at_ms, source, kind, redaction) "
                    "VALUES ('call_R/event/9', 'call_R', 9, 1.0, 'upstream', 'forged', 'caller')"),
}


@pytest.mark.parametrize("how", list(EVENT_TAMPERING))
async def test_verify_detects_event_tampering(how: str, db_url: str, tamper: Any, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    await record(db_url, refused_call(), tmp_path)
    tamper(EVENT_TAMPERING[how])
    rc, out, _ = cli(capsys, "audit", "verify", "--db", db_url)
    assert rc == 1 and out.startswith("FAILED"), out
    assert "table call_events, row call_R/event/" in out, out
    if how == "delete_event":
        assert "row_missing" in out
        # and the call no longer looks refused, but verify says it was edited: that is the point of the chain
        assert cli_json(capsys, "audit", "calls", "--db", db_url)[0]["config_refused"] is False


async def test_call_events_are_append_only(db_url: str, tmp_path: Path) -> None:
    await record(db_url, refused_call(), tmp_path)
    engine = make_engine(db_url)
    statements = ["UPDATE call_events SET message = 'x'", "DELETE FROM call_events"]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE call_events")
    for sql in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text(sql))
    engine.dispose()
    if db_url.startswith("sqlite"):
        db = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        cur = db.execute("SELECT * FROM call_events WHERE seq = 0")
        cols = [d[0] for d in cur.description]
        row = dict(zip(cols, cur.fetchone()))
        ins = f"INTO call_events ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})"
        for verb, changes in [
            ("INSERT OR REPLACE", {"message": "softened"}),
            ("INSERT OR REPLACE", {"id": "call_R/event/99"}),  # same (call_id, seq)
            ("INSERT", {"id": "call_R/event/7", "seq": "seven"}),  # seq as text: the type check
            ("INSERT", {"id": "call_R/event/8", "seq": 8, "at_ms": "later"}),
        ]:
            with pytest.raises(sqlite3.IntegrityError):
                db.execute(f"{verb} {ins}", list({**row, **changes}.values()))
        db.close()


def test_migration_0002_downgrades_and_upgrades(db_url: str) -> None:
    from alembic import command

    engine = make_engine(db_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    with engine.connect() as conn:
        assert "errors" not in [c for c in conn.execute(text("SELECT * FROM audit_call_summary")).keys()]
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    with engine.connect() as conn:
        assert "config_refused" in list(conn.execute(text("SELECT * FROM audit_call_summary")).keys())
        command.check(alembic_config(conn))
    engine.dispose()


# ---------------------------------------------------------------------------- C. calls left open by a crash
def crashed_calls() -> list[Any]:
    """``open1`` crashed after several records; ``open0`` right after CallStarted; ``done`` ended."""
    return [
        CallStarted("open1", T0, "web", "m", "sim"),
        TurnRecord("open1", 0, "user", "i0", "hi", "completed", 100.0, 1_500.0, redacted=True),
        TurnInterrupted("open1", 1, "i1", 200.0, "Hel", 2_100.0, redacted=True),
        ToolCallRecord("open1", "t1", "lookup", "{}", 2_200.0, redacted=True),
        ToolResultRecord("open1", "t1", "{}", 2_400.0, redacted=True),
        PolicyDecisionRecord("open1", 0, "tool_call", "r", "allow", "v1", 2_300.0),
        DisclosureRecord("open1", "rec", "This call is recorded.", 50.0, redacted=True),
        CallEventRecord("open1", 0, 2_750.5, "upstream", "server_error"),
        CallStarted("open0", T0 + 1, "web", "m", "sim"),
        *clean_call("done", T0 + 2),
    ]


async def test_close_interrupted_calls(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await record(db_url, crashed_calls(), tmp_path)
    # everything was just written: the default grace (5 min) protects calls that may be live elsewhere
    assert close_interrupted_calls(db_url) == []
    assert close_interrupted_calls(db_url, older_than_s=300, now=time.time() + 301, started_before=T0 + 0.5) == [
        CallEnded("open1", 2_750.5, "interrupted")]
    assert ledger_ids(db_url)[-1] == "open1/end"
    closed = close_interrupted_calls(db_url, older_than_s=None, exclude={"nothing"})
    assert closed == [CallEnded("open0", 0.0, "interrupted")]
    assert close_interrupted_calls(db_url, older_than_s=None) == []  # idempotent
    assert cli_json(capsys, "audit", "verify", "--db", db_url)["ok"]
    outcomes = {c["call_id"]: (c["outcome"], c["duration_ms"]) for c in cli_json(capsys, "audit", "calls", "--db", db_url)}
    assert outcomes == {"open1": ("interrupted", 2_750.5), "open0": ("interrupted", 0.0), "done": ("completed", 1_000.0)}
    assert [c["call_id"] for c in cli_json(capsys, "audit", "calls", "--outcome", "interrupted", "--db", db_url)] == ["open0", "open1"]
    rc, out, _ = cli(capsys, "audit", "show", "open1", "--db", db_url)
    assert "call ended: interrupted after 2.8s" in out


async def test_close_interrupted_cli(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await record(db_url, crashed_calls(), tmp_path)
    rc, out, _ = cli(capsys, "audit", "close-interrupted", "--db", db_url)
    assert rc == 0 and "(recorded 0 calls" in out  # default --older-than 5m
    dry = cli_json(capsys, "audit", "close-interrupted", "--older-than", "0", "--dry-run", "--db", db_url)
    assert [d["call_id"] for d in dry] == ["open1", "open0"]
    assert "open1/end" not in ledger_ids(db_url)
    rc, out, _ = cli(capsys, "audit", "close-interrupted", "--older-than", "0s", "--db", db_url)
    assert rc == 0 and "open1  interrupted after 2.8s" in out and "(recorded 2 calls as interrupted)" in out
    with pytest.raises(SystemExit):
        cli(capsys, "audit", "close-interrupted", "--older-than", "soon", "--db", db_url)
    assert "not a duration" in capsys.readouterr().err
    rc, _, err = cli(capsys, "audit", "close-interrupted", "--db", UNREACHABLE)
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1


async def test_writer_closes_only_calls_it_does_not_own(db_url: str, tmp_path: Path) -> None:
    await record(db_url, crashed_calls(), tmp_path)  # a previous process crashed with open0, open1 open
    w = writer_for(db_url, tmp_path / "second.spool")
    await w.start()
    w.enqueue(CallStarted("live", T0 + 5, "web", "m", "sim"))  # live in this process
    await w.flush()
    assert w.live_calls == {"live"}
    # several workers: open calls of the previous process are too recent to be sure
    assert await w.close_interrupted_calls() == []
    # this process is the only writer: everything open that is not live here was interrupted
    closed = await w.close_interrupted_calls(sole_writer=True)
    assert [r.call_id for r in closed] == ["open1", "open0"]
    w.enqueue(CallEnded("live", 10.0, "completed"))
    await w.close()
    assert cli_outcome(db_url) == {"open1": "interrupted", "open0": "interrupted", "done": "completed", "live": "completed"}


def cli_outcome(db_url: str) -> dict[str, str]:
    return {r[0]: r[1] for r in rows(db_url, "SELECT call_id, outcome FROM call_endings")}


async def test_writer_does_not_close_while_the_database_is_down(db_url: str, tmp_path: Path) -> None:
    await record(db_url, crashed_calls(), tmp_path)
    w = writer_for(UNREACHABLE, tmp_path / "down.spool")
    await w.start()
    assert await w.close_interrupted_calls(sole_writer=True) == []
    await w.close()
    with pytest.raises(DatabaseUnavailable):
        close_interrupted_calls(UNREACHABLE)


async def test_concurrent_closers_close_each_call_once(db_url: str, tmp_path: Path) -> None:
    await record(db_url, crashed_calls(), tmp_path)
    results: list[list[CallEnded]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(close_interrupted_calls(db_url, older_than_s=None))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r.call_id for res in results for r in res) == ["open0", "open1"]
    assert ledger_ids(db_url).count("open1/end") == 1


# ---------------------------------------------------------------------------- D. writer status
def outage() -> None:
    raise OperationalError("SELECT 1", {}, ConnectionError("server closed the connection unexpectedly"))


KEYS = {"healthy", "ready", "database_reachable", "spooling", "spool_writable", "queued", "last_error"}


async def test_status_when_all_is_well(db_url: str, tmp_path: Path) -> None:
    w = writer_for(db_url, tmp_path / "ok.spool")
    s = w.status()
    assert KEYS <= set(s) and not s["ready"] and not s["running"]  # not started yet
    await w.start()
    s = w.status()
    assert (s["ready"], s["healthy"], s["database_reachable"], s["spooling"], s["spool_writable"], s["queued"], s["last_error"]) == (
        True, True, True, False, True, 0, None)
    assert w.ready and json.dumps(s)  # JSON-ready for /healthz
    await w.close()
    assert not w.status()["ready"] and not w.status()["running"]


async def test_status_database_unreachable_but_spooling(tmp_path: Path) -> None:
    w = writer_for(UNREACHABLE, tmp_path / "s.spool")
    await w.start()
    w.enqueue(CallStarted("c", T0, "web", "m", "sim"))
    await w.flush()
    s = w.status()
    assert s["ready"] and not s["database_reachable"] and s["spooling"] and s["spool_writable"]
    assert "Connection refused" in (s["last_error"] or "") or s["last_error"]
    await w.close()


def _dev_full_spool(tmp_path: Path) -> Path:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    spool = tmp_path / "full.spool"
    spool.symlink_to("/dev/full")  # every write: ENOSPC, like a full disk
    return spool


async def test_not_ready_when_neither_database_nor_spool_takes_writes(tmp_path: Path) -> None:
    w = writer_for(UNREACHABLE, _dev_full_spool(tmp_path))
    await w.start()
    s = w.status()
    assert not s["ready"] and not s["healthy"] and not s["database_reachable"] and not s["spool_writable"]
    assert "No space left" in (s["last_error"] or "")
    w.enqueue(CallStarted("c", T0, "web", "m", "sim"))
    with pytest.raises(AuditStoreError, match="not durable"):
        await w.flush()
    s = w.status()
    assert not s["ready"] and s["records_stuck"] and s["queued"] == 1
    with pytest.raises(AuditStoreError, match="could not be stored"):
        await w.close()


async def test_full_spool_with_the_database_up_is_ready(db_url: str, tmp_path: Path) -> None:
    w = writer_for(db_url, _dev_full_spool(tmp_path))
    await w.start()
    s = w.status()
    assert s["ready"] and s["database_reachable"] and not s["spool_writable"] and "No space left" in s["last_error"]
    w.enqueue(CallStarted("c", T0, "web", "m", "sim"))
    await w.flush()
    await w.close()
    assert ledger_ids(db_url) == ["c"]


async def test_status_follows_outages_and_a_vanished_spool_directory(db_url: str, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spooldir"
    spool_dir.mkdir()
    w = writer_for(db_url, spool_dir / "a.spool")
    await w.start()
    w.fault_hook = outage  # the database goes away while idle
    s = await w.probe()
    assert not s["database_reachable"] and s["ready"] and s["spool_writable"]  # the spool would take records
    shutil.rmtree(spool_dir)  # ...and the spool's directory is gone
    s = await w.probe()
    assert not s["ready"] and not s["spool_writable"] and s["last_error"]
    w.fault_hook = None
    s = await w.probe()
    assert s["database_reachable"] and s["ready"]  # the database takes writes again
    await w.close()


async def test_status_is_cheap_and_thread_safe(db_url: str, tmp_path: Path) -> None:
    w = writer_for(db_url, tmp_path / "t.spool", probe_interval_s=0.01)
    await w.start()
    stop = threading.Event()
    seen: list[dict[str, Any]] = []

    def poll() -> None:
        while not stop.is_set():
            seen.append(w.status())

    readers = [threading.Thread(target=poll) for _ in range(3)]
    for t in readers:
        t.start()
    w.enqueue(CallStarted("c", T0, "web", "m", "sim"))
    for i in range(200):
        w.enqueue(TurnRecord("c", i, "user", f"i{i}", "x", "completed", i, i + 1, redacted=True))
    await w.flush()
    await asyncio.sleep(0.05)  # let the thread's periodic probe run
    stop.set()
    for t in readers:
        t.join()
    await w.close()
    assert seen and all(s["ready"] for s in seen)
    t0 = time.perf_counter()
    for _ in range(1000):
        w.status()
    assert (time.perf_counter() - t0) / 1000 < 0.001
    assert len(ledger_ids(db_url)) == 201
