"""API key budgets and ownership: a key's own daily token budget, its spend on the ledger (and a day's total
of its own), and conversations that belong to the key rather than to the member who made it

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('api_keys', sa.Column('daily_tokens', sa.BigInteger(), nullable=True))
    op.add_column('conversations', sa.Column('api_key_id', sa.Uuid(), nullable=True))
    op.create_foreign_key(op.f('fk_conversations_api_key_id_api_keys'), 'conversations', 'api_keys',
                          ['api_key_id'], ['id'], ondelete='CASCADE')
    op.add_column('usage_records', sa.Column('api_key_id', sa.Uuid(), nullable=True))
    op.create_foreign_key(op.f('fk_usage_records_api_key_id_api_keys'), 'usage_records', 'api_keys',
                          ['api_key_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    op.drop_constraint(op.f('fk_usage_records_api_key_id_api_keys'), 'usage_records', type_='foreignkey')
    op.drop_column('usage_records', 'api_key_id')
    op.drop_constraint(op.f('fk_conversations_api_key_id_api_keys'), 'conversations', type_='foreignkey')
    op.drop_column('conversations', 'api_key_id')
    op.drop_column('api_keys', 'daily_tokens')
