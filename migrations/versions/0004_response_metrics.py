"""response metrics: per model response, time to first audio, the gate's hold, budgets exceeded, token usage

Adds ``response_metrics`` (``ResponseMetrics``) with the same guards as every audit table
(append-only triggers; on SQLite the type check and the no-replace trigger) and the view
``audit_response_metrics``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "response_metrics"
UNIQUE_KEYS = [("id",), ("call_id", "seq")]
TOKEN_COLUMNS = ("input_text_tokens", "input_audio_tokens", "input_image_tokens", "cached_text_tokens",
                 "cached_audio_tokens", "output_text_tokens", "output_audio_tokens")

VIEW = """
        SELECT m.call_id, m.seq, c.started_at AS call_started_at, c.policy_pack, m.at_ms, m.model, m.status,
               m.response_id, m.turn_seq, m.user_seq, m.reference, m.reference_ms, m.first_audio_ms, m.released_ms,
               m.ttfa_ms, m.gate_ms, m.audio_ms, m.over_budget, m.input_text_tokens, m.input_audio_tokens,
               m.input_image_tokens, m.cached_text_tokens, m.cached_audio_tokens, m.output_text_tokens,
               m.output_audio_tokens
        FROM response_metrics m LEFT JOIN calls c ON c.id = m.call_id
"""


def _storage_class(c: sa.Column) -> str:
    """As in 0001: the SQLite storage class a column is pinned to."""
    q = f'"{c.name}"'
    if isinstance(c.type, sa.Double):
        cond = f"typeof({q}) = 'real'"
    elif isinstance(c.type, sa.Integer):
        cond = f"typeof({q}) = 'integer'"
    else:
        cond = f"typeof({q}) = 'text'"
    return f"({q} IS NULL OR {cond})" if c.nullable else cond


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    columns = [
        sa.Column('id', sa.Text(), nullable=False),
        sa.Column('call_id', sa.Text(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('at_ms', sa.Double(), nullable=False),
        sa.Column('model', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('response_id', sa.Text(), nullable=True),
        sa.Column('turn_seq', sa.Integer(), nullable=True),
        sa.Column('user_seq', sa.Integer(), nullable=True),
        sa.Column('reference', sa.Text(), nullable=False),
        sa.Column('reference_ms', sa.Double(), nullable=True),
        sa.Column('first_audio_ms', sa.Double(), nullable=True),
        sa.Column('released_ms', sa.Double(), nullable=True),
        sa.Column('ttfa_ms', sa.Double(), nullable=True),
        sa.Column('gate_ms', sa.Double(), nullable=True),
        sa.Column('audio_ms', sa.Double(), nullable=False),
        sa.Column('over_budget', sa.Text(), nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in TOKEN_COLUMNS),
    ]
    extra: list[sa.schema.SchemaItem] = [sa.PrimaryKeyConstraint('id', name=op.f('pk_response_metrics'))]
    if sqlite:
        extra.append(sa.CheckConstraint(" AND ".join(_storage_class(c) for c in columns), name=op.f(f"ck_{TABLE}_types")))
    op.create_table(TABLE, *columns, *extra)
    op.create_index(op.f('ix_response_metrics_call_id_seq'), TABLE, ['call_id', 'seq'], unique=True)
    op.create_index(op.f('ix_response_metrics_over_budget_call_id'), TABLE, ['over_budget', 'call_id'], unique=False)

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
    op.execute(f"CREATE VIEW audit_response_metrics AS {VIEW.strip()}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS audit_response_metrics")
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("update", "delete", "replace"):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_{verb}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}")
    op.drop_index(op.f('ix_response_metrics_over_budget_call_id'), table_name=TABLE)
    op.drop_index(op.f('ix_response_metrics_call_id_seq'), table_name=TABLE)
    op.drop_table(TABLE)
