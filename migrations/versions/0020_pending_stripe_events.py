"""pending Stripe events: the events a worker still has to apply (KEEL_STRIPE_WEBHOOKS_APPLY=worker), found
oldest first without reading the whole log

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 11:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_stripe_events_pending', 'stripe_events', ['created', 'received_at'],
                    postgresql_where=sa.text("status IN ('received', 'failed')"))


def downgrade() -> None:
    op.drop_index('ix_stripe_events_pending', table_name='stripe_events')
