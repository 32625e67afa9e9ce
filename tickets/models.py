"""SQLAlchemy 2.0 models of the ticket domain.

The schema itself is owned by the Alembic migrations in `tickets/migrations/`; these classes mirror it
(tests/tickets/test_migrations.py compares the two). Every timestamp is stored as UTC and read back
tz-aware, on SQLite as on PostgreSQL, so deadline arithmetic never meets a naive datetime.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (JSON, Boolean, CheckConstraint, Date, DateTime, Float, ForeignKey, Index, Integer,
                        String, Text, TypeDecorator, UniqueConstraint, event)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

REQUEST_TYPES = ("咨询", "求助", "投诉", "举报", "建议", "表扬", "申诉")
HANDLING_MODES = ("答复", "转办", "呈报")
CALLBACK_RESULTS = ("满意", "基本满意", "不满意", "unreachable")
SATISFACTION = {"1": "满意", "2": "基本满意", "3": "不满意"}  # the callback's keys (回访)
CALLBACK_ATTEMPT_STATES = ("pending", "calling", "done")
# reviewer: approves or returns replies before they reach the citizen (审核把关), for one unit or all;
# supervisor: the 廉政监督员 who follows supervised (督办) and flagged tickets.
ROLES = ("operator", "unit_staff", "admin", "reviewer", "supervisor")
REPLY_STATES = ("pending_review", "approved", "returned")
ATTACHMENT_KINDS = ("text", "audio", "image", "video")
NOTIFICATION_KINDS = ("remind", "supervise", "evasion")
WEBHOOK_STATES = ("none", "pending", "sent", "failed")
# Longest request content and history note (characters): a spoken request fits many times over, a pasted
# document does not belong in a ticket.
CONTENT_MAX_LENGTH = 10_000
NOTE_MAX_LENGTH = 2_000
# PostgreSQL's text-search indexes (bigram GIN expression indexes, migration 0007); not declared on the
# models because SQLite has no such index.
SEARCH_INDEXES = ("ix_tickets_text_grams", "ix_tickets_identity_grams")


class UTCDateTime(TypeDecorator[datetime]):
    """A tz-aware datetime stored as naive UTC: SQLite has no time zones, so both back ends store the same."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the ticket store only accepts tz-aware datetimes")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, list[str]: JSON}


class MemberUnit(Base):
    """A member unit (成员单位): what it handles and the remote seats (远端坐席) to ring, in order."""

    __tablename__ = "member_units"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    areas: Mapped[list[str]] = mapped_column(default=list)
    categories: Mapped[list[str]] = mapped_column(default=list)
    seat_numbers: Mapped[list[str]] = mapped_column(default=list)
    # The language a seat's announcement is spoken in, by seat number (e.g. {"1003": "ko"}); others: Mandarin.
    seat_languages: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    working_hours: Mapped[str] = mapped_column(String(100), default="08:30-12:00,13:30-17:30")
    webhook_url: Mapped[str | None] = mapped_column(String(500))  # POSTed each 催办/督办 notification

    @property
    def webhook_configured(self) -> bool:
        return bool(self.webhook_url)


