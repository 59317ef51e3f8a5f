"""audit schema: calls, turns, tool calls, policy decisions, disclosures, the hash-chained ledger

Also installs the append-only guard (triggers rejecting UPDATE, DELETE and, on
PostgreSQL, TRUNCATE on every audit table; on SQLite also an INSERT whose key
already exists, which closes ``INSERT OR REPLACE``), SQLite type checks (SQLite
stores any value in any column: ``CHECK (typeof(col) = ...)``, booleans only
0/1), and the read-only views for BI tools described in docs/audit.md.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

AUDIT_TABLES = (
    "calls", "call_endings", "turns", "turn_interruptions", "tool_calls",
    "tool_results", "policy_decisions", "disclosures", "ledger",
)

PG_GUARD_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit table % is append-only: % rejected', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""

#: keys a SQLite ``INSERT OR REPLACE`` could collide on (and so silently delete the old row)
UNIQUE_KEYS = {
    "calls": [("id",)],
    "call_endings": [("id",), ("call_id",)],
    "turns": [("id",), ("call_id", "seq")],
    "turn_interruptions": [("id",)],
    "tool_calls": [("id",)],
    "tool_results": [("id",)],
    "policy_decisions": [("id",), ("call_id", "seq")],
    "disclosures": [("id",)],
    "ledger": [("seq",), ("table_name", "row_id")],
}

VIEWS = {
    # one row per call with its end, turn count and violation count
    "audit_call_summary": """
        SELECT c.id AS call_id, c.started_at, c.channel, c.model, c.upstream, c.caller_pseudonym,
               c.account_pseudonym, c.policy_pack, c.policy_version, c.gate_mode,
               e.outcome, e.at_ms AS duration_ms,
               (SELECT count(*) FROM turns t WHERE t.call_id = c.id) AS turns,
               (SELECT count(*) FROM policy_decisions d WHERE d.call_id = c.id AND d.violation) AS violations
        FROM calls c LEFT JOIN call_endings e ON e.call_id = c.id
    """,
    # turns in speech order with what the caller actually heard of interrupted assistant turns
    "audit_turns_heard": """
        SELECT t.call_id, t.seq, t.role, t.status, t.started_ms, t.ended_ms, t.audio_ms,
               t.text AS generated_text,
               CASE WHEN i.id IS NULL THEN t.text ELSE i.heard_text END AS heard_text,
               i.audio_end_ms, (i.id IS NOT NULL) AS interrupted, t.redaction
        FROM turns t LEFT JOIN turn_interruptions i ON i.call_id = t.call_id AND i.seq = t.seq
    """,
    # tool calls with their results and latency
    "audit_tool_calls": """
        SELECT tc.call_id, tc.tool_call_id, tc.name, tc.arguments, tc.at_ms,
               r.status AS result_status, r.output, (r.at_ms - tc.at_ms) AS latency_ms
        FROM tool_calls tc LEFT JOIN tool_results r ON r.call_id = tc.call_id AND r.tool_call_id = tc.tool_call_id
    """,
    # policy violations with the call's start time and policy version
    "audit_violations": """
        SELECT d.call_id, d.seq, c.started_at AS call_started_at, d.at_ms, d.stage, d.rule_id, d.effect,
               d.policy_pack, d.policy_version, d.subject_id, d.message
        FROM policy_decisions d JOIN calls c ON c.id = d.call_id
        WHERE d.violation
    """,
}


def _sqlite_type_check(table: str, columns: list[sa.Column]) -> sa.CheckConstraint:
    """SQLite keeps any value in any column: pin each column to its storage class (booleans to 0/1)."""
    conds = []
    for c in columns:
        q = f'"{c.name}"'
        if isinstance(c.type, sa.Boolean):
            cond = f"(typeof({q}) = 'integer' AND {q} IN (0, 1))"
        elif isinstance(c.type, sa.Double):
            cond = f"typeof({q}) = 'real'"
        elif isinstance(c.type, sa.Integer):
            cond = f"typeof({q}) = 'integer'"
        else:
            cond = f"typeof({q}) = 'text'"
        conds.append(f"({q} IS NULL OR {cond})" if c.nullable else cond)
    return sa.CheckConstraint(" AND ".join(conds), name=op.f(f"ck_{table}_types"))


def create_table(name: str, *elements: sa.schema.SchemaItem) -> None:
    """``op.create_table`` plus, on SQLite, the per-column type check."""
    if op.get_bind().dialect.name == "sqlite":
        elements = (*elements, _sqlite_type_check(name, [e for e in elements if isinstance(e, sa.Column)]))
    op.create_table(name, *elements)


def install_guard() -> None:
    """Append-only guard.  On SQLite anyone with the file can drop these; the ledger still detects edits."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_GUARD_FUNCTION)
        for t in AUDIT_TABLES:
            op.execute(f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                       "FOR EACH ROW EXECUTE FUNCTION audit_append_only()")
            op.execute(f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()")
    else:
        for t in AUDIT_TABLES:
            for verb in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {t}_no_{verb.lower()} BEFORE {verb} ON {t} "
                           f"BEGIN SELECT RAISE(ABORT, 'audit table {t} is append-only: {verb} rejected'); END")
            # INSERT OR REPLACE deletes the old row without firing DELETE triggers (recursive_triggers is off)
            taken = " OR ".join(
                f"EXISTS (SELECT 1 FROM {t} WHERE " + " AND ".join(f"{c} = NEW.{c}" for c in key) + ")"
                for key in UNIQUE_KEYS[t]
            )
            op.execute(f"CREATE TRIGGER {t}_no_replace BEFORE INSERT ON {t} WHEN {taken} "
                       f"BEGIN SELECT RAISE(ABORT, 'audit table {t} is append-only: a row with this key exists'); END")


