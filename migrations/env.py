"""Alembic environment for the audit store.

The database comes from, in order: a connection passed by ``hybrid_agent.audit.store.upgrade``
(``config.attributes["connection"]``), ``alembic -x db=URL``, ``HYBRID_AGENT_DATABASE_URL``,
then the settings default (``sqlite:///hybrid_agent.db``).  URLs are mapped to our drivers.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context

from hybrid_agent.audit.models import metadata
from hybrid_agent.audit.store import make_engine

config = context.config
target_metadata = metadata


def _url() -> str:
    from hybrid_agent.settings import DEFAULT_DATABASE_URL

    return context.get_x_argument(as_dictionary=True).get("db") or os.environ.get("HYBRID_AGENT_DATABASE_URL") or DEFAULT_DATABASE_URL


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations_offline() -> None:
    from hybrid_agent.audit.store import to_url

    context.configure(url=to_url(_url()), target_metadata=target_metadata, literal_binds=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name)
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
