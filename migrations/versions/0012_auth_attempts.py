"""auth attempts: one counter row per key (account, address, account+address), held while an attempt is
checked, replacing the failed-attempt log that was counted and then written (concurrent guesses all passed)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 15:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('auth_attempts',
    sa.Column('key', sa.String(length=400), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('window_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_auth_attempts'))
    )
    op.drop_index('ix_auth_failures_key_at', table_name='auth_failures')
    op.drop_table('auth_failures')


def downgrade() -> None:
    op.create_table('auth_failures',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=400), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_failures'))
    )
    op.create_index('ix_auth_failures_key_at', 'auth_failures', ['key', 'at'], unique=False)
    op.drop_table('auth_attempts')
