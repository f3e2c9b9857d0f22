"""answer progress: checkpoints of streaming answers, their sweeper's indexes

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 03:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('messages', sa.Column('progress_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_messages_streaming', 'messages', ['created_at'], unique=False,
                    postgresql_where=sa.text("status = 'streaming'"))
    op.create_index('ix_usage_records_unsettled_message', 'usage_records', ['message_id'], unique=False,
                    postgresql_where=sa.text('settled_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_usage_records_unsettled_message', table_name='usage_records',
                  postgresql_where=sa.text('settled_at IS NULL'))
    op.drop_index('ix_messages_streaming', table_name='messages', postgresql_where=sa.text("status = 'streaming'"))
    op.drop_column('messages', 'progress_at')
