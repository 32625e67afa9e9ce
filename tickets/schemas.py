"""Request and response bodies of the ticket API. Requests forbid unknown fields, so a typo is a 422 that
names the field instead of a silently ignored value.

Every free-text field has a length limit and refuses control characters (a NUL byte would otherwise reach
PostgreSQL and fail there); ids are bounded to the database's integer range and timestamps to years a
ticket can have. The limits are pydantic constraints, so they appear in the OpenAPI document and break the
request with a 422 naming the field before anything is stored.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tickets.lifecycle import Action
from tickets.models import CONTENT_MAX_LENGTH, NOTE_MAX_LENGTH

RequestType = Literal["咨询", "求助", "投诉", "举报", "建议", "表扬", "申诉"]
HandlingMode = Literal["答复", "转办", "呈报"]
CallbackResult = Literal["满意", "基本满意", "不满意", "unreachable"]
Level = Annotated[int, Field(ge=1, le=4, description="response level: 1 emergency 2 h, 2 basic supply 24 h, "
                                                      "3 other 7 days, 4 complex 15 days")]
Phone = Annotated[str, Field(max_length=40, pattern=r"^\+?[0-9][0-9 -]{2,38}$", description="digits, spaces, dashes")]
LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}$", description="language code, e.g. zh, ko")]
WorkingHours = Annotated[str, Field(max_length=100, pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}(,\d{2}:\d{2}-\d{2}:\d{2})*$",
                                    examples=["08:30-12:00,13:30-17:30"])]

# No control characters on one line; text may also hold tabs and line breaks.
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
MULTI_LINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
MAX_ID = 2_147_483_647  # PostgreSQL integer
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Version = Annotated[int, Field(ge=1, le=MAX_ID)]
FIRST_YEAR, LAST_YEAR = 1970, 2999


def line(max_length: int, min_length: int = 0) -> type[str]:
    """A one-line text field of at most `max_length` characters."""
    return Annotated[str, Field(min_length=min_length or None, max_length=max_length, pattern=ONE_LINE)]  # type: ignore[return-value]


def text(max_length: int, min_length: int = 0) -> type[str]:
    """A multi-line text field of at most `max_length` characters."""
    return Annotated[str, Field(min_length=min_length or None, max_length=max_length, pattern=MULTI_LINE)]  # type: ignore[return-value]


def _supported_year(value: datetime) -> datetime:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"year {value.year} is outside {FIRST_YEAR}-{LAST_YEAR}")
    return value


# A point in time; without a UTC offset it is read as Asia/Shanghai time (the hotline's clock).
Timestamp = Annotated[datetime, AfterValidator(_supported_year)]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give a UTC offset, e.g. 2026-03-02T09:00:00+08:00")
    return value


# A calendar day (of a report), in the years a ticket can have.
Day = Annotated[date, AfterValidator(_supported_year)]
# A point in time that must carry its UTC offset.
AwareTimestamp = Annotated[datetime, AfterValidator(_supported_year), AfterValidator(_aware)]
Name = line(100)
Label = line(100)
Ref = line(500)
Language = line(10)
Note = text(NOTE_MAX_LENGTH)
Labels = Annotated[list[Label], Field(max_length=100)]


WebhookUrl = Annotated[str, Field(max_length=500, pattern=r"^https?://[^\x00-\x20\x7f]+$",
                                  description="http(s) URL the unit's 催办/督办 notifications are POSTed to")]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TicketFields(RequestModel):
    """The fields an operator edits; all optional so that PATCH can send only what changed."""

    caller_name: Name | None = None
    phone: Phone | None = None
    address: line(300) | None = None  # type: ignore[valid-type]
    call_time: Timestamp | None = None
    content: text(CONTENT_MAX_LENGTH) | None = None  # type: ignore[valid-type]
    language: Language | None = None
    transcript_ref: Ref | None = None
    recording_ref: Ref | None = None
    name_recording_ref: Ref | None = None
    address_recording_ref: Ref | None = None
    call_recording_ref: Ref | None = None
    confidential: bool | None = None
    request_type: RequestType | None = None
    topic: Label | None = None
    handling_mode: HandlingMode | None = None
    unit_id: Id | None = None
    call_id: line(200) | None = None  # type: ignore[valid-type]
    answer: text(4000) | None = Field(None, description="the 答复 the centre gave (e.g. from the "  # type: ignore[valid-type]
                                                        "knowledge base)")
    referred_by: line(40) | None = Field(None, description="the desk that handed the caller over, e.g. 110")  # type: ignore[valid-type]


class TicketCreate(TicketFields):
    content: text(CONTENT_MAX_LENGTH, min_length=1)  # type: ignore[valid-type]
    level: Level | None = Field(None, description="omit to let the keyword rules propose it")
    draft: bool = Field(False, description="save as a draft (e.g. the caller hung up halfway)")


class LevelOverride(RequestModel):
    level: Level
    note: Note | None = None


class TransitionRequest(RequestModel):
    action: Action
    note: Note | None = None
    unit_id: Id | None = Field(None, description="the responsible unit, for dispatch")
    callback_result: CallbackResult | None = Field(None, description="required for callback")
    rejection_reason: line(40) | None = Field(  # type: ignore[valid-type]
        None, description="required for reject: a code of the configured 不予受理 reasons "
                          "(GET /api/rejection-reasons); free text in `note` only with 'other'")
    expected_version: Version | None = Field(None, description="refuse with 409 unless the ticket is at this "
                                                               "version")


class InvestigationIn(RequestModel):
    note: text(NOTE_MAX_LENGTH, min_length=1) = Field(description="what the investigation (调查核实) found")  # type: ignore[valid-type]


class EventOut(ResponseModel):
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None
    result: str | None = Field(None, description="what the event found, e.g. a callback's satisfaction")


class DeadlineOut(ResponseModel):
    """One deadline the ticket is under; `met_at` is the time of the event that met it."""

    kind: Literal["response", "unit_reply", "complaint_review", "appeal_review", "appeal_investigation",
                  "appeal_resolution", "callback"]
    started_at: datetime
    due_at: datetime
    statutory_data_missing: bool = Field(description="counted Monday–Friday plus overrides because the "
                                                     "statutory calendar has no data for part of the period")
    met_at: datetime | None
    cancelled_at: datetime | None = Field(description="no longer applies (e.g. returned as misrouted)")
    remind_at: datetime = Field(description="催办 from this time while it is open")
    reminded_at: datetime | None
    supervised_at: datetime | None = Field(description="督办: it passed unmet")


class TicketOut(ResponseModel):
    id: int
    number: str
    status: str
    is_draft: bool
    incomplete_reason: str | None
    caller_name: str | None
    phone: str | None
    address: str | None
    call_time: datetime | None
    content: str
    language: str | None
    call_id: str | None
    transcript_ref: str | None
    recording_ref: str | None
    name_recording_ref: str | None
    address_recording_ref: str | None
    call_recording_ref: str | None
    transcript_confidence: float | None = Field(description="mean recognition confidence of the call's words")
    confidential: bool
    request_type: str | None
    topic: str | None
    level: int
    handling_mode: str | None
    unit_id: int | None
    overdue: bool
    received_at: datetime | None
    response_due_at: datetime | None = Field(description="the deadline promised to the citizen (the level's "
                                                         "response, an appeal's resolution), as in `deadlines`")
    callback_due_at: datetime | None
    supervised_at: datetime | None = Field(description="first 督办: on the supervisor's list since then")
    replied_at: datetime | None
    closed_at: datetime | None
    statutory_data_missing: bool = Field(description="one of its deadlines was counted Monday–Friday plus "
                                                     "overrides because the statutory calendar has no data for it")
    deadlines: list[DeadlineOut]
    callback_result: str | None
    reviewed_at: datetime | None = Field(description="when a reviewer checked the call's audio and transcript")
    answer: str | None
    rejection_reason: str | None = Field(description="不予受理: a code of the configured reasons")
    referred_by: str | None
    evasion_flagged_at: datetime | None = Field(description="repeated 推诿 (returned or overdue twice)")
    created_at: datetime
    updated_at: datetime
    version: int


class TicketDetail(TicketOut):
    events: list[EventOut]
    allowed_actions: list[Action]


class TicketPage(BaseModel):
    items: list[TicketOut]
    total: int = Field(description="how many tickets match; when total_exact is false, more than this many")
    total_exact: bool = Field(description="false when the count stopped at `total` (1000, or the end of the "
                                          "requested page if later): more tickets match")
    page: int
    page_size: int


class TransitionRefused(BaseModel):
    detail: str
    status: str
    allowed_actions: list[str]


class UnitIn(RequestModel):
    name: line(100, min_length=1)  # type: ignore[valid-type]
    areas: Labels = []
    categories: Labels = []
    seat_numbers: list[Phone] = Field([], max_length=20, description="remote seats to ring, in order")
    seat_languages: dict[Phone, LanguageCode] = Field({}, max_length=20, description="a seat's announcement "
                                                      "language, e.g. {\"1003\": \"ko\"}; others hear Mandarin")
    working_hours: WorkingHours = "08:30-12:00,13:30-17:30"
    webhook_url: WebhookUrl | None = None


class UnitPatch(RequestModel):
    name: line(100, min_length=1) | None = None  # type: ignore[valid-type]
    areas: Labels | None = None
    categories: Labels | None = None
    seat_numbers: list[Phone] | None = Field(None, max_length=20)
    seat_languages: dict[Phone, LanguageCode] | None = Field(None, max_length=20)
    working_hours: WorkingHours | None = None
    webhook_url: WebhookUrl | None = None


class UnitOut(ResponseModel):
    id: int
    name: str
    areas: list[str]
    categories: list[str]
    seat_numbers: list[str]
    seat_languages: dict[str, str]
    working_hours: str
    webhook_configured: bool = Field(description="催办/督办 are POSTed to the unit's webhook (the URL itself, "
                                                 "which may hold a secret, is not shown)")


class UnitProposalOut(ResponseModel):
    unit_id: int
    unit_name: str
    reasons: list[str] = Field(description="why this unit: each category or area that matched")
    by_category: bool
    by_area: bool


Question = line(500, min_length=1)
Answer = text(CONTENT_MAX_LENGTH, min_length=1)
Keywords = Annotated[list[line(50, min_length=1)], Field(max_length=50)]  # type: ignore[valid-type]


class KnowledgeIn(RequestModel):
    question: Question  # type: ignore[valid-type]
    answer: Answer  # type: ignore[valid-type]
    keywords: Keywords = []
    language: Language = "zh"
    unit_id: Id | None = None


class KnowledgeUnitPatch(RequestModel):
    """What unit staff change in their unit's entry (the unit itself is theirs)."""

    question: Question | None = None  # type: ignore[valid-type]
    answer: Answer | None = None  # type: ignore[valid-type]
    keywords: Keywords | None = None
    language: Language | None = None


