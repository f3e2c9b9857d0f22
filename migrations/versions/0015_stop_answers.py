"""stop answers: a stop asked of an answer another API process generates, seen by it at its next checkpoint

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('messages', sa.Column('stop_requested_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('messages', 'stop_requested_at')
