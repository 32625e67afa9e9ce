"""Initial ticket schema: tickets with schedule and history, member units, knowledge base, holiday
overrides, API tokens, per-day ticket number counters.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-29 00:25:15.814434
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('holiday_overrides',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('is_working_day', sa.Boolean(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('day')
    )
    op.create_table('member_units',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('areas', sa.JSON(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('seat_numbers', sa.JSON(), nullable=False),
    sa.Column('working_hours', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('ticket_number_counters',
    sa.Column('day', sa.String(length=5), nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day')
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("role <> 'unit_staff' OR unit_id IS NOT NULL", name='ck_api_tokens_unit_staff_unit'),
    sa.CheckConstraint("role IN ('operator', 'unit_staff', 'admin')", name='ck_api_tokens_role'),
    sa.ForeignKeyConstraint(['unit_id'], ['member_units.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_sha256')
    )
    op.create_table('knowledge_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('keywords', sa.JSON(), nullable=False),
    sa.Column('language', sa.String(length=10), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['unit_id'], ['member_units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('tickets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=10), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('call_id', sa.String(length=200), nullable=True),
    sa.Column('caller_name', sa.String(length=100), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('call_time', sa.DateTime(), nullable=True),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=10), nullable=True),
    sa.Column('transcript_ref', sa.String(length=500), nullable=True),
    sa.Column('recording_ref', sa.String(length=500), nullable=True),
    sa.Column('name_recording_ref', sa.String(length=500), nullable=True),
    sa.Column('address_recording_ref', sa.String(length=500), nullable=True),
    sa.Column('confidential', sa.Boolean(), nullable=False),
    sa.Column('request_type', sa.String(length=10), nullable=True),
    sa.Column('topic', sa.String(length=100), nullable=True),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('handling_mode', sa.String(length=10), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('is_draft', sa.Boolean(), nullable=False),
    sa.Column('incomplete_reason', sa.String(length=300), nullable=True),
    sa.Column('overdue', sa.Boolean(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=True),
    sa.Column('response_due_at', sa.DateTime(), nullable=True),
    sa.Column('remind_at', sa.DateTime(), nullable=True),
    sa.Column('reminded_at', sa.DateTime(), nullable=True),
    sa.Column('supervised_at', sa.DateTime(), nullable=True),
    sa.Column('replied_at', sa.DateTime(), nullable=True),
    sa.Column('callback_due_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('statutory_data_missing', sa.Boolean(), nullable=False),
    sa.Column('callback_result', sa.String(length=20), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint('level BETWEEN 1 AND 4', name='ck_tickets_level'),
    sa.ForeignKeyConstraint(['unit_id'], ['member_units.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('call_id'),
    sa.UniqueConstraint('idempotency_key'),
    sa.UniqueConstraint('number')
    )
    op.create_index('ix_tickets_created_at', 'tickets', ['created_at'])
    op.create_index('ix_tickets_level', 'tickets', ['level'])
    op.create_index('ix_tickets_phone', 'tickets', ['phone'])
    op.create_index('ix_tickets_request_type', 'tickets', ['request_type'])
    op.create_index('ix_tickets_status', 'tickets', ['status'])
    op.create_index('ix_tickets_status_due', 'tickets', ['status', 'response_due_at'])
    op.create_index('ix_tickets_topic', 'tickets', ['topic'])
    op.create_index('ix_tickets_unit_created', 'tickets', ['unit_id', 'created_at'])

    op.create_table('ticket_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=30), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_ticket_events_ticket_id', 'ticket_events', ['ticket_id'])



def downgrade() -> None:
    op.drop_index('ix_ticket_events_ticket_id', table_name='ticket_events')

    op.drop_table('ticket_events')
    op.drop_index('ix_tickets_unit_created', table_name='tickets')
    op.drop_index('ix_tickets_topic', table_name='tickets')
    op.drop_index('ix_tickets_status_due', table_name='tickets')
    op.drop_index('ix_tickets_status', table_name='tickets')
    op.drop_index('ix_tickets_request_type', table_name='tickets')
    op.drop_index('ix_tickets_phone', table_name='tickets')
    op.drop_index('ix_tickets_level', table_name='tickets')
    op.drop_index('ix_tickets_created_at', table_name='tickets')

    op.drop_table('tickets')
    op.drop_table('knowledge_entries')
    op.drop_table('api_tokens')
    op.drop_table('ticket_number_counters')
    op.drop_table('member_units')
    op.drop_table('holiday_overrides')
