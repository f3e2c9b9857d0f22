"""usage channel: each model call's usage record says which API it came through (graphql, openai, ai-sdk,
worker)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 18:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('usage_records', sa.Column('channel', sa.String(length=16), server_default='graphql',
                                             nullable=False))


def downgrade() -> None:
    op.drop_column('usage_records', 'channel')
