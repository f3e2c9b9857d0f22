"""usage day totals

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 01:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# The totals of the ledger so far: per workspace (subject = the workspace) and per member (subject = the user).
BACKFILL = """
INSERT INTO usage_days (workspace_id, day, subject_id, tokens, cost_usd, calls)
SELECT workspace_id, day, subject_id, sum(spent), sum(cost_usd), count(*) FROM (
    SELECT workspace_id, day, workspace_id AS subject_id, cost_usd,
           CASE WHEN settled_at IS NULL THEN reserved_tokens ELSE prompt_tokens + completion_tokens END AS spent
    FROM usage_records
    UNION ALL
    SELECT workspace_id, day, user_id, cost_usd,
           CASE WHEN settled_at IS NULL THEN reserved_tokens ELSE prompt_tokens + completion_tokens END
    FROM usage_records WHERE user_id IS NOT NULL) AS spending
GROUP BY workspace_id, day, subject_id"""


def upgrade() -> None:
    op.create_table('usage_days',
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('tokens', sa.BigInteger(), nullable=False),
    sa.Column('cost_usd', sa.Float(), nullable=False),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_usage_days_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'day', 'subject_id', name=op.f('pk_usage_days'))
    )
    op.get_bind().exec_driver_sql(BACKFILL)


def downgrade() -> None:
    op.drop_table('usage_days')