class Ticket(Base):
    """A work order (工单). `number` is what a caller keys in; `version` guards concurrent transitions."""

    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint("level BETWEEN 1 AND 4", name="ck_tickets_level"),
        Index("ix_tickets_status_due", "status", "response_due_at"),
        Index("ix_tickets_unit_created", "unit_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(10), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # SHA-256 of the creating request's fields: the same key with another body is refused, not replayed.
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(200), unique=True)

    caller_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(40), index=True)
    address: Mapped[str | None] = mapped_column(String(300))
    call_time: Mapped[datetime | None]
    content: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str | None] = mapped_column(String(10))
    transcript_ref: Mapped[str | None] = mapped_column(String(500))
    recording_ref: Mapped[str | None] = mapped_column(String(500))
    name_recording_ref: Mapped[str | None] = mapped_column(String(500))
    address_recording_ref: Mapped[str | None] = mapped_column(String(500))
    call_recording_ref: Mapped[str | None] = mapped_column(String(500))  # the whole call, as the IVR heard it
    transcript_confidence: Mapped[float | None] = mapped_column(Float)  # mean word confidence of the transcript
    confidential: Mapped[bool] = mapped_column(default=False)

    request_type: Mapped[str | None] = mapped_column(String(10), index=True)
    topic: Mapped[str | None] = mapped_column(String(100), index=True)
    level: Mapped[int] = mapped_column(Integer, default=3, index=True)
    handling_mode: Mapped[str | None] = mapped_column(String(10))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("member_units.id"))

    status: Mapped[str] = mapped_column(String(20), index=True)
    is_draft: Mapped[bool] = mapped_column(default=False)
    incomplete_reason: Mapped[str | None] = mapped_column(String(300))
    overdue: Mapped[bool] = mapped_column(default=False)

    received_at: Mapped[datetime | None]
    # Mirrors of the stored deadlines (`deadlines`) kept for lists, sorting and the overdue filter: the
    # deadline promised to the citizen (the level's response, an appeal's resolution) and the callback's.
    response_due_at: Mapped[datetime | None]
    callback_due_at: Mapped[datetime | None]
    supervised_at: Mapped[datetime | None]  # first 督办: the ticket is on the supervisor's list since then
    replied_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    statutory_data_missing: Mapped[bool] = mapped_column(default=False)  # of any of its deadlines
    callback_result: Mapped[str | None] = mapped_column(String(20))
    answer: Mapped[str | None] = mapped_column(Text)  # 答复 the centre gave (a knowledge-base answer on the phone)
    rejection_reason: Mapped[str | None] = mapped_column(String(40))  # 不予受理: a code of the configured list
    referred_by: Mapped[str | None] = mapped_column(String(40))  # e.g. "110": the desk that handed the caller over
    evasion_flagged_at: Mapped[datetime | None]  # repeated 推诿 (returned, or overdue, twice): for the supervisor
    reviewed_at: Mapped[datetime | None]  # a reviewer checked the call's audio and transcript

    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    unit: Mapped[MemberUnit | None] = relationship()
    events: Mapped[list[TicketEvent]] = relationship(back_populates="ticket", order_by="TicketEvent.id",
                                                     cascade="save-update, merge")
    deadlines: Mapped[list[TicketDeadline]] = relationship(back_populates="ticket", order_by="TicketDeadline.id",
                                                           cascade="save-update, merge", lazy="selectin")

    __mapper_args__ = {"version_id_col": version}


class TicketEvent(Base):
    """One line of a ticket's history. Append-only: the ORM refuses to update or delete it."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(String(20))  # what the event found: a callback's 满意/不满意/...

    ticket: Mapped[Ticket] = relationship(back_populates="events")


class TicketDeadline(Base):
    """One deadline a ticket is under (tickets.deadline_tracking says which events start, meet or cancel
    each kind). The scheduler's 催办 and 督办 are claimed on this row (reminded_at, supervised_at), so each
    fires once per deadline whatever the number of nodes or restarts."""

    __tablename__ = "ticket_deadlines"
    __table_args__ = (
        Index("ix_ticket_deadlines_open_remind", "met_at", "cancelled_at", "remind_at"),
        Index("ix_ticket_deadlines_open_due", "met_at", "cancelled_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    started_at: Mapped[datetime]
    due_at: Mapped[datetime]
    remind_at: Mapped[datetime]
    statutory_data_missing: Mapped[bool] = mapped_column(default=False)
    met_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]  # no longer applies (returned as misrouted, reopened, ...)
    reminded_at: Mapped[datetime | None]
    supervised_at: Mapped[datetime | None]

    ticket: Mapped[Ticket] = relationship(back_populates="deadlines")

    @property
    def is_open(self) -> bool:
        return self.met_at is None and self.cancelled_at is None


class TranscriptCorrection(Base):
    """A reviewer's correction of one recognised word of a call transcript. The recogniser's word stays in
    the transcript file and in `original`; a later correction of the same word supersedes this one, which
    stays as evidence of who changed what when."""

    __tablename__ = "transcript_corrections"
    __table_args__ = (Index("ix_transcript_corrections_ticket_word", "ticket_id", "transcript_ref", "word_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    transcript_ref: Mapped[str] = mapped_column(String(500))
    word_index: Mapped[int] = mapped_column(Integer)
    original: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(String(200))  # '' when the word was struck out
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(default=utcnow)


APPEND_ONLY = (TicketEvent, TranscriptCorrection)


@event.listens_for(Session, "before_flush")
def _refuse_history_rewrite(session: Session, flush_context: Any, instances: Any) -> None:
    """History is evidence for supervision and evaluation (统一督办、统一考核): never rewritten. The same holds
    for transcript corrections."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, APPEND_ONLY) and (obj in session.deleted or session.is_modified(obj)):
            raise ValueError(f"{obj.__tablename__} is append-only (row {obj.id})")


