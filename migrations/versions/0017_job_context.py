"""job context: a job recorded in the outbox keeps the ids of the request that caused it (request id, trace
id, user, workspace), so the worker's log lines and trace join the request's

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 17:40:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('job_outbox', sa.Column('context', postgresql.JSONB(astext_type=sa.Text()),
                                          server_default='{}', nullable=False))


def downgrade() -> None:
    op.drop_column('job_outbox', 'context')
