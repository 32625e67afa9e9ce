"""Three-way calls: each seat's announcement language on the member unit, and the record of every three-way
call (legs, outcome, recordings mixed and per leg, speaker-labelled transcript).

Revision ID: 0006_three_way_calls
Revises: 0005_token_revocation
Create Date: 2026-12-02 02:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_three_way_calls'
down_revision = '0005_token_revocation'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('member_units') as batch:
        batch.add_column(sa.Column('seat_languages', sa.JSON(), nullable=False, server_default='{}'))
    op.create_table('three_way_calls',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('unit_name', sa.String(length=100), nullable=False),
    sa.Column('started_by', sa.String(length=100), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('outcome', sa.String(length=30), nullable=False),
    sa.Column('seat_number', sa.String(length=40), nullable=True),
    sa.Column('legs', sa.JSON(), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('recordings', sa.JSON(), nullable=False),
    sa.Column('transcript_ref', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['member_units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_three_way_calls_ticket_id'), 'three_way_calls', ['ticket_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_three_way_calls_ticket_id'), table_name='three_way_calls')
    op.drop_table('three_way_calls')
    with op.batch_alter_table('member_units') as batch:
        batch.drop_column('seat_languages')
