"""Callback attempts (回访): the durable queue of calls to citizens about approved replies, with each
attempt's outcome, satisfaction, reason and recording.

Revision ID: 0008_callback_attempts
Revises: 0007_text_search
Create Date: 2026-12-02 03:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_callback_attempts'
down_revision = '0007_text_search'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('callback_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('reply_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('requested_by', sa.String(length=100), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('node', sa.String(length=100), nullable=True),
    sa.Column('claimed_at', sa.DateTime(), nullable=True),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.Column('call_id', sa.String(length=32), nullable=True),
    sa.Column('called_number', sa.String(length=40), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.Column('satisfaction', sa.String(length=10), nullable=True),
    sa.Column('reason_ref', sa.String(length=500), nullable=True),
    sa.Column('reason_text', sa.Text(), nullable=True),
    sa.Column('recording_ref', sa.String(length=500), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'calling', 'done')", name='ck_callback_attempts_state'),
    sa.ForeignKeyConstraint(['reply_id'], ['replies.id'], ),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reply_id', 'number', name='uq_callback_attempts_reply_number')
    )
    op.create_index('ix_callback_attempts_state_due', 'callback_attempts', ['state', 'due_at'], unique=False)
    op.create_index(op.f('ix_callback_attempts_ticket_id'), 'callback_attempts', ['ticket_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_callback_attempts_ticket_id'), table_name='callback_attempts')
    op.drop_index('ix_callback_attempts_state_due', table_name='callback_attempts')
    op.drop_table('callback_attempts')
