"""API tokens can be revoked and show when they were last used; tickets remember the fingerprint of the
request that created them, so an Idempotency-Key reused with another body is refused instead of replayed.

Revision ID: 0004
Revises: 0003_ticket_deadlines
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003_ticket_deadlines'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens') as batch:
        batch.add_column(sa.Column('last_used_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('revoked_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('tickets') as batch:
        batch.add_column(sa.Column('idempotency_fingerprint', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.drop_column('idempotency_fingerprint')
    with op.batch_alter_table('api_tokens') as batch:
        batch.drop_column('revoked_at')
        batch.drop_column('last_used_at')
