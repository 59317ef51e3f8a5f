"""``hybrid-agent db roles [--apply]``: least-privilege PostgreSQL roles for the bridge and the auditor.

Each PostgreSQL test runs against a fresh database ``hybrid_agent_roles_<random>`` (created and
migrated by the ``postgres`` superuser, dropped at the end) with role names of its own, dropped
after the test, so parallel runs do not clash.  Unreachable server: skipped locally, a failure
with ``CI=true`` (as every PostgreSQL test, see conftest.py).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from audit_helpers import cli
from conftest import PG_BASE, require_postgres
from psycopg import errors as pg_errors
from sqlalchemy.engine import make_url

from hybrid_agent.audit.records import (
    CallEnded,
    CallEventRecord,
    CallStarted,
    DisclosureRecord,
    GateActionRecord,
    PolicyDecisionRecord,
    ResponseMetrics,
    ToolCallRecord,
    ToolResultRecord,
    TurnInterrupted,
    TurnRecord,
)
from hybrid_agent.audit.roles import RolePlan, bridge_select_columns, check_privileges, inspect
from hybrid_agent.audit.store import connect, make_engine, upgrade
from hybrid_agent.audit.writer import AuditWriter

T0 = 1_767_225_600.0
RECORD_TABLES = ("calls", "call_endings", "turns", "turn_interruptions", "tool_calls", "tool_results",
                 "policy_decisions", "disclosures", "call_events", "gate_actions", "response_metrics")
VIEWS = ("audit_call_events", "audit_call_summary", "audit_gate_actions", "audit_response_metrics",
         "audit_tool_calls", "audit_turns_heard", "audit_violations")


# ---------------------------------------------------------------------------- fixtures
def _url(database: str, user: str = "postgres", **query: str) -> str:
    base = make_url(PG_BASE.replace("postgresql+psycopg://", "postgresql://"))
    return base.set(drivername="postgresql", username=user, password=None, database=database, query=query).render_as_string(
        hide_password=False)


def _libpq(url: str) -> str:
    return url.split("?", 1)[0]


def _admin(sql: str, database: str | None = None) -> None:
    """Run SQL as the superuser (autocommit), in ``database`` or the base test database."""
    target = _url(database) if database else PG_BASE.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="module")
def pg_db() -> Iterator[str]:
    """A fresh database, ``db upgrade``d by the superuser; yields its name."""
    require_postgres()
    name = f"hybrid_agent_roles_{secrets.token_hex(5)}"
    _admin(f"CREATE DATABASE {name}")
    try:
        upgrade(_url(name))
        yield name
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _drop_role(role: str, database: str) -> None:
    _admin(f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
           f"EXECUTE 'DROP OWNED BY {role}'; EXECUTE 'DROP ROLE {role}'; END IF; END $$", database)


@pytest.fixture
def roles(pg_db: str) -> Iterator[tuple[str, str]]:
    """(bridge, auditor) role names for this test only; dropped afterwards."""
    sfx = secrets.token_hex(4)
    names = (f"ha_bridge_{sfx}", f"ha_auditor_{sfx}")
    try:
        yield names
    finally:
        for role in names:
            _drop_role(role, pg_db)


def role_exists(role: str) -> bool:
    with psycopg.connect(PG_BASE.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def db_roles(capsys: pytest.CaptureFixture[str], url: str, bridge: str, auditor: str, *extra: str) -> tuple[int, str, str]:
    """``hybrid-agent db roles --db URL --bridge-role B --auditor-role A ...`` in-process."""
    return cli(capsys, "db", "roles", "--db", url, "--bridge-role", bridge, "--auditor-role", auditor, *extra)


def apply(capsys: pytest.CaptureFixture[str], db: str, bridge: str, auditor: str) -> str:
    rc, out, err = db_roles(capsys, _url(db), bridge, auditor, "--apply")
    assert rc == 0, err
    return out


def plan_for(db: str, bridge: str, auditor: str, **query: str) -> tuple[RolePlan, list[str]]:
    """The plan and what differs from the intended privileges, read as the superuser."""
    engine = make_engine(_url(db, **query))
    try:
        with connect(engine) as conn:
            plan = inspect(conn, bridge, auditor)
            return plan, check_privileges(conn, plan)
    finally:
        engine.dispose()


def call_records(call_id: str, *, ended: bool = True) -> list[Any]:
    """One call touching every audit table."""
    recs: list[Any] = [
        CallStarted(call_id, T0, "web", "gpt-realtime", "sim", caller_id="+14155550199", policy_pack="banking",
                    policy_version="v1"),
        TurnRecord(call_id, 0, "user", "u0", "what is my balance", "completed", 0.0, 900.0, audio_ms=900.0, redacted=True),
        TurnRecord(call_id, 1, "assistant", "a1", "one moment please", "completed", 1000.0, 2000.0, audio_ms=1000.0,
                   redacted=True),
        TurnInterrupted(call_id, 1, "a1", 500.0, "one moment", 1600.0, redacted=True),
        ToolCallRecord(call_id, "t1", "get_balance", "{}", 1100.0, redacted=True),
        ToolResultRecord(call_id, "t1", '{"balance": 12}', 1150.0, redacted=True),
        PolicyDecisionRecord(call_id, 0, "tool_call", "banking.tool.balance", "allow", "v1", 1120.0, policy_pack="banking"),
        DisclosureRecord(call_id, "recording_notice", "this call is recorded", 10.0, redacted=True),
        CallEventRecord(call_id, 0, 1200.0, "upstream", "invalid_value", event_type="session.update", message="bad",
                        redacted=True),
        GateActionRecord(call_id, 0, 1300.0, "speech_held", mode="hold", item_id="a1", held_ms=120.0),
        ResponseMetrics(call_id, 0, 2000.0, "gpt-realtime", "completed", ttfa_ms=300.0, audio_ms=1000.0, output_audio_tokens=50),
    ]
    if ended:
        recs.append(CallEnded(call_id, 2500.0, "completed"))
    return recs


async def write(url: str, records: list[Any], spool: Path, *, close_interrupted: bool = False) -> tuple[AuditWriter, list[Any]]:
    """Records through a real ``AuditWriter``; nothing may be spooled or quarantined."""
    w = AuditWriter(url, spool_path=spool, pseudonym_key="k", flush_interval_s=0.02, retry_interval_s=0.05)
    await w.start()
    closed: list[Any] = []
    if close_interrupted:
        closed = await w.close_interrupted_calls(sole_writer=True)
    for r in records:
        w.enqueue(r)
    await w.close()
    assert w.stats["spooled"] == 0 and w.stats["db_errors"] == 0, (w.stats, w.last_error)
    assert w.spool.quarantined == 0 and not w.spool.quarantine_path.exists(), w.spool.quarantine_path.read_text()
    return w, closed


def ledger(db: str, call_id: str) -> list[tuple[str, str]]:
    with psycopg.connect(_url(db)) as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            "SELECT table_name, row_id FROM ledger WHERE call_id = %s ORDER BY seq", (call_id,))]


def denied(url: str, sql: str, match: str = "permission denied") -> None:
    """``sql`` run as the role in ``url`` fails on its privileges (not on the append-only trigger)."""
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        with pytest.raises(pg_errors.InsufficientPrivilege, match=match) as exc:
            conn.execute(sql)
    assert "append-only" not in str(exc.value), f"{sql!r} was stopped by the trigger, not by the privileges"


# ---------------------------------------------------------------------------- SQLite
@pytest.mark.parametrize("apply_flag", [(), ("--apply",)])
def test_sqlite_gets_a_clear_error(apply_flag: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.db"
    rc, out, err = cli(capsys, "db", "roles", "--db", f"sqlite:///{path}", *apply_flag)
    assert rc == 2 and out == ""
    assert err.startswith("error: database roles are a PostgreSQL feature") and err.count("\n") == 1, err
    assert not path.exists()  # nothing was opened, let alone created


# ---------------------------------------------------------------------------- printing
@pytest.mark.postgres
def test_printing_changes_nothing(pg_db: str, roles: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    bridge, auditor = roles
    rc, out, err = db_roles(capsys, _url(pg_db), bridge, auditor)
    assert rc == 0, err
    assert f'CREATE ROLE "{bridge}" LOGIN' in out and f'CREATE ROLE "{auditor}" LOGIN' in out
    assert "EXCEPTION WHEN duplicate_object" in out  # created only if missing
    assert 'GRANT INSERT ON TABLE "public"."calls"' in out
    assert f'GRANT SELECT ON TABLE "public"."call_endings", "public"."ledger", "public"."alembic_version" TO "{bridge}"' in out
    assert f'GRANT SELECT ("id", "call_id", "started_ms", "ended_ms") ON TABLE "public"."turns" TO "{bridge}"' in out
    for verb in ("UPDATE", "DELETE", "TRUNCATE", "CREATE", "ALL", "REFERENCES", "TRIGGER"):
        assert f"GRANT {verb}" not in out, verb
    assert "PASSWORD '...'" in out and out.count("PASSWORD") == 2  # how to set one; never a password itself
    assert "RE-RUN IT AFTER EVERY `hybrid-agent db upgrade`" in out
    assert out.splitlines()[-1] == "COMMIT;"
    assert not role_exists(bridge) and not role_exists(auditor)


@pytest.mark.postgres
def test_printed_sql_run_by_hand_gives_the_verified_roles(pg_db: str, roles: tuple[str, str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """What an operator pipes into psql is what ``--apply`` runs."""
    bridge, auditor = roles
    rc, out, err = db_roles(capsys, _url(pg_db), bridge, auditor)
    assert rc == 0, err
    with psycopg.connect(_url(pg_db), autocommit=True) as conn:
        conn.execute(out.encode())  # the whole script, BEGIN ... COMMIT, as psql would send it
    plan, problems = plan_for(pg_db, bridge, auditor)
    assert problems == []
    assert set(plan.views) == set(VIEWS) and plan.sequences == ()


# ---------------------------------------------------------------------------- --apply
@pytest.mark.postgres
def test_apply_twice_is_fine_and_resets_extra_privileges(pg_db: str, roles: tuple[str, str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    bridge, auditor = roles
    out = apply(capsys, pg_db, bridge, auditor)
    assert f"created: {bridge}, {auditor}" in out and "privileges verified" in out
    assert "Re-run `hybrid-agent db roles --apply` after every `hybrid-agent db upgrade`" in out
    assert role_exists(bridge) and role_exists(auditor)
    assert plan_for(pg_db, bridge, auditor)[1] == []
    # someone widened them by hand; the check sees it
    _admin(f"GRANT UPDATE ON calls TO {bridge}; GRANT SELECT ON turns TO {bridge}; GRANT DELETE ON ledger TO {auditor}; "
           f"GRANT CREATE ON SCHEMA public TO {bridge}; GRANT TEMPORARY, CREATE ON DATABASE {pg_db} TO {auditor}", pg_db)
    problems = plan_for(pg_db, bridge, auditor)[1]
    assert any("UPDATE on calls" in p for p in problems) and any("DELETE on ledger" in p for p in problems), problems
    assert any("CREATE in schema" in p for p in problems) and any("CREATE schemas" in p for p in problems), problems
    out = apply(capsys, pg_db, bridge, auditor)
    assert "both existed" in out
    assert plan_for(pg_db, bridge, auditor)[1] == []


@pytest.mark.postgres
def test_apply_needs_a_role_that_can_create_roles(pg_db: str, roles: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    bridge, auditor = roles
    apply(capsys, pg_db, bridge, auditor)
    other = (f"{bridge}_x", f"{auditor}_x")
    try:
        rc, out, err = db_roles(capsys, _url(pg_db, user=auditor), other[0], other[1], "--apply")
        assert rc == 2 and out == ""
        assert f"'{auditor}' cannot create roles (needs SUPERUSER or CREATEROLE)" in err and err.count("\n") == 1, err
        assert not role_exists(other[0]) and not role_exists(other[1])
    finally:
        for role in other:
            _drop_role(role, pg_db)


@pytest.mark.postgres
@pytest.mark.parametrize("names, message", [
    (("postgres", None), "exists with SUPERUSER"),
    (("same", "same"), "two different roles"),
    (("Robert'); DROP TABLE calls; --", None), "invalid bridge role name"),
    (("pg_signal_backend", None), "invalid bridge role name"),
])
def test_refuses_role_names_that_would_not_be_least_privilege(pg_db: str, roles: tuple[str, str], names: tuple[str, str | None],
                                                             message: str, capsys: pytest.CaptureFixture[str]) -> None:
    bridge = names[0] if names[0] != "same" else roles[0]
    auditor = names[1] if names[1] != "same" else roles[0]
    rc, out, err = db_roles(capsys, _url(pg_db), bridge, auditor or roles[1], "--apply")
    assert rc == 2 and message in err and err.count("\n") == 1, err
    assert not role_exists(roles[0]) and not role_exists(roles[1])
    with psycopg.connect(_url(pg_db)) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'").fetchone() == (True,)


@pytest.mark.postgres
def test_a_view_re_created_by_a_migration_needs_a_re_run(pg_db: str, roles: tuple[str, str],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """No default privileges: what the output says ("re-run after every db upgrade") is true."""
    bridge, auditor = roles
    apply(capsys, pg_db, bridge, auditor)
    auditor_url = _url(pg_db, user=auditor)
    with psycopg.connect(_libpq(auditor_url)) as conn:
        conn.execute("SELECT count(*) FROM audit_call_summary").fetchone()
    # what 0002 and 0003 do: DROP VIEW + CREATE VIEW
    _admin("DO $$ DECLARE d text := pg_get_viewdef('audit_call_summary'::regclass); BEGIN "
           "EXECUTE 'DROP VIEW audit_call_summary'; EXECUTE 'CREATE VIEW audit_call_summary AS ' || d; END $$", pg_db)
    denied(auditor_url, "SELECT count(*) FROM audit_call_summary")
    assert any("audit_call_summary" in p for p in plan_for(pg_db, bridge, auditor)[1])
    apply(capsys, pg_db, bridge, auditor)
    with psycopg.connect(_libpq(auditor_url)) as conn:
        conn.execute("SELECT count(*) FROM audit_call_summary").fetchone()


# ---------------------------------------------------------------------------- the bridge role
@pytest.mark.postgres
async def test_bridge_role_writes_calls_and_can_do_nothing_else(pg_db: str, roles: tuple[str, str], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    bridge, auditor = roles
    apply(capsys, pg_db, bridge, auditor)
    url = _url(pg_db, user=bridge)
    cid = f"call-{bridge}"

    # a whole call, every table: inserts, the chain head, the schema check
    await write(url, call_records(cid), tmp_path / "1.spool")
    rows = ledger(pg_db, cid)
    assert {t for t, _ in rows} == set(RECORD_TABLES) and len(rows) == 12

    # a record stored already (a replay): the batch meets the primary key and the writer looks up stored ids
    replay = [CallStarted(cid, T0, "web", "gpt-realtime", "sim"),
              TurnRecord(cid, 2, "user", "u2", "thanks", "completed", 3000.0, 3500.0, redacted=True)]
    await write(url, replay, tmp_path / "2.spool")
    assert ledger(pg_db, cid)[12:] == [("turns", f"{cid}/turn/2")] and len(ledger(pg_db, cid)) == 13

    # a call a crash left open: the next writer closes it (what close_interrupted_calls reads and writes)
    open_id = f"open-{bridge}"
    await write(url, call_records(open_id, ended=False), tmp_path / "3.spool")
    _, closed = await write(url, [], tmp_path / "4.spool", close_interrupted=True)
    # (every open call in the database: another test's may be among them)
    assert [(r.at_ms, r.outcome) for r in closed if r.call_id == open_id] == [(2000.0, "interrupted")], closed
    assert ledger(pg_db, open_id)[-1] == ("call_endings", f"{open_id}/end")

    rc, out, err = cli(capsys, "audit", "verify", "--db", _url(pg_db))
    assert rc == 0 and out.startswith("ok: "), out + err

    # nothing else: no UPDATE, DELETE, TRUNCATE; no reading what it does not need; no DDL
    for sql in (f"UPDATE calls SET model = 'x' WHERE id = '{cid}'", "UPDATE ledger SET written_at = 0",
                f"DELETE FROM turns WHERE call_id = '{cid}'", "DELETE FROM ledger",
                "TRUNCATE turns", "TRUNCATE ledger",
                "SELECT text FROM turns", "SELECT * FROM calls", "SELECT * FROM audit_call_summary"):
        denied(url, sql)
    for sql in ("CREATE TABLE x (i int)", "CREATE TABLE public.x (i int)", "CREATE VIEW v AS SELECT 1", "CREATE SCHEMA s"):
        denied(url, sql)
    for sql in ("ALTER TABLE calls ADD COLUMN x int", "DROP TABLE turns", "DROP VIEW audit_call_summary",
                "ALTER TABLE ledger DISABLE TRIGGER ledger_append_only", "DROP TRIGGER ledger_append_only ON ledger",
                "UPDATE alembic_version SET version_num = '0001'", "DELETE FROM alembic_version"):
        denied(url, sql, match="permission denied|must be owner")
    with psycopg.connect(_url(pg_db)) as conn:
        assert conn.execute("SELECT count(*) FROM ledger WHERE call_id = %s", (cid,)).fetchone() == (13,)


@pytest.mark.postgres
def test_bridge_reads_only_the_columns_the_writer_needs(pg_db: str, roles: tuple[str, str],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    bridge, auditor = roles
    apply(capsys, pg_db, bridge, auditor)
    cols = bridge_select_columns()
    assert cols["calls"] == ("id", "started_at") and cols["turns"] == ("id", "call_id", "started_ms", "ended_ms")
    assert cols["ledger"] == ("seq", "table_name", "row_id", "call_id", "record_hash", "prev_hash", "hash", "written_at")
    assert "text" not in cols["turns"] and "output" not in cols["tool_results"] and "arguments" not in cols["tool_calls"]
    with psycopg.connect(_url(pg_db, user=bridge)) as conn:
        conn.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchall()
        conn.execute("SELECT version_num FROM alembic_version").fetchall()
        for table, columns in cols.items():
            conn.execute(f"SELECT {', '.join(columns)} FROM {table} LIMIT 1").fetchall()
    denied(_url(pg_db, user=bridge), "SELECT caller_pseudonym FROM calls")
    denied(_url(pg_db, user=bridge), "SELECT heard_text FROM turn_interruptions")


# ---------------------------------------------------------------------------- the auditor role
@pytest.mark.postgres
async def test_auditor_role_runs_the_compliance_cli_and_cannot_write(pg_db: str, roles: tuple[str, str], tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bridge, auditor = roles
    apply(capsys, pg_db, bridge, auditor)
    cid, open_id = f"call-{auditor}", f"open-{auditor}"
    await write(_url(pg_db, user=bridge), [*call_records(cid), *call_records(open_id, ended=False)], tmp_path / "w.spool")
    url = _url(pg_db, user=auditor)

    rc, out, err = cli(capsys, "audit", "calls", "--json", "--limit", "1000", "--db", url)
    assert rc == 0, err
    assert cid in {c["call_id"] for c in json.loads(out)}
    rc, out, err = cli(capsys, "audit", "verify", "--db", url)
    assert rc == 0 and out.startswith("ok: "), out + err
    rc, out, err = cli(capsys, "audit", "verify", "--json", "--db", url)
    assert rc == 0 and json.loads(out)["ok"] is True, err
    rc, out, err = cli(capsys, "audit", "show", cid, "--json", "--db", url)
    assert rc == 0 and json.loads(out)["ended"]["outcome"] == "completed", err
    rc, out, err = cli(capsys, "audit", "search", "balance", "--json", "--db", url)
    assert rc == 0 and cid in {r["call_id"] for r in json.loads(out)}, err
    for argv in (("violations", "--json"), ("gate", "--json"), ("cost", "--json"), ("export",)):
        rc, out, err = cli(capsys, "audit", *argv, "--db", url)
        assert rc == 0 and out, (argv, err)
    with psycopg.connect(_libpq(url)) as conn:
        for view in VIEWS:
            conn.execute(f"SELECT * FROM {view} LIMIT 1").fetchall()

    # it cannot record anything, not even through the CLI
    rc, out, err = cli(capsys, "audit", "close-interrupted", "--older-than", "0", "--db", url)
    assert rc == 2 and "permission denied for table call_endings" in err, err
    for sql in (f"INSERT INTO calls (id, started_at, channel, model, upstream) VALUES ('forged-{auditor}', 0, 'web', 'm', 'sim')",
                "INSERT INTO ledger SELECT seq + 1000000, table_name, row_id, call_id, record_hash, prev_hash, hash, written_at "
                "FROM ledger",
                f"UPDATE calls SET model = 'x' WHERE id = '{cid}'", "UPDATE ledger SET written_at = 0",
                f"DELETE FROM calls WHERE id = '{cid}'", "DELETE FROM ledger",
                "TRUNCATE calls", "TRUNCATE ledger",
                "UPDATE alembic_version SET version_num = '0001'",
                "CREATE TABLE x (i int)", "CREATE SCHEMA s"):
        denied(url, sql)
    rc, out, err = cli(capsys, "audit", "verify", "--db", url)
    assert rc == 0, out + err
    assert ledger(pg_db, open_id)[-1][0] != "call_endings"


# ---------------------------------------------------------------------------- a schema of its own
@pytest.mark.postgres
async def test_audit_schema_off_the_default_search_path(pg_db: str, roles: tuple[str, str], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Tables in schema ``audit_<x>``: the roles get it as their search_path, so their URLs need no options."""
    bridge, auditor = roles
    schema = f"audit_{bridge}"
    _admin(f"CREATE SCHEMA {schema}", pg_db)
    opts = {"options": f"-csearch_path={schema}"}
    upgrade(_url(pg_db, **opts))
    rc, out, err = db_roles(capsys, _url(pg_db, **opts), bridge, auditor, "--apply")
    assert rc == 0 and f"schema '{schema}'" in out, err
    plan, problems = plan_for(pg_db, bridge, auditor, **opts)
    assert plan.schema == schema and problems == []
    cid = f"call-{schema}"
    await write(_url(pg_db, user=bridge), call_records(cid), tmp_path / "s.spool")
    rc, out, err = cli(capsys, "audit", "calls", "--json", "--db", _url(pg_db, user=auditor))
    assert rc == 0 and [c["call_id"] for c in json.loads(out)] == [cid], err
    with psycopg.connect(_url(pg_db)) as conn:  # the public schema's tables did not get it
        assert conn.execute("SELECT count(*) FROM public.calls WHERE id = %s", (cid,)).fetchone() == (0,)
    denied(_url(pg_db, user=bridge), f"DELETE FROM {schema}.ledger")


