"""gate actions: what the enforcing middle layer did in a call (held, blocked, clamped, ran, escalated)

Adds ``gate_actions`` (``GateActionRecord``) with the same guards as every audit table
(append-only triggers; on SQLite the type check and the no-replace trigger), the view
``audit_gate_actions``, and ``blocked`` / ``leaked_ms`` columns on ``audit_call_summary``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "gate_actions"
UNIQUE_KEYS = [("id",), ("call_id", "seq")]

SUMMARY_V2 = """
        SELECT c.id AS call_id, c.started_at, c.channel, c.model, c.upstream, c.caller_pseudonym,
               c.account_pseudonym, c.policy_pack, c.policy_version, c.gate_mode,
               e.outcome, e.at_ms AS duration_ms,
               (SELECT count(*) FROM turns t WHERE t.call_id = c.id) AS turns,
               (SELECT count(*) FROM policy_decisions d WHERE d.call_id = c.id AND d.violation) AS violations,
               (SELECT count(*) FROM call_events ev WHERE ev.call_id = c.id
                       AND NOT (ev.source = 'bridge' AND ev.kind IN ('model_mapped', 'session_rewritten', 'session_configured'))) AS errors,
               EXISTS (SELECT 1 FROM call_events ev WHERE ev.call_id = c.id
                       AND ev.source IN ('upstream_refused', 'bridge_refused')
                       AND ev.event_type = 'session.update') AS config_refused
        FROM calls c LEFT JOIN call_endings e ON e.call_id = c.id
"""

SUMMARY_V3 = """
        SELECT c.id AS call_id, c.started_at, c.channel, c.model, c.upstream, c.caller_pseudonym,
               c.account_pseudonym, c.policy_pack, c.policy_version, c.gate_mode,
               e.outcome, e.at_ms AS duration_ms,
               (SELECT count(*) FROM turns t WHERE t.call_id = c.id) AS turns,
               (SELECT count(*) FROM policy_decisions d WHERE d.call_id = c.id AND d.violation) AS violations,
               (SELECT count(*) FROM call_events ev WHERE ev.call_id = c.id
                       AND NOT (ev.source = 'bridge' AND ev.kind IN ('model_mapped', 'session_rewritten', 'session_configured'))) AS errors,
               EXISTS (SELECT 1 FROM call_events ev WHERE ev.call_id = c.id
                       AND ev.source IN ('upstream_refused', 'bridge_refused')
                       AND ev.event_type = 'session.update') AS config_refused,
               (SELECT count(*) FROM gate_actions g WHERE g.call_id = c.id AND g.action = 'speech_blocked') AS blocked,
               (SELECT coalesce(sum(g.leaked_ms), 0.0) FROM gate_actions g WHERE g.call_id = c.id) AS leaked_ms
        FROM calls c LEFT JOIN call_endings e ON e.call_id = c.id
"""

GATE_VIEW = """
        SELECT g.call_id, g.seq, c.started_at AS call_started_at, g.at_ms, g.action, g.mode, g.item_id,
               g.rule_id, g.effect, g.held_ms, g.leaked_ms, g.audio_end_ms, g.requested_ms, g.latency_ms,
               g.status, g.tool, g.text, g.redaction
        FROM gate_actions g LEFT JOIN calls c ON c.id = g.call_id
"""


def _sqlite_type_check(columns: list[sa.Column]) -> sa.CheckConstraint:
    """As in 0001: pin each column to its SQLite storage class."""
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
    return sa.CheckConstraint(" AND ".join(conds), name=op.f(f"ck_{TABLE}_types"))


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    columns = [
        sa.Column('id', sa.Text(), nullable=False),
        sa.Column('call_id', sa.Text(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('at_ms', sa.Double(), nullable=False),
        sa.Column('action', sa.Text(), nullable=False),
        sa.Column('mode', sa.Text(), nullable=True),
        sa.Column('item_id', sa.Text(), nullable=True),
        sa.Column('rule_id', sa.Text(), nullable=True),
        sa.Column('effect', sa.Text(), nullable=True),
        sa.Column('held_ms', sa.Double(), nullable=True),
        sa.Column('leaked_ms', sa.Double(), nullable=True),
        sa.Column('audio_end_ms', sa.Double(), nullable=True),
        sa.Column('requested_ms', sa.Double(), nullable=True),
        sa.Column('latency_ms', sa.Double(), nullable=True),
        sa.Column('status', sa.Text(), nullable=True),
        sa.Column('tool', sa.Text(), nullable=True),
        sa.Column('text', sa.Text(), nullable=True),
        sa.Column('redaction', sa.Text(), nullable=False),
    ]
    extra: list[sa.schema.SchemaItem] = [sa.PrimaryKeyConstraint('id', name=op.f('pk_gate_actions'))]
    if sqlite:
        extra.append(_sqlite_type_check(columns))
    op.create_table(TABLE, *columns, *extra)
    op.create_index(op.f('ix_gate_actions_call_id_seq'), TABLE, ['call_id', 'seq'], unique=True)
    op.create_index(op.f('ix_gate_actions_action_call_id'), TABLE, ['action', 'call_id'], unique=False)

    # the append-only guard, as on every audit table (0001 created audit_append_only() on PostgreSQL)
    if sqlite:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {TABLE}_no_{verb.lower()} BEFORE {verb} ON {TABLE} "
                       f"BEGIN SELECT RAISE(ABORT, 'audit table {TABLE} is append-only: {verb} rejected'); END")
        taken = " OR ".join(
            f"EXISTS (SELECT 1 FROM {TABLE} WHERE " + " AND ".join(f"{c} = NEW.{c}" for c in key) + ")" for key in UNIQUE_KEYS
        )
        op.execute(f"CREATE TRIGGER {TABLE}_no_replace BEFORE INSERT ON {TABLE} WHEN {taken} "
                   f"BEGIN SELECT RAISE(ABORT, 'audit table {TABLE} is append-only: a row with this key exists'); END")
    else:
        op.execute(f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
                   "FOR EACH ROW EXECUTE FUNCTION audit_append_only()")
        op.execute(f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()")

    op.execute("DROP VIEW IF EXISTS audit_call_summary")
    op.execute(f"CREATE VIEW audit_call_summary AS {SUMMARY_V3.strip()}")
    op.execute(f"CREATE VIEW audit_gate_actions AS {GATE_VIEW.strip()}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS audit_gate_actions")
    op.execute("DROP VIEW IF EXISTS audit_call_summary")
    op.execute(f"CREATE VIEW audit_call_summary AS {SUMMARY_V2.strip()}")
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("update", "delete", "replace"):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_{verb}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}")
    op.drop_index(op.f('ix_gate_actions_action_call_id'), table_name=TABLE)
    op.drop_index(op.f('ix_gate_actions_call_id_seq'), table_name=TABLE)
    op.drop_table(TABLE)