class ThreeWayCall(Base):
    """A three-way call (三方通话) of the hotline, a citizen and a member unit's remote seat, as it ended: who
    was called and how each leg went, the outcome, the recordings (mixed and per leg) and the
    speaker-labelled transcript once the background transcription made it. `id` is the conference's id."""

    __tablename__ = "three_way_calls"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("member_units.id"))
    unit_name: Mapped[str] = mapped_column(String(100))
    started_by: Mapped[str] = mapped_column(String(100))  # "flow", or the operator who asked for it
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(30))  # three_way.desk.Reason values
    seat_number: Mapped[str | None] = mapped_column(String(40))  # the seat that took part
    legs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    recordings: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # 'mixed' or leg id -> path
    transcript_ref: Mapped[str | None] = mapped_column(String(500))


class TicketNumberCounter(Base):
    """Per-day sequence behind the human-readable ticket numbers."""

    __tablename__ = "ticket_number_counters"

    day: Mapped[str] = mapped_column(String(5), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class KnowledgeEntry(Base):
    """A knowledge-base (知识库) answer an operator or the IVR can give directly (答复).

    Member units keep their own entries (第七条(四) 采编、审核、更新): a unit's new entry is not `approved` until
    an operator reviews it, and a unit's edit of an approved entry waits in `pending` while the phone keeps
    using the approved text."""

    __tablename__ = "knowledge_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    keywords: Mapped[list[str]] = mapped_column(default=list)
    language: Mapped[str] = mapped_column(String(10), default="zh")
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("member_units.id"))
    approved: Mapped[bool] = mapped_column(default=True)
    pending: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # a unit's proposed changes awaiting review
    submitted_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(Text)


class HolidayOverride(Base):
    """An administrator's correction of the statutory calendar for one day (feeds WorkingCalendar)."""

    __tablename__ = "holiday_overrides"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_working_day: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(200), default="")