class KnowledgePatch(KnowledgeUnitPatch):
    unit_id: Id | None = None


class KnowledgeOut(ResponseModel):
    id: int
    question: str
    answer: str
    keywords: list[str]
    language: str
    unit_id: int | None
    approved: bool = Field(description="reviewed and in use on the phone (a unit's new entry: not before)")
    pending: dict[str, Any] | None = Field(None, description="a unit's edit waiting for review; the phone "
                                                              "keeps the approved text meanwhile")
    submitted_by: str | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    review_note: str | None = None


class HolidayIn(RequestModel):
    is_working_day: bool
    note: line(200) = ""  # type: ignore[valid-type]


class HolidayOut(ResponseModel):
    day: date
    is_working_day: bool
    note: str


class TokenIn(RequestModel):
    name: line(100, min_length=1)  # type: ignore[valid-type]
    role: Literal["operator", "unit_staff", "admin", "reviewer", "supervisor"]
    unit_id: Id | None = Field(None, description="required for unit_staff; a reviewer's unit (none: all units)")


class TokenIssued(BaseModel):
    id: int
    name: str
    role: str
    unit_id: int | None
    token: str = Field(description="shown once; only its SHA-256 is stored")


class TokenOut(ResponseModel):
    """A token as the administrator sees it later: never the token itself."""

    id: int
    name: str
    role: str
    unit_id: int | None
    created_at: datetime
    last_used_at: datetime | None = Field(description="to the minute")
    revoked_at: datetime | None


