"""``hybrid-agent db roles``: least-privilege PostgreSQL roles for the bridge and the auditor.

Two login roles, no passwords (the operator sets those, never on a command line):

- the **bridge** role (``HYBRID_AGENT_DATABASE_URL`` of ``serve``): CONNECT, USAGE on the schema,
  INSERT on every audit table, and SELECT only on the columns the writer reads (see
  :func:`bridge_select_columns`; all of ``call_endings`` and ``ledger``, which hold no call
  content), plus ``alembic_version`` for the schema check.  No UPDATE,
  DELETE, TRUNCATE, REFERENCES, TRIGGER, no CREATE: it cannot run migrations.
- the **auditor** role (the compliance CLI, BI tools): SELECT on the audit tables, the views
  over them and ``alembic_version``; nothing else.

The script is idempotent and converges: roles are created if missing, every privilege either
role holds on the audit objects is revoked and the intended set granted, in one transaction.
No default privileges are set (they cannot express column grants, and would only cover objects
created by one named owner): grants are per table and view, so ``db roles --apply`` must be
re-run after every ``db upgrade`` (a new table, or a view a migration re-creates, has none).
``--apply`` verifies the result against the catalog before it commits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from hybrid_agent.audit.models import AUDIT_TABLE_NAMES, LEDGER, TABLES
from hybrid_agent.audit.store import (
    _LAST_MS_COLUMNS,
    AuditStoreError,
    check_schema,
    connect,
    display_url,
    make_engine,
    to_url,
)

BRIDGE_ROLE = "hybrid_agent_bridge"
AUDITOR_ROLE = "hybrid_agent_auditor"
VERSION_TABLE = "alembic_version"
ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"

#: tables the bridge may read whole (``SELECT *`` in ``close_interrupted_calls``); they hold ids,
#: outcomes, offsets and hashes, no call content
BRIDGE_SELECT_TABLES = ("call_endings", LEDGER.name)

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


class RolesError(AuditStoreError):
    """``db roles`` cannot do what was asked (one line, exit 2)."""


class NotPostgres(RolesError):
    """Roles are a PostgreSQL feature."""


def bridge_select_columns() -> dict[str, tuple[str, ...]]:
    """The columns the bridge's writer reads, per audit table (model column order).

    - every record table's ``id``: :func:`~hybrid_agent.audit.store.append_rows` looks up stored
      ids when a batch meets one (``write_batch``'s replay path, spool replay);
    - ``ledger.seq, hash``: the chain head (:func:`~hybrid_agent.audit.store.chain_head`);
    - :func:`~hybrid_agent.audit.store.close_interrupted_calls`: ``calls.id, started_at``,
      ``call_endings.call_id``, ``ledger.call_id, written_at`` and ``call_id`` plus the
      ``*_ms`` column of each table in ``_LAST_MS_COLUMNS``.  It asks ``EXISTS (SELECT * FROM
      call_endings ...)`` and ``EXISTS (SELECT * FROM ledger ...)``, which PostgreSQL checks against
      every column, so those two tables are readable whole (:data:`BRIDGE_SELECT_TABLES`).
    """
    all_tables = {**TABLES, LEDGER.name: LEDGER}
    cols: dict[str, set[str]] = {name: {"id"} for name in TABLES}
    cols[LEDGER.name] = {"seq", "hash", "call_id", "written_at"}
    cols["calls"] |= {"started_at"}
    cols["call_endings"] |= {"call_id"}
    for table, col in _LAST_MS_COLUMNS:
        cols[table] |= {"call_id", col}
    for name in BRIDGE_SELECT_TABLES:
        cols[name] = {c.name for c in all_tables[name].columns}
    return {name: tuple(c.name for c in all_tables[name].columns if c.name in cols[name]) for name in AUDIT_TABLE_NAMES}


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def check_role_name(name: str, what: str) -> str:
    if not _ROLE_NAME.match(name) or name.startswith("pg_") or name in ("public", "none", "current_user", "current_role", "session_user"):
        raise RolesError(f"invalid {what} role name {name!r}: use lower-case letters, digits and _ (not pg_..., at most 63)")
    return name


# ---------------------------------------------------------------------------- what is in the database
@dataclass(frozen=True)
class RolePlan:
    """The roles and the audit objects of one database, as found by :func:`inspect`."""

    database: str
    schema: str
    bridge: str
    auditor: str
    current_user: str
    tables: tuple[str, ...] = AUDIT_TABLE_NAMES
    views: tuple[str, ...] = ()
    sequences: tuple[str, ...] = ()  # owned by audit tables (none today: ledger.seq is computed)
    existing: tuple[str, ...] = ()  # which of the two roles exist already
    owners: tuple[str, ...] = ()  # of the audit tables, views and alembic_version
    public_can_create: bool = False  # PUBLIC may CREATE in the schema (the PostgreSQL < 15 default on public)
    select_columns: dict[str, tuple[str, ...]] = field(default_factory=bridge_select_columns)

    def _q(self, name: str) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(name)}"

    def statements(self) -> list[str]:
        """The SQL, one statement each, to run in one transaction."""
        db, schema = quote_ident(self.database), quote_ident(self.schema)
        tables = [self._q(t) for t in self.tables]
        relations = ", ".join([*tables, self._q(VERSION_TABLE), *(self._q(v) for v in self.views)])
        out: list[str] = []
        for role in (self.bridge, self.auditor):
            r = quote_ident(role)
            out.append(
                "DO $$\nBEGIN\n"
                f"    CREATE ROLE {r} {ROLE_ATTRIBUTES};\n"
                "EXCEPTION WHEN duplicate_object THEN\n"
                f"    ALTER ROLE {r} LOGIN;\n"
                "END\n$$"
            )
        if self.public_can_create:
            out.append(f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC")
        for role in (self.bridge, self.auditor):
            r = quote_ident(role)
            out.append(f"REVOKE ALL ON DATABASE {db} FROM {r}")
            out.append(f"GRANT CONNECT ON DATABASE {db} TO {r}")
            out.append(f"REVOKE ALL ON SCHEMA {schema} FROM {r}")
            out.append(f"GRANT USAGE ON SCHEMA {schema} TO {r}")
            out.append(f"REVOKE ALL ON TABLE {relations} FROM {r}")
            if self.sequences:
                out.append(f"REVOKE ALL ON SEQUENCE {', '.join(self._q(s) for s in self.sequences)} FROM {r}")
            if self.schema != "public":
                out.append(f"ALTER ROLE {r} IN DATABASE {db} SET search_path = {schema}")
        b = quote_ident(self.bridge)
        out.append(f"GRANT INSERT ON TABLE {', '.join(tables)} TO {b}")
        for t in self.tables:
            if t not in BRIDGE_SELECT_TABLES:
                columns = ", ".join(quote_ident(c) for c in self.select_columns[t])
                out.append(f"GRANT SELECT ({columns}) ON TABLE {self._q(t)} TO {b}")
        whole = [self._q(t) for t in self.tables if t in BRIDGE_SELECT_TABLES]
        out.append(f"GRANT SELECT ON TABLE {', '.join([*whole, self._q(VERSION_TABLE)])} TO {b}")
        if self.sequences:
            out.append(f"GRANT USAGE ON SEQUENCE {', '.join(self._q(s) for s in self.sequences)} TO {b}")
        out.append(f"GRANT SELECT ON TABLE {relations} TO {quote_ident(self.auditor)}")
        return out

    def script(self) -> str:
        """The statements as a psql script, with what the operator has to know as comments."""
        b, a = self.bridge, self.auditor
        head = [
            f"-- hybrid-agent db roles: least-privilege roles for the audit database {self.database!r}, schema {self.schema!r}",
            f"-- {b}: the bridge (serve). CONNECT, USAGE on the schema, INSERT on the {len(self.tables)} audit tables,",
            "--   SELECT only on the columns the audit writer reads (all of call_endings and ledger: ids, outcomes, hashes)",
            "--   and on alembic_version (the schema check)"
            + (", USAGE on the audit sequences." if self.sequences else "; it needs no sequence (ledger.seq is computed)."),
            "--   No UPDATE, DELETE, TRUNCATE, no CREATE: it cannot run migrations (db upgrade stays with the owner).",
            f"-- {a}: the compliance CLI and BI tools. SELECT on the audit tables, alembic_version and the views"
            + (f" ({', '.join(self.views)})" if self.views else "") + "; nothing else.",
            "-- Idempotent: roles are created if missing; what either role held on these objects is revoked, then granted anew.",
            "-- Run it as a superuser, or as the owner of the audit tables with CREATEROLE:",
            "--   hybrid-agent db roles --db URL --apply      (also verifies the privileges)",
            "--   or: hybrid-agent db roles --db URL | psql URL -v ON_ERROR_STOP=1",
            "-- RE-RUN IT AFTER EVERY `hybrid-agent db upgrade`: no default privileges are set, so a table a migration",
            "--   adds (or a view it re-creates) has no grants until you do.",
            "-- Neither role gets a password here. Set one yourself (psql's \\password sends it hashed):",
            f"--   \\password {b}        or: ALTER ROLE {b} PASSWORD '...';",
            f"--   \\password {a}        or: ALTER ROLE {a} PASSWORD '...';",
        ]
        if self.public_can_create:
            head.append(f"-- PUBLIC may create objects in schema {self.schema!r} (PostgreSQL < 15 default): revoked below.")
        return "\n".join([*head, "BEGIN;", *(s + ";" for s in self.statements()), "COMMIT;"]) + "\n"


def _scalar(conn: Connection, sql: str, **params: Any) -> Any:
    return conn.execute(text(sql), params).scalar()


def inspect(conn: Connection, bridge: str = BRIDGE_ROLE, auditor: str = AUDITOR_ROLE) -> RolePlan:
    """Find the audit schema and objects; refuse role names that would not end up least-privileged."""
    check_role_name(bridge, "bridge")
    check_role_name(auditor, "auditor")
    if bridge == auditor:
        raise RolesError(f"the bridge and the auditor need two different roles (both are {bridge!r})")
    database, user = conn.execute(text("SELECT current_database(), current_user")).one()
    found = {
        name: conn.execute(text(
            "SELECT n.nspname, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = to_regclass(:name)"), {"name": quote_ident(name)}).one_or_none()
        for name in (*AUDIT_TABLE_NAMES, VERSION_TABLE)
    }
    missing = [n for n, row in found.items() if row is None]
    version = found[VERSION_TABLE]
    if version is not None and not _scalar(conn, "SELECT has_table_privilege(CAST(:t AS oid), 'SELECT')", t=version[1]):
        # (check_schema would take "permission denied" for "no schema yet")
        raise RolesError(f"{user!r} cannot read {VERSION_TABLE}: run db roles as the audit tables' owner or a superuser")
    check_schema(conn)  # a missing or older schema: "run hybrid-agent db upgrade"
    if missing:
        raise RolesError(f"audit tables not found on the search path: {', '.join(missing)} (run hybrid-agent db upgrade)")
    schemas = {row[0] for row in found.values()}
    if len(schemas) != 1:
        raise RolesError(f"the audit tables are spread over several schemas ({', '.join(sorted(schemas))}): expected one")
    schema = schemas.pop()
    oids = [row[1] for row in found.values()]
    views = tuple(conn.execute(text(
        "SELECT DISTINCT v.relname FROM pg_class v JOIN pg_rewrite r ON r.ev_class = v.oid "
        "JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass "
        "WHERE v.relkind IN ('v', 'm') AND v.relnamespace = to_regnamespace(:schema) AND d.refobjid = ANY(:oids) "
        "ORDER BY 1"), {"schema": quote_ident(schema), "oids": oids}).scalars())
    sequences = tuple(conn.execute(text(
        "SELECT DISTINCT s.relname FROM pg_class s JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid "
        "AND d.refclassid = 'pg_class'::regclass WHERE s.relkind = 'S' AND d.refobjid = ANY(:oids) AND d.deptype IN ('a', 'i') "
        "ORDER BY 1"), {"oids": oids}).scalars())
    existing = []
    for role in (bridge, auditor):
        row = conn.execute(text(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
            "(SELECT string_agg(g.rolname, ', ' ORDER BY g.rolname) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            " WHERE m.member = r.oid) FROM pg_roles r WHERE rolname = :r"), {"r": role}).one_or_none()
        if row is None:
            continue
        existing.append(role)
        powers = [p for p, on in zip(("SUPERUSER", "CREATEROLE", "CREATEDB", "REPLICATION", "BYPASSRLS"), row[:5]) if on]
        if powers:
            raise RolesError(f"role {role!r} exists with {', '.join(powers)}: not a least-privilege role; use another name "
                             f"or ALTER ROLE {role} NO{' NO'.join(powers)}")
        if row[5]:
            raise RolesError(f"role {role!r} is a member of {row[5]}, whose privileges it would have too; "
                             f"use another name or REVOKE {row[5]} FROM {role}")
        owned = _scalar(conn, "SELECT string_agg(c.relname, ', ') FROM pg_class c WHERE c.oid = ANY(:oids) "
                              "AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = :r)", oids=oids, r=role)
        if owned:
            raise RolesError(f"role {role!r} owns audit tables ({owned}): owners can disable the guard; use another name")
        if role == user:
            raise RolesError(f"{role!r} is the role running db roles (its privileges would be revoked): use another name")
    owners = tuple(conn.execute(text(
        "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.oid = ANY(:oids) "
        "OR (c.relnamespace = to_regnamespace(:s) AND c.relname = ANY(:views)) ORDER BY 1"),
        {"oids": oids, "s": quote_ident(schema), "views": list(views)}).scalars())
    public_create = bool(_scalar(conn, "SELECT has_schema_privilege('public', to_regnamespace(:s), 'CREATE')",
                                 s=quote_ident(schema)))
    return RolePlan(database=database, schema=schema, bridge=bridge, auditor=auditor, current_user=user, views=views,
                    sequences=sequences, existing=tuple(existing), owners=owners, public_can_create=public_create)


# ---------------------------------------------------------------------------- checking the result
def check_privileges(conn: Connection, plan: RolePlan) -> list[str]:
    """What differs from the intended privileges (effective ones: via PUBLIC and memberships too); [] if none."""
    problems: list[str] = []

    def has(fn: str, role: str, *args: str) -> bool:
        placeholders = ", ".join(f":a{i}" for i in range(len(args)))
        params = {f"a{i}": a for i, a in enumerate(args)}
        return bool(_scalar(conn, f"SELECT {fn}(:role, {placeholders})", role=role, **params))

    def expect(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    for role in (plan.bridge, plan.auditor):
        row = conn.execute(text(
            "SELECT rolcanlogin, rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls "
            "FROM pg_roles WHERE rolname = :r"), {"r": role}).one_or_none()
        if row is None:
            problems.append(f"role {role} does not exist")
            continue
        expect(row[0] and not row[1], f"{role}: must be a plain LOGIN role")
        expect(has("has_database_privilege", role, plan.database, "CONNECT"), f"{role}: no CONNECT on the database")
        expect(not has("has_database_privilege", role, plan.database, "CREATE"), f"{role}: may CREATE schemas in the database")
        schema = plan.schema  # a name here, not an identifier
        expect(has("has_schema_privilege", role, schema, "USAGE"), f"{role}: no USAGE on schema {plan.schema}")
        expect(not has("has_schema_privilege", role, schema, "CREATE"), f"{role}: may CREATE in schema {plan.schema}")

    def relation(name: str, role: str, table_level: set[str], columns: Sequence[str] = ()) -> None:
        q = plan._q(name)
        for priv in _TABLE_PRIVILEGES:
            want = priv in table_level
            wrong = f"{role}: {priv} on {name} is {'missing' if want else 'not expected'}"
            if priv in ("SELECT", "INSERT", "UPDATE", "REFERENCES"):
                got_any = has("has_any_column_privilege", role, q, priv)
                got_table = has("has_table_privilege", role, q, priv)
                if priv == "SELECT" and columns and not want:
                    expect(not got_table, f"{role}: SELECT on all of {name} (only columns {', '.join(columns)} expected)")
                    for col in _columns(conn, q):
                        expect(has("has_column_privilege", role, q, col, "SELECT") == (col in columns),
                               f"{role}: SELECT on {name}.{col} is {'missing' if col in columns else 'not expected'}")
                    continue
                expect(got_table == want and got_any == want, wrong)
            else:
                expect(has("has_table_privilege", role, q, priv) == want, wrong)

    for t in plan.tables:
        if t in BRIDGE_SELECT_TABLES:
            relation(t, plan.bridge, {"INSERT", "SELECT"})
        else:
            relation(t, plan.bridge, {"INSERT"}, plan.select_columns[t])
        relation(t, plan.auditor, {"SELECT"})
    relation(VERSION_TABLE, plan.bridge, {"SELECT"})
    relation(VERSION_TABLE, plan.auditor, {"SELECT"})
    for v in plan.views:
        relation(v, plan.bridge, set())
        relation(v, plan.auditor, {"SELECT"})
    for s in plan.sequences:
        q = plan._q(s)
        expect(has("has_sequence_privilege", plan.bridge, q, "USAGE"), f"{plan.bridge}: no USAGE on sequence {s}")
        for role in (plan.bridge, plan.auditor):
            expect(not has("has_sequence_privilege", role, q, "UPDATE"), f"{role}: UPDATE (setval) on sequence {s}")
    return problems


def _columns(conn: Connection, qualified: str) -> list[str]:
    return list(conn.execute(text("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(:t) AND attnum > 0 "
                                  "AND NOT attisdropped ORDER BY attnum"), {"t": qualified}).scalars())


# ---------------------------------------------------------------------------- the command
def _postgres_url(database_url: str) -> Any:
    url = to_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise NotPostgres(f"database roles are a PostgreSQL feature; {display_url(url)} is {url.get_backend_name()} "
                          "(protect a SQLite file with file permissions instead)")
    return url


def roles_script(database_url: str, bridge: str = BRIDGE_ROLE, auditor: str = AUDITOR_ROLE) -> str:
    """The SQL for the two roles (reads the catalog, changes nothing)."""
    engine = make_engine(_postgres_url(database_url))
    try:
        with connect(engine) as conn:
            return inspect(conn, bridge, auditor).script()
    finally:
        engine.dispose()


def apply_roles(database_url: str, bridge: str = BRIDGE_ROLE, auditor: str = AUDITOR_ROLE) -> str:
    """Create/update the roles in one transaction, verify them, commit; returns a summary for the operator."""
    engine = make_engine(_postgres_url(database_url))
    try:
        with connect(engine) as conn:
            with conn.begin():
                plan = inspect(conn, bridge, auditor)
                can = conn.execute(text("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")).one()
                if not (can[0] or can[1]):
                    raise RolesError(f"{plan.current_user!r} cannot create roles (needs SUPERUSER or CREATEROLE): run "
                                     "db roles --apply as a superuser or the audit tables' owner with CREATEROLE, "
                                     "or print the SQL (without --apply) for your DBA")
                if not can[0] and plan.owners != (plan.current_user,):
                    raise RolesError(f"{plan.current_user!r} does not own the audit tables (owner: "
                                     f"{', '.join(plan.owners)}), so it cannot grant on them: run db roles --apply "
                                     "as their owner with CREATEROLE, or as a superuser")
                try:
                    for stmt in plan.statements():
                        conn.execution_options(no_parameters=True).exec_driver_sql(stmt)
                except DBAPIError as exc:
                    orig = getattr(exc, "orig", None) or exc
                    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
                    raise RolesError(f"cannot set up the roles as {plan.current_user!r}: {first} "
                                     "(run as a superuser, or as the audit tables' owner with CREATEROLE)") from None
                problems = check_privileges(conn, plan)
                if problems:  # e.g. a GRANT that only warned: roll everything back
                    raise RolesError(f"the roles did not end up as intended (nothing changed): {problems[0]}"
                                     + (f"; and {len(problems) - 1} more" if len(problems) > 1 else ""))
    finally:
        engine.dispose()
    created = [r for r in (bridge, auditor) if r not in plan.existing]
    return "\n".join([
        f"roles set up in database {plan.database!r}, schema {plan.schema!r}, as {plan.current_user!r}"
        + (f" (created: {', '.join(created)})" if created else " (both existed: privileges reset)")
        + "; privileges verified:",
        f"  {bridge}: INSERT on {len(plan.tables)} audit tables, SELECT only on the columns the writer reads and on "
        f"{VERSION_TABLE}; no UPDATE, DELETE, TRUNCATE or CREATE",
        f"  {auditor}: SELECT on {len(plan.tables)} audit tables, {len(plan.views)} views and {VERSION_TABLE}; nothing else",
        "Neither role has a password. Set one as a superuser or CREATEROLE role (psql's \\password sends it hashed):",
        f"  \\password {bridge}    or: ALTER ROLE {bridge} PASSWORD '...';",
        f"  \\password {auditor}    or: ALTER ROLE {auditor} PASSWORD '...';",
        "Re-run `hybrid-agent db roles --apply` after every `hybrid-agent db upgrade`: "
        "new tables and re-created views get no grants until then.",
    ]) + "\n"
