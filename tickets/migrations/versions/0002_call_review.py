"""Call review: the whole call's recording and the transcript's mean confidence on the ticket, when a
reviewer checked the call, and reviewers' word corrections of transcripts (append-only).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 23:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.add_column(sa.Column('call_recording_ref', sa.String(length=500), nullable=True))
        batch.add_column(sa.Column('transcript_confidence', sa.Float(), nullable=True))
        batch.add_column(sa.Column('reviewed_at', sa.DateTime(), nullable=True))
    op.create_table('transcript_corrections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('transcript_ref', sa.String(length=500), nullable=False),
    sa.Column('word_index', sa.Integer(), nullable=False),
    sa.Column('original', sa.String(length=200), nullable=False),
    sa.Column('text', sa.String(length=200), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_transcript_corrections_ticket_word', 'transcript_corrections',
                    ['ticket_id', 'transcript_ref', 'word_index'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_transcript_corrections_ticket_word', table_name='transcript_corrections')
    op.drop_table('transcript_corrections')
    with op.batch_alter_table('tickets') as batch:
        batch.drop_column('reviewed_at')
        batch.drop_column('transcript_confidence')
        batch.drop_column('call_recording_ref')
