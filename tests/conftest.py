"""Shared fixtures: databases (every audit test runs on SQLite and on PostgreSQL) and the PII analyzer.

PostgreSQL: ``HYBRID_AGENT_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
Each test gets a fresh schema ``audit_test_<random>`` (selected with ``search_path``
in the URL) that is dropped afterwards, so parallel runs and other suites are not
disturbed.  Unreachable server: the PostgreSQL tests skip, except with ``CI=true``,
where they fail.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BASE = os.environ.get("HYBRID_AGENT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
_pg_error: list[str] = []


def _pg_check() -> str | None:
    """None if PostgreSQL answers, else the reason (cached for the session)."""
    if not _pg_error:
        import psycopg

        try:
            psycopg.connect(PG_BASE.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3).close()
            _pg_error.append("")
        except Exception as exc:  # noqa: BLE001
            _pg_error.append(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    return _pg_error[0] or None


def require_postgres() -> None:
    reason = _pg_check()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL at {PG_BASE} is unreachable and CI=true: {reason}")
    pytest.skip(f"PostgreSQL unreachable ({reason}); set CI=true to make this a failure")


def _admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_BASE.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(sql)


def pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_BASE else "?"
    return f"{PG_BASE}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hybrid_agent.audit.store import upgrade

    path = tmp_path_factory.mktemp("audit-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _fresh_pg(upgraded: bool) -> Iterator[str]:
    require_postgres()
    schema = f"audit_test_{secrets.token_hex(6)}"
    _admin_execute(f"CREATE SCHEMA {schema}")
    url = pg_schema_url(schema)
    try:
        if upgraded:
            from hybrid_agent.audit.store import upgrade

            upgrade(url)
        yield url
    finally:
        _admin_execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path) -> Iterator[str]:
    """An upgraded, empty audit database (SQLite file or a fresh PostgreSQL schema)."""
    if request.param == "sqlite":
        path = tmp_path / "audit.db"
        shutil.copyfile(_sqlite_template, path)
        yield f"sqlite:///{path}"
    else:
        yield from _fresh_pg(upgraded=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A reachable database with no audit schema."""
    if request.param == "sqlite":
        path = tmp_path / "empty.db"
        path.touch()
        yield f"sqlite:///{path}"
    else:
        yield from _fresh_pg(upgraded=False)


@pytest.fixture
def tamper(db_url: str) -> Iterator[object]:
    """``tamper(sql, **params)`` runs SQL with the append-only guard out of the way.

    SQLite: the triggers are simply dropped (anyone with the file can).  PostgreSQL:
    ``session_replication_role = replica`` (a superuser can) disables the triggers.
    """
    from sqlalchemy import text

    from hybrid_agent.audit.models import AUDIT_TABLE_NAMES
    from hybrid_agent.audit.store import make_engine

    engine = make_engine(db_url)

    def run(sql: str, **params: object) -> None:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET LOCAL session_replication_role = replica"))
            else:
                for t in AUDIT_TABLE_NAMES:
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {t}_no_update"))
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {t}_no_delete"))
            conn.execute(text(sql), params)

    yield run
    engine.dispose()


@pytest.fixture(scope="session")
def analyzer() -> object:
    """The process's PII analyzer (built once; the PII tests share it)."""
    from hybrid_agent.pii import get_analyzer

    return get_analyzer()
