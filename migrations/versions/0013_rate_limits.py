"""rate limits: one unlogged row per quota (GCRA theoretical arrival time), shared by every API process;
API keys may carry their own request rate

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_limits',
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('tat', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_limits')),
    prefixes=['UNLOGGED']
    )
    op.add_column('api_keys', sa.Column('requests_per_minute', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('api_keys', 'requests_per_minute')
    op.drop_table('rate_limits')
