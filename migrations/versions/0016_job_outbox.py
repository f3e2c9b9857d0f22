"""job outbox: a job is recorded in the transaction of the change that causes it and handed to the broker
after the commit (now, or by the relay when the broker was away); a row lives until the broker has it

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 18:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job_outbox',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kwargs', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_outbox'))
    )
    op.create_index('ix_job_outbox_created_at', 'job_outbox', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_job_outbox_created_at', table_name='job_outbox')
    op.drop_table('job_outbox')
