"""The procedures' records: replies with their review and attachments, notifications of 催办/督办 (with unit
webhooks), the reviewer and supervisor roles, units' knowledge entries awaiting review, and on the ticket the
answer given at intake, the 不予受理 reason code, who handed the caller over (110) and the 推诿 flag; each
history line can carry its result (a callback's satisfaction), so statistics read events only.

Revision ID: 0004_replies_notifications
Revises: 0003_ticket_deadlines
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_replies_notifications"
down_revision = "0003_ticket_deadlines"
branch_labels = None
depends_on = None

OLD_ROLES = "role IN ('operator', 'unit_staff', 'admin')"
NEW_ROLES = "role IN ('operator', 'unit_staff', 'admin', 'reviewer', 'supervisor')"


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("answer", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rejection_reason", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("referred_by", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("evasion_flagged_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("ticket_events") as batch:
        batch.add_column(sa.Column("result", sa.String(length=20), nullable=True))
    _callback_results_onto_events()
    with op.batch_alter_table("member_units") as batch:
        batch.add_column(sa.Column("webhook_url", sa.String(length=500), nullable=True))
    with op.batch_alter_table("knowledge_entries") as batch:
        batch.add_column(sa.Column("approved", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("pending", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("submitted_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("reviewed_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("review_note", sa.Text(), nullable=True))
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_constraint("ck_api_tokens_role", type_="check")
        batch.create_check_constraint("ck_api_tokens_role", NEW_ROLES)

    op.create_table(
        "replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("handling_unit", sa.String(length=100), nullable=False),
        sa.Column("handled_at", sa.DateTime(), nullable=False),
        sa.Column("situation", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=100), nullable=False),
        sa.Column("submitted_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reviewer", sa.String(length=100), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("delivery_note", sa.Text(), nullable=True),
        sa.Column("delivery_attempts", sa.Integer(), nullable=False),
        sa.CheckConstraint("status IN ('pending_review', 'approved', 'returned')", name="ck_replies_status"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_replies_ticket_id", "replies", ["ticket_id"])
    op.create_index("ix_replies_delivery", "replies", ["status", "delivered_at"])
    op.create_table(
        "reply_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reply_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_ref", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('text', 'audio', 'image', 'video')", name="ck_reply_attachments_kind"),
        sa.ForeignKeyConstraint(["reply_id"], ["replies.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reply_attachments_reply_id", "reply_attachments", ["reply_id"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("deadline_kind", sa.String(length=30), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        sa.Column("webhook_url", sa.String(length=500), nullable=True),
        sa.Column("webhook_status", sa.String(length=10), nullable=False),
        sa.Column("webhook_attempts", sa.Integer(), nullable=False),
        sa.Column("webhook_next_at", sa.DateTime(), nullable=True),
        sa.Column("webhook_sent_at", sa.DateTime(), nullable=True),
        sa.Column("webhook_last_error", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('remind', 'supervise', 'evasion')", name="ck_notifications_kind"),
        sa.CheckConstraint("webhook_status IN ('none', 'pending', 'sent', 'failed')", name="ck_notifications_webhook"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["member_units.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notifications_ticket_id", "notifications", ["ticket_id"])
    op.create_index("ix_notifications_unit_created", "notifications", ["unit_id", "created_at"])
    op.create_index("ix_notifications_webhook_due", "notifications", ["webhook_status", "webhook_next_at"])


def _callback_results_onto_events() -> None:
    """Earlier callbacks kept their result on the ticket only: copy it onto the ticket's latest callback event,
    so that the statistics (which read events) count the callbacks made before this version."""
    connection = op.get_bind()
    tickets = sa.table("tickets", sa.column("id", sa.Integer()), sa.column("callback_result", sa.String()))
    events = sa.table("ticket_events", sa.column("id", sa.Integer()), sa.column("ticket_id", sa.Integer()),
                      sa.column("action", sa.String()), sa.column("result", sa.String()))
    latest = (sa.select(events.c.ticket_id, sa.func.max(events.c.id).label("event_id"))
              .where(events.c.action == "callback").group_by(events.c.ticket_id).subquery())
    rows = connection.execute(sa.select(latest.c.event_id, tickets.c.callback_result)
                              .join(tickets, tickets.c.id == latest.c.ticket_id)
                              .where(tickets.c.callback_result.is_not(None))).all()
    for event_id, result in rows:
        connection.execute(events.update().where(events.c.id == event_id).values(result=result))


def downgrade() -> None:
    op.drop_index("ix_notifications_webhook_due", table_name="notifications")
    op.drop_index("ix_notifications_unit_created", table_name="notifications")
    op.drop_index("ix_notifications_ticket_id", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_reply_attachments_reply_id", table_name="reply_attachments")
    op.drop_table("reply_attachments")
    op.drop_index("ix_replies_delivery", table_name="replies")
    op.drop_index("ix_replies_ticket_id", table_name="replies")
    op.drop_table("replies")
    op.execute("DELETE FROM api_tokens WHERE role IN ('reviewer', 'supervisor')")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_constraint("ck_api_tokens_role", type_="check")
        batch.create_check_constraint("ck_api_tokens_role", OLD_ROLES)
    with op.batch_alter_table("knowledge_entries") as batch:
        for name in ("review_note", "reviewed_at", "reviewed_by", "submitted_by", "pending", "approved"):
            batch.drop_column(name)
    with op.batch_alter_table("member_units") as batch:
        batch.drop_column("webhook_url")
    with op.batch_alter_table("ticket_events") as batch:
        batch.drop_column("result")
    with op.batch_alter_table("tickets") as batch:
        for name in ("evasion_flagged_at", "referred_by", "rejection_reason", "answer"):
            batch.drop_column(name)
