"""answer feedback: an answer's owner rates it up or down, with an optional comment; exported and counted
per template version

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('messages', sa.Column('rating', sa.String(length=8), nullable=True))
    op.add_column('messages', sa.Column('rating_comment', sa.Text(), nullable=True))
    op.add_column('messages', sa.Column('rated_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('messages', 'rated_at')
    op.drop_column('messages', 'rating_comment')
    op.drop_column('messages', 'rating')