class ApiToken(Base):
    """A bearer token of the HTTP API, stored as its SHA-256 only. A revoked token is kept (who had access
    when stays known) and never authenticates again."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint("role IN ('operator', 'unit_staff', 'admin', 'reviewer', 'supervisor')",
                        name="ck_api_tokens_role"),
        CheckConstraint("role <> 'unit_staff' OR unit_id IS NOT NULL", name="ck_api_tokens_unit_staff_unit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("member_units.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Reply(Base):
    """A reply (回复) to the citizen: who handled it, when, what was done and the result (办理单位、办理时间、
    办理情况、办理结果), with attachments. It counts as sent only once a reviewer approved it (审核把关);
    approved replies are then delivered to the citizen by the configured channel (`delivered_at`)."""

    __tablename__ = "replies"
    __table_args__ = (
        CheckConstraint("status IN ('pending_review', 'approved', 'returned')", name="ck_replies_status"),
        Index("ix_replies_delivery", "status", "delivered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    handling_unit: Mapped[str] = mapped_column(String(100))
    handled_at: Mapped[datetime]
    situation: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(100))
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="pending_review")
    reviewer: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(20))  # how it goes to the citizen, set at approval
    delivered_at: Mapped[datetime | None]
    delivery_note: Mapped[str | None] = mapped_column(Text)
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)

    ticket: Mapped[Ticket] = relationship()
    attachments: Mapped[list[ReplyAttachment]] = relationship(back_populates="reply", order_by="ReplyAttachment.id",
                                                              lazy="selectin")


class ReplyAttachment(Base):
    """A file attached to a reply (文字、语音、图片、视频), stored beside the recordings; only its reference,
    size and SHA-256 are in the database."""

    __tablename__ = "reply_attachments"
    __table_args__ = (CheckConstraint("kind IN ('text', 'audio', 'image', 'video')", name="ck_reply_attachments_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reply_id: Mapped[int] = mapped_column(ForeignKey("replies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_ref: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    reply: Mapped[Reply] = relationship(back_populates="attachments")


class Notification(Base):
    """Someone must act: a 催办 or 督办 for a unit (or the centre, `unit_id` None), or a 推诿 flag. Unit staff
    list and acknowledge their unit's; a unit's webhook, when it has one, is POSTed by the webhook sender
    (never by the scheduler, which only writes this row)."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("kind IN ('remind', 'supervise', 'evasion')", name="ck_notifications_kind"),
        CheckConstraint("webhook_status IN ('none', 'pending', 'sent', 'failed')", name="ck_notifications_webhook"),
        Index("ix_notifications_unit_created", "unit_id", "created_at"),
        Index("ix_notifications_webhook_due", "webhook_status", "webhook_next_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("member_units.id"))
    kind: Mapped[str] = mapped_column(String(20))
    deadline_kind: Mapped[str | None] = mapped_column(String(30))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    webhook_url: Mapped[str | None] = mapped_column(String(500))  # the unit's at the time
    webhook_status: Mapped[str] = mapped_column(String(10), default="none")
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)
    webhook_next_at: Mapped[datetime | None]
    webhook_sent_at: Mapped[datetime | None]
    webhook_last_error: Mapped[str | None] = mapped_column(Text)

    ticket: Mapped[Ticket] = relationship()

    @property
    def ticket_number(self) -> str:
        return self.ticket.number

class CallbackAttempt(Base):
    """One attempt to call the citizen back (回访) about an approved reply: read it and ask for satisfaction.

    Rows are the queue: `pending` until `due_at`, `calling` while a node holds it (claimed with a conditional
    UPDATE, `lease_until` bounding a node that died mid-call), `done` with the outcome. Numbers count per
    reply and are unique, so two nodes scheduling the same attempt make one row."""

    __tablename__ = "callback_attempts"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'calling', 'done')", name="ck_callback_attempts_state"),
        UniqueConstraint("reply_id", "number", name="uq_callback_attempts_reply_number"),
        Index("ix_callback_attempts_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    reply_id: Mapped[int] = mapped_column(ForeignKey("replies.id"))
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... of this reply's attempts
    requested_by: Mapped[str] = mapped_column(String(100))  # "callbacks" (the schedule) or the operator
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(10), default="pending")
    node: Mapped[str | None] = mapped_column(String(100))  # the node that claimed it
    claimed_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    call_id: Mapped[str | None] = mapped_column(String(32))  # our call id, when the call was answered
    called_number: Mapped[str | None] = mapped_column(String(40))
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))  # tickets.callbacks.OUTCOMES
    satisfaction: Mapped[str | None] = mapped_column(String(10))  # 满意 / 基本满意 / 不满意
    reason_ref: Mapped[str | None] = mapped_column(String(500))  # the recorded reason of a 不满意
    reason_text: Mapped[str | None] = mapped_column(Text)  # its transcript, where the language has a model
    recording_ref: Mapped[str | None] = mapped_column(String(500))  # the whole call
    note: Mapped[str | None] = mapped_column(Text)

    ticket: Mapped[Ticket] = relationship()
    reply: Mapped[Reply] = relationship()