class ReplyIn(RequestModel):
    """A reply (回复) to the citizen: all four parts are required."""

    handling_unit: line(100, min_length=1) = Field(description="办理单位")  # type: ignore[valid-type]
    handled_at: Timestamp = Field(description="办理时间 (without a UTC offset: Asia/Shanghai)")
    situation: text(4000, min_length=1) = Field(description="办理情况: what was done")  # type: ignore[valid-type]
    result: text(4000, min_length=1) = Field(description="办理结果")  # type: ignore[valid-type]


class ReviewIn(RequestModel):
    decision: Literal["approve", "return"]
    note: Note | None = Field(None, description="required to return a reply: why")


class DeliveryIn(RequestModel):
    delivered: bool = Field(description="the citizen got the reply; false: an attempt that did not reach them")
    note: Note | None = None


class AttachmentOut(ResponseModel):
    id: int
    kind: str
    filename: str
    media_type: str
    size: int
    sha256: str
    created_at: datetime


class ReplyOut(ResponseModel):
    id: int
    ticket_id: int
    handling_unit: str
    handled_at: datetime
    situation: str
    result: str
    author: str
    submitted_at: datetime
    status: Literal["pending_review", "approved", "returned"]
    reviewer: str | None
    reviewed_at: datetime | None
    review_note: str | None
    channel: str | None
    delivered_at: datetime | None
    delivery_note: str | None
    delivery_attempts: int
    attachments: list[AttachmentOut]