# ---------------------------------------------------------------------------- when --apply cannot make it so
@pytest.mark.postgres
def test_apply_by_a_createrole_user_who_does_not_own_the_tables_changes_nothing(
        pg_db: str, roles: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    bridge, auditor = roles
    admin = f"{bridge}_admin"
    _admin(f"CREATE ROLE {admin} LOGIN CREATEROLE", pg_db)
    try:
        rc, out, err = db_roles(capsys, _url(pg_db, user=admin), bridge, auditor, "--apply")
        assert rc == 2 and out == "" and err.count("\n") == 1, err
        assert f"'{admin}' cannot read alembic_version: run db roles as the audit tables' owner or a superuser" in err, err
        # it can read them, but still does not own them (it could not GRANT)
        _admin(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {admin}", pg_db)
        rc, out, err = db_roles(capsys, _url(pg_db, user=admin), bridge, auditor, "--apply")
        assert rc == 2 and out == "" and err.count("\n") == 1, err
        assert f"'{admin}' does not own the audit tables (owner: postgres)" in err, err
        assert not role_exists(bridge) and not role_exists(auditor)  # one transaction: rolled back
    finally:
        _drop_role(admin, pg_db)


@pytest.mark.postgres
def test_apply_refuses_what_it_cannot_revoke(pg_db: str, roles: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """A privilege granted to PUBLIC is every role's: the check after the grants sees it, and nothing is committed."""
    bridge, auditor = roles
    _admin("GRANT UPDATE ON turns TO PUBLIC", pg_db)
    try:
        rc, out, err = db_roles(capsys, _url(pg_db), bridge, auditor, "--apply")
        assert rc == 2 and "did not end up as intended (nothing changed)" in err and "UPDATE on turns is not expected" in err, err
        assert not role_exists(bridge) and not role_exists(auditor)
    finally:
        _admin("REVOKE UPDATE ON turns FROM PUBLIC", pg_db)
    apply(capsys, pg_db, bridge, auditor)


@pytest.mark.postgres
def test_public_create_on_the_schema_is_revoked(pg_db: str, roles: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """PostgreSQL < 15 lets PUBLIC create in schema public: every role could, so the script revokes it."""
    bridge, auditor = roles
    _admin("GRANT CREATE ON SCHEMA public TO PUBLIC", pg_db)
    try:
        rc, out, err = db_roles(capsys, _url(pg_db), bridge, auditor)
        assert rc == 0 and 'REVOKE CREATE ON SCHEMA "public" FROM PUBLIC;' in out, err
        apply(capsys, pg_db, bridge, auditor)
        assert plan_for(pg_db, bridge, auditor)[1] == []
        denied(_url(pg_db, user=bridge), "CREATE TABLE x (i int)")
    finally:
        _admin("REVOKE CREATE ON SCHEMA public FROM PUBLIC", pg_db)
    rc, out, err = db_roles(capsys, _url(pg_db), bridge, auditor)
    assert rc == 0 and "FROM PUBLIC" not in out, err
