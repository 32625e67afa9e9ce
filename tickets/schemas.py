"""Request and response bodies of the ticket API. Requests forbid unknown fields, so a typo is a 422 that
names the field instead of a silently ignored value."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tickets.lifecycle import Action

RequestType = Literal["咨询", "求助", "投诉", "举报", "建议", "表扬", "申诉"]
HandlingMode = Literal["答复", "转办", "呈报"]
CallbackResult = Literal["满意", "基本满意", "不满意", "unreachable"]
Level = Annotated[int, Field(ge=1, le=4, description="response level: 1 emergency 2 h, 2 basic supply 24 h, "
                                                      "3 other 7 days, 4 complex 15 days")]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9][0-9 -]{2,38}$", description="digits, spaces, dashes")]
WorkingHours = Annotated[str, Field(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}(,\d{2}:\d{2}-\d{2}:\d{2})*$",
                                    examples=["08:30-12:00,13:30-17:30"])]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TicketFields(RequestModel):
    """The fields an operator edits; all optional so that PATCH can send only what changed."""

    caller_name: str | None = Field(None, max_length=100)
    phone: Phone | None = None
    address: str | None = Field(None, max_length=300)
    call_time: datetime | None = None
    content: str | None = None
    language: str | None = Field(None, max_length=10)
    transcript_ref: str | None = Field(None, max_length=500)
    recording_ref: str | None = Field(None, max_length=500)
    name_recording_ref: str | None = Field(None, max_length=500)
    address_recording_ref: str | None = Field(None, max_length=500)
    call_recording_ref: str | None = Field(None, max_length=500)
    confidential: bool | None = None
    request_type: RequestType | None = None
    topic: str | None = Field(None, max_length=100)
    handling_mode: HandlingMode | None = None
    unit_id: int | None = None
    call_id: str | None = Field(None, max_length=200)
    answer: str | None = Field(None, max_length=4000, description="the 答复 the centre gave (e.g. from the "
                                                                 "knowledge base)")
    referred_by: str | None = Field(None, max_length=40, description="the desk that handed the caller over, "
                                                                     "e.g. 110")


class TicketCreate(TicketFields):
    content: str = Field(min_length=1)
    level: Level | None = Field(None, description="omit to let the keyword rules propose it")
    draft: bool = Field(False, description="save as a draft (e.g. the caller hung up halfway)")


class LevelOverride(RequestModel):
    level: Level
    note: str | None = None


class TransitionRequest(RequestModel):
    action: Action
    note: str | None = None
    unit_id: int | None = Field(None, description="the responsible unit, for dispatch")
    callback_result: CallbackResult | None = Field(None, description="required for callback")
    expected_version: int | None = Field(None, description="refuse with 409 unless the ticket is at this version")


class InvestigationIn(RequestModel):
    note: str = Field(min_length=1, description="what the investigation (调查核实) found")


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
    total: int
    page: int
    page_size: int


class TransitionRefused(BaseModel):
    detail: str
    status: str
    allowed_actions: list[str]


class UnitIn(RequestModel):
    name: str = Field(min_length=1, max_length=100)
    areas: list[str] = []
    categories: list[str] = []
    seat_numbers: list[Phone] = Field([], description="remote seats to ring, in order")
    working_hours: WorkingHours = "08:30-12:00,13:30-17:30"


class UnitPatch(RequestModel):
    name: str | None = Field(None, min_length=1, max_length=100)
    areas: list[str] | None = None
    categories: list[str] | None = None
    seat_numbers: list[Phone] | None = None
    working_hours: WorkingHours | None = None


class UnitOut(ResponseModel):
    id: int
    name: str
    areas: list[str]
    categories: list[str]
    seat_numbers: list[str]
    working_hours: str


class KnowledgeIn(RequestModel):
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    keywords: list[str] = []
    language: str = Field("zh", max_length=10)
    unit_id: int | None = None


class KnowledgePatch(RequestModel):
    question: str | None = Field(None, min_length=1)
    answer: str | None = Field(None, min_length=1)
    keywords: list[str] | None = None
    language: str | None = Field(None, max_length=10)
    unit_id: int | None = None


class KnowledgeOut(ResponseModel):
    id: int
    question: str
    answer: str
    keywords: list[str]
    language: str
    unit_id: int | None


class HolidayIn(RequestModel):
    is_working_day: bool
    note: str = Field("", max_length=200)


class HolidayOut(ResponseModel):
    day: date
    is_working_day: bool
    note: str


class TokenIn(RequestModel):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["operator", "unit_staff", "admin"]
    unit_id: int | None = Field(None, description="required for unit_staff")


class TokenIssued(BaseModel):
    id: int
    name: str
    role: str
    unit_id: int | None
    token: str = Field(description="shown once; only its SHA-256 is stored")