def drop_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for t in AUDIT_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}")
            op.execute(f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}")
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    else:
        for t in AUDIT_TABLES:
            for verb in ("update", "delete", "replace"):
                op.execute(f"DROP TRIGGER IF EXISTS {t}_no_{verb}")


def create_views() -> None:
    for name, sql in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {sql.strip()}")


def drop_views() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")


revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_table('call_endings',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('call_id', sa.Text(), nullable=False),
    sa.Column('at_ms', sa.Double(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_endings')),
    sa.UniqueConstraint('call_id', name=op.f('uq_call_endings_call_id'))
    )
    op.create_index(op.f('ix_call_endings_outcome'), 'call_endings', ['outcome'], unique=False)

    create_table('calls',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('started_at', sa.Double(), nullable=False),
    sa.Column('channel', sa.Text(), nullable=False),
    sa.Column('model', sa.Text(), nullable=False),
    sa.Column('upstream', sa.Text(), nullable=False),
    sa.Column('caller_pseudonym', sa.Text(), nullable=True),
    sa.Column('account_pseudonym', sa.Text(), nullable=True),
    sa.Column('policy_pack', sa.Text(), nullable=True),
    sa.Column('policy_version', sa.Text(), nullable=True),
    sa.Column('gate_mode', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calls'))
    )
    op.create_index(op.f('ix_calls_account_pseudonym'), 'calls', ['account_pseudonym'], unique=False)
    op.create_index(op.f('ix_calls_caller_pseudonym'), 'calls', ['caller_pseudonym'], unique=False)
    op.create_index(op.f('ix_calls_channel_started_at'), 'calls', ['channel', 'started_at'], unique=False)
    op.create_index(op.f('ix_calls_policy_version_started_at'), 'calls', ['policy_version', 'started_at'], unique=False)
    op.create_index(op.f('ix_calls_started_at'), 'calls', ['started_at'], unique=False)

    create_table('disclosures',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('call_id', sa.Text(), nullable=False),
    sa.Column('disclosure_id', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('turn_seq', sa.Integer(), nullable=True),
    sa.Column('rule_id', sa.Text(), nullable=True),
    sa.Column('at_ms', sa.Double(), nullable=False),
    sa.Column('redaction', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disclosures'))
    )
    op.create_index(op.f('ix_disclosures_call_id_at_ms'), 'disclosures', ['call_id', 'at_ms'], unique=False)

    create_table('ledger',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('table_name', sa.Text(), nullable=False),
    sa.Column('row_id', sa.Text(), nullable=False),
    sa.Column('call_id', sa.Text(), nullable=False),
    sa.Column('record_hash', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.Text(), nullable=False),
    sa.Column('hash', sa.Text(), nullable=False),
    sa.Column('written_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_ledger'))
    )
    op.create_index(op.f('ix_ledger_call_id'), 'ledger', ['call_id'], unique=False)
    op.create_index(op.f('ix_ledger_table_name_row_id'), 'ledger', ['table_name', 'row_id'], unique=True)

    create_table('policy_decisions',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('call_id', sa.Text(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('stage', sa.Text(), nullable=False),
    sa.Column('rule_id', sa.Text(), nullable=False),
    sa.Column('effect', sa.Text(), nullable=False),
    sa.Column('violation', sa.Boolean(), nullable=False),
    sa.Column('policy_pack', sa.Text(), nullable=True),
    sa.Column('policy_version', sa.Text(), nullable=False),
    sa.Column('subject_id', sa.Text(), nullable=True),
    sa.Column('input_digest', sa.Text(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('at_ms', sa.Double(), nullable=False),
    sa.Column('redaction', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_decisions'))
    )
    op.create_index(op.f('ix_policy_decisions_call_id_seq'), 'policy_decisions', ['call_id', 'seq'], unique=True)
    op.create_index(op.f('ix_policy_decisions_rule_id_call_id'), 'policy_decisions', ['rule_id', 'call_id'], unique=False)
    op.create_index(op.f('ix_policy_decisions_violation_call_id'), 'policy_decisions', ['violation', 'call_id'], unique=False)

    create_table('tool_calls',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('call_id', sa.Text(), nullable=False),
    sa.Column('tool_call_id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('arguments', sa.Text(), nullable=False),
    sa.Column('response_id', sa.Text(), nullable=True),
    sa.Column('at_ms', sa.Double(), nullable=False),
    sa.Column('redaction', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tool_calls'))
    )
    op.create_index(op.f('ix_tool_calls_call_id_at_ms'), 'tool_calls', ['call_id', 'at_ms'], unique=False)
    op.create_index(op.f('ix_tool_calls_name'), 'tool_calls', ['name'], unique=False)

    create_table('tool_results',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('call_id', sa.Text(), nullable=False),
    sa.Column('tool_call_id', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('output', sa.Text(), nullable=False),
    sa.Column('extra', sa.Text(), nullable=True),
    sa.Column('at_ms', sa.Double(), nullable=False),
    sa.Column('redaction', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tool_results'))
    )
    op.create_index(op.f('ix_tool_results_call_id_tool_call_id'), 'tool_results', ['call_id', 'tool_call_id'], unique=False)

    create_table('turn_interruptions',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('call_id', sa.Text(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Text(), nullable=False),
    sa.Column('audio_end_ms', sa.Double(), nullable=False),
    sa.Column('heard_text', sa.Text(), nullable=False),
    sa.Column('at_ms', sa.Double(), nullable=False),
    sa.Column('redaction', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_turn_interruptions'))
    )
    op.create_index(op.f('ix_turn_interruptions_call_id_seq'), 'turn_interruptions', ['call_id', 'seq'], unique=False)

    create_table('turns',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('call_id', sa.Text(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('role', sa.Text(), nullable=False),
    sa.Column('item_id', sa.Text(), nullable=False),
    sa.Column('response_id', sa.Text(), nullable=True),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('started_ms', sa.Double(), nullable=False),
    sa.Column('ended_ms', sa.Double(), nullable=False),
    sa.Column('audio_ms', sa.Double(), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('redaction', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_turns'))
    )
    op.create_index(op.f('ix_turns_call_id_seq'), 'turns', ['call_id', 'seq'], unique=True)

    install_guard()
    create_views()


def downgrade() -> None:
    drop_views()
    drop_guard()
    op.drop_index(op.f('ix_turns_call_id_seq'), table_name='turns')
    op.drop_table('turns')
    op.drop_index(op.f('ix_turn_interruptions_call_id_seq'), table_name='turn_interruptions')
    op.drop_table('turn_interruptions')
    op.drop_index(op.f('ix_tool_results_call_id_tool_call_id'), table_name='tool_results')
    op.drop_table('tool_results')
    op.drop_index(op.f('ix_tool_calls_name'), table_name='tool_calls')
    op.drop_index(op.f('ix_tool_calls_call_id_at_ms'), table_name='tool_calls')
    op.drop_table('tool_calls')
    op.drop_index(op.f('ix_policy_decisions_violation_call_id'), table_name='policy_decisions')
    op.drop_index(op.f('ix_policy_decisions_rule_id_call_id'), table_name='policy_decisions')
    op.drop_index(op.f('ix_policy_decisions_call_id_seq'), table_name='policy_decisions')
    op.drop_table('policy_decisions')
    op.drop_index(op.f('ix_ledger_table_name_row_id'), table_name='ledger')
    op.drop_index(op.f('ix_ledger_call_id'), table_name='ledger')
    op.drop_table('ledger')
    op.drop_index(op.f('ix_disclosures_call_id_at_ms'), table_name='disclosures')
    op.drop_table('disclosures')
    op.drop_index(op.f('ix_calls_started_at'), table_name='calls')
    op.drop_index(op.f('ix_calls_policy_version_started_at'), table_name='calls')
    op.drop_index(op.f('ix_calls_channel_started_at'), table_name='calls')
    op.drop_index(op.f('ix_calls_caller_pseudonym'), table_name='calls')
    op.drop_index(op.f('ix_calls_account_pseudonym'), table_name='calls')
    op.drop_table('calls')
    op.drop_index(op.f('ix_call_endings_outcome'), table_name='call_endings')
    op.drop_table('call_endings')
