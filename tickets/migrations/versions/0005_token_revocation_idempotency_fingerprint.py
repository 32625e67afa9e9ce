"""API tokens can be revoked and show when they were last used; tickets remember the fingerprint of the
request that created them, so an Idempotency-Key reused with another body is refused instead of replayed.

Revision ID: 0005_token_revocation
Revises: 0004_replies_notifications
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_token_revocation'
down_revision = '0004_replies_notifications'
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
