"""Every deadline a ticket is under, stored per ticket (ticket_deadlines), each with its own reminder and
supervision claims; the ticket keeps response_due_at / callback_due_at / supervised_at as mirrors and loses
remind_at / reminded_at (now per deadline).

Existing tickets get a `response` deadline from their response_due_at (met at the reply or at closing) and a
`callback` deadline from their callback_due_at (met at the callback event), so nothing in flight is forgotten.

Revision ID: 0003_ticket_deadlines
Revises: 0002
Create Date: 2026-12-02
"""
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0003_ticket_deadlines"
down_revision = "0002"
branch_labels = None
depends_on = None

REMINDER_FRACTION = 0.8  # the default; the reminder of a migrated callback deadline


def upgrade() -> None:
    op.create_table(
        "ticket_deadlines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("remind_at", sa.DateTime(), nullable=False),
        sa.Column("statutory_data_missing", sa.Boolean(), nullable=False),
        sa.Column("met_at", sa.DateTime(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.Column("reminded_at", sa.DateTime(), nullable=True),
        sa.Column("supervised_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_deadlines_ticket_id", "ticket_deadlines", ["ticket_id"])
    op.create_index("ix_ticket_deadlines_open_remind", "ticket_deadlines", ["met_at", "cancelled_at", "remind_at"])
    op.create_index("ix_ticket_deadlines_open_due", "ticket_deadlines", ["met_at", "cancelled_at", "due_at"])
    _carry_over_schedules()
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("remind_at")
        batch.drop_column("reminded_at")


def _columns(*names: str) -> list[sa.ColumnClause]:
    """Typed column stubs (SQLite hands back text for untyped datetime columns)."""
    types = {"id": sa.Integer(), "ticket_id": sa.Integer(), "kind": sa.String(), "action": sa.String(),
             "statutory_data_missing": sa.Boolean()}
    return [sa.column(name, types.get(name, sa.DateTime())) for name in names]


def _carry_over_schedules() -> None:
    connection = op.get_bind()
    tickets = sa.table("tickets", *_columns(
        "id", "received_at", "response_due_at", "remind_at", "reminded_at", "supervised_at", "replied_at",
        "closed_at", "callback_due_at", "statutory_data_missing"))
    events = sa.table("ticket_events", *_columns("ticket_id", "action", "at"))
    deadlines = sa.table("ticket_deadlines", *_columns(
        "ticket_id", "kind", "started_at", "due_at", "remind_at", "statutory_data_missing", "met_at",
        "reminded_at", "supervised_at"))
    rows = []
    for t in connection.execute(sa.select(tickets).where(tickets.c.response_due_at.is_not(None))):
        rows.append({"ticket_id": t.id, "kind": "response", "started_at": t.received_at, "due_at": t.response_due_at,
                     "remind_at": t.remind_at or t.response_due_at, "statutory_data_missing": t.statutory_data_missing,
                     "met_at": t.replied_at or t.closed_at, "reminded_at": t.reminded_at,
                     "supervised_at": t.supervised_at})
    for t in connection.execute(sa.select(tickets).where(tickets.c.callback_due_at.is_not(None))):
        started = t.replied_at or t.callback_due_at
        called_back = connection.execute(sa.select(sa.func.min(events.c.at)).where(
            events.c.ticket_id == t.id, events.c.action == "callback", events.c.at >= started)).scalar()
        rows.append({"ticket_id": t.id, "kind": "callback", "started_at": started, "due_at": t.callback_due_at,
                     "remind_at": started + timedelta(seconds=(t.callback_due_at - started).total_seconds()
                                                      * REMINDER_FRACTION),
                     "statutory_data_missing": False, "met_at": called_back, "reminded_at": None,
                     "supervised_at": None})
    if rows:
        op.bulk_insert(deadlines, rows)


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("remind_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("reminded_at", sa.DateTime(), nullable=True))
    connection = op.get_bind()
    tickets = sa.table("tickets", *_columns("id", "remind_at", "reminded_at"))
    deadlines = sa.table("ticket_deadlines", *_columns("id", "ticket_id", "kind", "remind_at", "reminded_at"))
    latest_response = (sa.select(sa.func.max(deadlines.c.id)).where(deadlines.c.kind == "response")
                       .group_by(deadlines.c.ticket_id))
    for d in connection.execute(sa.select(deadlines).where(deadlines.c.id.in_(latest_response))):
        connection.execute(tickets.update().where(tickets.c.id == d.ticket_id)
                           .values(remind_at=d.remind_at, reminded_at=d.reminded_at))
    op.drop_index("ix_ticket_deadlines_open_due", table_name="ticket_deadlines")
    op.drop_index("ix_ticket_deadlines_open_remind", table_name="ticket_deadlines")
    op.drop_index("ix_ticket_deadlines_ticket_id", table_name="ticket_deadlines")
    op.drop_table("ticket_deadlines")