class ReplyForDelivery(ReplyOut):
    """An approved reply waiting to reach the citizen, with what the deliverer needs."""

    ticket_number: str
    phone: str | None
    language: str | None


class NotificationOut(ResponseModel):
    """A 催办 (remind), 督办 (supervise) or 推诿 flag (evasion) for a unit (`unit_id` None: the centre)."""

    id: int
    ticket_id: int
    ticket_number: str
    unit_id: int | None
    kind: Literal["remind", "supervise", "evasion"]
    deadline_kind: str | None = Field(description="the deadline reminded or supervised")
    message: str
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    webhook_status: Literal["none", "pending", "sent", "failed"]
    webhook_attempts: int
    webhook_sent_at: datetime | None
    webhook_last_error: str | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    unread: int = Field(description="unread notifications of this reader, all pages")


class SupervisedTicket(ResponseModel):
    """A ticket on the supervisor's list: under 督办, or flagged for repeated 推诿."""

    id: int
    number: str
    status: str
    level: int
    request_type: str | None
    topic: str | None
    unit_id: int | None
    response_due_at: datetime | None
    supervised_at: datetime | None
    evasion_flagged_at: datetime | None
    overdue: bool
    missed_deadlines: list[str] = Field(description="kinds of the deadlines supervised (督办) on this ticket")


class CallbackRequestIn(RequestModel):
    """An operator asks for the callback (回访) now."""

    note: Note | None = Field(None, description="why, kept in the ticket's history")


class CallbackAttemptOut(ResponseModel):
    """One attempt to call the citizen back: when, how it went, the answer and the recordings."""

    id: int
    number: int = Field(description="1, 2, ... of this reply's attempts")
    requested_by: str = Field(description="'callbacks' (the schedule) or the operator who asked")
    state: Literal["pending", "calling", "done"]
    due_at: datetime
    claimed_at: datetime | None = Field(description="when a node started the call")
    ended_at: datetime | None
    node: str | None
    outcome: str | None = Field(description="answered, no_answer, busy, failed, hung_up, silence, not_confirmed, "
                                            "interrupted")
    satisfaction: Literal["满意", "基本满意", "不满意"] | None
    reason_text: str | None = Field(description="the 不满意 reason's transcript, where the language has a model")
    reason_ref: str | None = Field(description="the recorded 不满意 reason")
    recording_ref: str | None = Field(description="the whole call")
    call_id: str | None
    called_number: str | None
    note: str | None
