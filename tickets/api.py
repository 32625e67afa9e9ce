"""The ticket HTTP API (FastAPI). `router` holds the endpoints; `install` mounts it on an application with
its database and rules; `create_app` builds a stand-alone application (tests, or running the API alone).

Service errors become HTTP answers in one place (`open_session`): unknown ticket → 404, invalid or
concurrent transition or a conflict with stored data → 409, bad value → 422 naming the field. Every write
commits before the response.

Unit staff see their own unit's tickets only: another unit's ticket answers 404 exactly as a missing one
(its existence is not confirmed), and SIP details, call ids and recording or transcript references are
never shown to them; on a ticket kept confidential at the citizen's request (GB/T 33358) the name,
address and phone are hidden too and a text search does not match them.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Response, status
from fastapi import Path as UrlPath
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tickets import auth, db, knowledge_review, report, service, stats
from tickets.auth import Principal, issue_token
from tickets.callbacks import CallbackPolicy
from tickets.classify import DEFAULT_RULES
from tickets.lifecycle import Action, InvalidTransition, Status, allowed_actions
from tickets.models import Ticket, utcnow
from tickets.schemas import (MAX_ID, ONE_LINE, Day, HolidayIn, HolidayOut, InvestigationIn, KnowledgeIn, KnowledgeOut,
                             KnowledgePatch,
                             Label, Language, LevelOverride, RequestType, Timestamp, TicketCreate, TicketDetail,
                             TicketFields, TicketOut, TicketPage, TokenIn, TokenIssued, TokenOut, TransitionRefused,
                             TransitionRequest, UnitIn, UnitOut, UnitPatch)
from tickets.service import TicketRules

log = logging.getLogger(__name__)

# What a member unit's staff may do to their own tickets: sign for, work, reply, or send back as misrouted.
# (Their reply goes with its content: POST /api/tickets/{id}/replies.)
UNIT_STAFF_ACTIONS = frozenset({Action.SIGN, Action.START, Action.RETURN_MISROUTED})


@dataclass(frozen=True)
class TicketsContext:
    """What the endpoints need from the application: where the tickets live and which rules apply."""

    session_factory: sessionmaker[Session]
    rules: TicketRules
    callbacks: CallbackPolicy = field(default_factory=CallbackPolicy)  # when callbacks may ring ([callbacks])


@dataclass(frozen=True)
class ApiSettings:
    database_url: str = db.DEFAULT_URL
    bootstrap_admin_token: str | None = None  # stored (hashed) at start so a fresh install can log in
    classification_rules: Path = DEFAULT_RULES


def install(app: FastAPI, context: TicketsContext, prefix: str = "/api") -> None:
    # these build on this module's dependencies
    from tickets.callbacks_api import router as callbacks_router
    from tickets.notifications_api import router as notifications_router
    from tickets.procedures_api import router as procedures_router

    app.state.tickets = context
    app.include_router(router, prefix=prefix)
    app.include_router(procedures_router, prefix=prefix)
    app.include_router(callbacks_router, prefix=prefix)
    app.include_router(notifications_router, prefix=prefix)


def create_app(settings: ApiSettings, rules: TicketRules | None = None) -> FastAPI:
    """A stand-alone ticket API: upgrades the schema, stores the bootstrap admin token, mounts /api."""
    rules = rules or TicketRules.default(settings.classification_rules)
    session_factory = db.open_database(settings.database_url)
    if settings.bootstrap_admin_token:
        with session_factory.begin() as session:
            issue_token(session, "bootstrap admin", "admin", token=settings.bootstrap_admin_token)
    app = FastAPI(title="12345 hotline tickets", version="1")
    install(app, TicketsContext(session_factory, rules))
    return app


# --- dependencies ------------------------------------------------------------------------------------------

async def open_session(request: Request) -> AsyncIterator[Session]:
    """The request's session. async because FastAPI runs a plain `def` dependency with `yield` on a worker
    thread twice (opening and closing): opening a session is bookkeeping, so it stays on the event loop, and
    only closing one that still holds a connection (a rollback on the database) goes to a worker thread."""
    context: TicketsContext = request.app.state.tickets
    session = context.session_factory()
    try:
        yield session
    except Exception as error:
        refusal = _refusal(error)
        if refusal is None:
            raise
        raise refusal from error
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


def _refusal(error: Exception) -> HTTPException | None:
    """The HTTP answer to a service error (None: not one of them); the session is rolled back by closing it."""
    if isinstance(error, InvalidTransition):
        return HTTPException(status.HTTP_409_CONFLICT, detail={
            "message": str(error), "status": str(error.status),
            "allowed_actions": [str(action) for action in error.allowed]})
    if isinstance(error, (service.ConcurrentUpdate, service.Conflict, auth.LastAdminToken)):
        return HTTPException(status.HTTP_409_CONFLICT, detail={"message": str(error)})
    if isinstance(error, IntegrityError):  # a constraint the service did not check first: still the client's
        log.warning("request refused by a database constraint: %s", error.orig)
        return HTTPException(status.HTTP_409_CONFLICT, detail={"message": "the request conflicts with stored data"})
    if isinstance(error, service.KeyReused):
        return HTTPException(422, detail=[{"loc": ["header", "Idempotency-Key"], "type": "value_error",
                                           "msg": f"already used for ticket {error.ticket.number} with other "
                                                  "fields; use a new key for a new request"}])
    if isinstance(error, service.NotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error))
    if isinstance(error, ValueError):
        field, _, message = str(error).partition(": ")
        return HTTPException(422, detail=[{"loc": ["body", field], "msg": message or str(error),
                                           "type": "value_error"}])
    return None


SessionDep = Annotated[Session, Depends(open_session)]
_bearer = HTTPBearer(auto_error=False, description="an API token issued by an administrator")


def current_principal(request: Request, session: SessionDep,
                      credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    """The token's principal, looked up on every request so that a revoked token is refused at once."""
    found = auth.identify(session, credentials.credentials) if credentials else None
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    principal, last_used_at = found
    now = utcnow()
    if auth.needs_touch(last_used_at, now):  # its own short transaction: reads stay reads
        with request.app.state.tickets.session_factory.begin() as touching:
            auth.touch(touching, principal.token_id, now)
    return principal


def require(*roles: str) -> Any:
    # async: pure logic, run on the event loop instead of a thread-pool hop per request (see rules_of)
    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"the {principal.role} role may not do this")
        return principal
    return Depends(check)


AnyRole = Annotated[Principal, require("operator", "unit_staff", "admin", "reviewer", "supervisor")]
Operator = Annotated[Principal, require("operator", "admin")]
Admin = Annotated[Principal, require("admin")]


async def rules_of(request: Request) -> TicketRules:
    """async because it does no I/O: FastAPI runs a plain `def` dependency in the thread pool, and those
    hand-overs were a visible share of each request's CPU time."""
    return request.app.state.tickets.rules


RulesDep = Annotated[TicketRules, Depends(rules_of)]

router = APIRouter()
NOT_FOUND = {404: {"description": "no such ticket (or one of another unit, for unit staff)"}}
RowId = Annotated[int, UrlPath(ge=1, le=MAX_ID)]


def visible_ticket(session: Session, ticket_id: int, principal: Principal) -> Ticket:
    """The ticket, if this principal may see it; another unit's ticket is as unknown as a missing one."""
    return _visible(service.get_ticket(session, ticket_id), principal, f"no ticket with id {ticket_id}")


def _visible(ticket: Ticket, principal: Principal, missing: str) -> Ticket:
    if not principal.may_see(ticket):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=missing)
    return ticket


# Where the audio and transcripts lie on the server, and the call's identities: never in unit staff's JSON
# (the console serves the audio they may hear by name, see console/catalog.py).
CALL_DETAIL_FIELDS = ("call_id", "transcript_ref", "recording_ref", "name_recording_ref", "address_recording_ref",
                      "call_recording_ref")
# What identifies the citizen, hidden from the unit on a ticket kept confidential at their request (GB/T 33358):
# the fields, and the recordings and transcript in which the citizen says them.
IDENTITY_FIELDS = ("caller_name", "phone", "address", "name_recording_ref", "address_recording_ref",
                   "call_recording_ref", "transcript_ref")


def _summary(ticket: Ticket, principal: Principal) -> TicketOut:
    summary = TicketOut.model_validate(ticket)
    if principal.role == "unit_staff":
        hidden = CALL_DETAIL_FIELDS + (IDENTITY_FIELDS if ticket.confidential else ())
        summary = summary.model_copy(update=dict.fromkeys(hidden))
    return summary


def _detail(ticket: Ticket, principal: Principal) -> TicketDetail:
    return TicketDetail.model_validate({**_summary(ticket, principal).model_dump(), "events": ticket.events,
                                        "allowed_actions": allowed_actions(Status(ticket.status))})


def json_response(model: BaseModel, status_code: int) -> Response:
    """`model` serialised on the endpoint's own worker thread: FastAPI validates and serialises what a
    plain `def` endpoint returns on a further thread hop, which showed in every request's CPU time."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


def _fields(body: TicketFields) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True)
    if values.get("call_time") is not None:
        values["call_time"] = service.as_utc(values["call_time"])
    return values


# --- tickets -----------------------------------------------------------------------------------------------

@router.post("/tickets", response_model=TicketDetail, status_code=201, tags=["tickets"],
             responses={200: {"model": TicketDetail, "description": "replay of an earlier Idempotency-Key"}})
def create_ticket(body: TicketCreate, session: SessionDep, principal: Operator, rules: RulesDep,
                  idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
                  ) -> Response:
    """Open a ticket. Level, type and topic left out are proposed from the content. A retried request with the
    same `Idempotency-Key` returns the original ticket (200) instead of creating a second one. Keys starting
    with `call:` are the IVR's own (its drafts) and refused."""
    if idempotency_key is not None and idempotency_key.startswith(service.INTAKE_KEY_PREFIX):
        raise HTTPException(422, detail=[{"loc": ["header", "Idempotency-Key"], "type": "value_error",
                                          "msg": f"the prefix {service.INTAKE_KEY_PREFIX!r} is reserved for the "
                                                 f"IVR's drafts"}])
    fields = _fields(body)
    draft = fields.pop("draft", False)
    ticket, created = service.create_ticket(session, fields, rules=rules, actor=principal.name,
                                            idempotency_key=idempotency_key, draft=draft)
    session.commit()
    return json_response(_detail(ticket, principal), status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@router.get("/tickets", response_model=TicketPage, tags=["tickets"])
def list_tickets(session: SessionDep, principal: AnyRole,
                 status_: Annotated[list[Status] | None, Query(alias="status")] = None,
                 level: Annotated[int | None, Query(ge=1, le=4)] = None,
                 unit_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                 request_type: RequestType | None = None,
                 topic: Label | None = None,
                 overdue: bool | None = None,
                 created_from: Timestamp | None = None,
                 created_to: Timestamp | None = None,
                 q: Annotated[str | None, Query(min_length=1, max_length=200, pattern=ONE_LINE,
                                                description="text in content, topic, name or address; or "
                                                            "digits of a number or phone")] = None,
                 sort: Annotated[str, Query(pattern=rf"^-?({'|'.join(service.SORTABLE_FIELDS)})$")] = "-created_at",
                 page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                 page_size: Annotated[int, Query(ge=1, le=200)] = 50) -> TicketPage:
    """Search tickets. Unit staff only ever see their own unit's tickets."""
    if principal.unit_scoped:
        if unit_id not in (None, principal.unit_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="unit staff see only their unit's tickets")
        unit_id = principal.unit_id
    query = service.TicketQuery(
        statuses=status_ or (), level=level, unit_id=unit_id, request_type=request_type, topic=topic,
        overdue=overdue, created_from=created_from and service.as_utc(created_from),
        created_to=created_to and service.as_utc(created_to), text=q, sort=sort, page=page, page_size=page_size,
        confidential_identity_hidden=principal.role == "unit_staff", count_limit=service.INTERACTIVE_COUNT_LIMIT)
    found = service.list_tickets(session, query)
    return TicketPage(items=[_summary(t, principal) for t in found.items], total=found.total,
                      total_exact=found.total_exact, page=page, page_size=page_size)


@router.get("/tickets/by-number/{number}", response_model=TicketDetail, tags=["tickets"], responses=NOT_FOUND)
def get_ticket_by_number(number: Annotated[str, UrlPath(pattern=r"^[0-9]{10}$")], session: SessionDep,
                         principal: AnyRole) -> TicketDetail:
    """Look a ticket up by the number the caller was given."""
    ticket = _visible(service.get_by_number(session, number), principal, f"no ticket with number {number}")
    return _detail(ticket, principal)


@router.get("/tickets/{ticket_id}", response_model=TicketDetail, tags=["tickets"], responses=NOT_FOUND)
def get_ticket(ticket_id: RowId, session: SessionDep, principal: AnyRole) -> TicketDetail:
    """A ticket with its full history and the actions allowed now."""
    return _detail(visible_ticket(session, ticket_id, principal), principal)


@router.patch("/tickets/{ticket_id}", response_model=TicketDetail, tags=["tickets"],
              responses={**NOT_FOUND, 409: {"description": "the unit of a dispatched ticket changes by dispatch"}})
def edit_ticket(ticket_id: RowId, body: TicketFields, session: SessionDep, principal: Operator,
                rules: RulesDep) -> TicketDetail:
    """Correct or complete a ticket's fields (e.g. a draft left by a caller who hung up). The unit can be
    set here only until the ticket is dispatched; then it moves through return_misrouted and dispatch."""
    ticket = service.update_fields(session, service.get_ticket(session, ticket_id), _fields(body),
                                   actor=principal.name, rules=rules)
    session.commit()
    return _detail(ticket, principal)


@router.post("/tickets/{ticket_id}/transitions", response_model=TicketDetail, tags=["tickets"],
             responses={**NOT_FOUND, 409: {"model": TransitionRefused,
                                           "description": "not allowed now, or changed concurrently"}})
def apply_transition(ticket_id: RowId, body: TransitionRequest, session: SessionDep, principal: AnyRole,
                     rules: RulesDep) -> TicketDetail:
    """Move a ticket through its lifecycle. An action not allowed in the current status is refused with 409
    and the list of allowed actions; when two writers race, one wins and the other gets 409."""
    visible_ticket(session, ticket_id, principal)
    if principal.role in ("reviewer", "supervisor"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"the {principal.role} role may not {body.action}")
    if principal.role == "unit_staff" and body.action not in UNIT_STAFF_ACTIONS:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"unit staff may not {body.action}")
    ticket = service.transition(session, ticket_id, body.action, actor=principal.name, rules=rules,
                                note=body.note, unit_id=body.unit_id, callback_result=body.callback_result,
                                rejection_reason=body.rejection_reason,
                                expected_version=body.expected_version)
    session.commit()
    return _detail(ticket, principal)


@router.post("/tickets/{ticket_id}/investigation", response_model=TicketDetail, tags=["tickets"],
             responses={**NOT_FOUND, 409: {"description": "no open appeal_investigation deadline"}})
def record_investigation(ticket_id: RowId, body: InvestigationIn, session: SessionDep, principal: AnyRole,
                         rules: RulesDep) -> TicketDetail:
    """申诉: record that the investigation (调查核实) is done and what it found; meets the appeal's
    `appeal_investigation` deadline (3 working days) before the reply."""
    visible_ticket(session, ticket_id, principal)
    ticket = service.record_investigation(session, ticket_id, actor=principal.name, note=body.note, rules=rules)
    session.commit()
    return _detail(ticket, principal)


@router.patch("/tickets/{ticket_id}/level", response_model=TicketDetail, tags=["tickets"], responses=NOT_FOUND)
def override_level(ticket_id: RowId, body: LevelOverride, session: SessionDep, principal: Operator,
                   rules: RulesDep) -> TicketDetail:
    """Override the proposed response level; the deadline follows and the history keeps the change."""
    ticket = service.override_level(session, ticket_id, body.level, actor=principal.name, rules=rules,
                                    note=body.note)
    session.commit()
    return _detail(ticket, principal)


# --- member units ------------------------------------------------------------------------------------------

@router.get("/units", response_model=list[UnitOut], tags=["units"])
def list_units(session: SessionDep, principal: AnyRole) -> Any:
    return service.list_units(session)


@router.post("/units", response_model=UnitOut, status_code=201, tags=["units"])
def create_unit(body: UnitIn, session: SessionDep, principal: Admin) -> Any:
    unit = service.create_unit(session, body.model_dump())
    session.commit()
    return unit


@router.get("/units/{unit_id}", response_model=UnitOut, tags=["units"])
def get_unit(unit_id: RowId, session: SessionDep, principal: AnyRole) -> Any:
    return service.get_unit(session, unit_id)


@router.patch("/units/{unit_id}", response_model=UnitOut, tags=["units"])
def update_unit(unit_id: RowId, body: UnitPatch, session: SessionDep, principal: Admin) -> Any:
    unit = service.update_unit(session, unit_id, body.model_dump(exclude_unset=True))
    session.commit()
    return unit


@router.delete("/units/{unit_id}", status_code=204, tags=["units"])
def delete_unit(unit_id: RowId, session: SessionDep, principal: Admin) -> None:
    service.delete_unit(session, unit_id)
    session.commit()


# --- knowledge base ----------------------------------------------------------------------------------------

@router.get("/knowledge", response_model=list[KnowledgeOut], tags=["knowledge"])
def list_knowledge(session: SessionDep, principal: AnyRole,
                   q: Annotated[str | None, Query(max_length=500, pattern=ONE_LINE, description="a question or sentence; "
                                                  "entries whose keywords occur in it, best first")] = None,
                   language: Language | None = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Any:
    if q:
        return service.search_knowledge(session, q, language=language, limit=limit)
    return service.list_knowledge(session, language=language, limit=limit)


KnowledgeWriter = Annotated[Principal, require("operator", "admin", "unit_staff")]


@router.post("/knowledge", response_model=KnowledgeOut, status_code=201, tags=["knowledge"])
def create_knowledge(body: KnowledgeIn, session: SessionDep, principal: KnowledgeWriter) -> Any:
    """An operator's entry is in use at once; a unit's (unit staff: their own unit) waits for an operator's
    review before the phone gives it (POST /api/knowledge/{id}/review)."""
    if principal.role == "unit_staff":
        fields = body.model_dump(exclude={"unit_id"})
        if body.unit_id not in (None, principal.unit_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="unit staff write their own unit's entries")
        entry = knowledge_review.submit_new(session, fields, unit_id=principal.unit_id, actor=principal.name)
    else:
        entry = service.create_knowledge(session, body.model_dump())
    session.commit()
    return entry


@router.get("/knowledge/{entry_id}", response_model=KnowledgeOut, tags=["knowledge"])
def get_knowledge(entry_id: RowId, session: SessionDep, principal: AnyRole) -> Any:
    return service.get_knowledge(session, entry_id)


@router.patch("/knowledge/{entry_id}", response_model=KnowledgeOut, tags=["knowledge"])
def update_knowledge(entry_id: RowId, body: KnowledgePatch, session: SessionDep, principal: KnowledgeWriter) -> Any:
    """An operator's edit applies at once; a unit's edit of its own entry waits for review (`pending`) while
    the phone keeps the approved text. Another unit's entry is 404 to unit staff."""
    fields = body.model_dump(exclude_unset=True)
    if principal.role == "unit_staff":
        entry = knowledge_review.submit_edit(session, entry_id, fields, unit_id=principal.unit_id,
                                             actor=principal.name)
    else:
        entry = service.update_knowledge(session, entry_id, fields)
    session.commit()
    return entry


@router.delete("/knowledge/{entry_id}", status_code=204, tags=["knowledge"])
def delete_knowledge(entry_id: RowId, session: SessionDep, principal: Operator) -> None:
    service.delete_knowledge(session, entry_id)
    session.commit()


# --- holiday overrides -------------------------------------------------------------------------------------

@router.get("/holidays", response_model=list[HolidayOut], tags=["calendar"])
def list_holidays(session: SessionDep, principal: AnyRole) -> Any:
    return service.list_holiday_overrides(session)


@router.put("/holidays/{day}", response_model=HolidayOut, tags=["calendar"])
def set_holiday(day: date, body: HolidayIn, session: SessionDep, principal: Admin) -> Any:
    """Declare a day a working day or a day off, over the statutory calendar (deadlines computed later use it)."""
    override = service.set_holiday_override(session, day, body.is_working_day, body.note)
    session.commit()
    return override


@router.delete("/holidays/{day}", status_code=204, tags=["calendar"])
def delete_holiday(day: date, session: SessionDep, principal: Admin) -> None:
    service.delete_holiday_override(session, day)
    session.commit()


# --- statistics --------------------------------------------------------------------------------------------

def _period(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = service.as_utc(end) if end else service.utcnow()
    return (service.as_utc(start) if start else end - timedelta(days=30)), end


Start = Annotated[Timestamp | None, Query(description="period start (default: 30 days before end)")]
End = Annotated[Timestamp | None, Query(description="period end, exclusive (default: now)")]
UnitFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get("/stats/rates", tags=["statistics"])
def three_rates(session: SessionDep, principal: Operator, start: Start = None, end: End = None,
                unit_id: UnitFilter = None) -> dict[str, Any]:
    """Response, resolution and satisfaction rates of tickets received in the period (definitions in
    tickets/stats.py), for the centre or one unit."""
    return stats.three_rates(session, *_period(start, end), unit_id=unit_id).as_dict()


@router.get("/stats/rates/by-unit", tags=["statistics"])
def three_rates_by_unit(session: SessionDep, principal: Operator, start: Start = None,
                        end: End = None) -> list[dict[str, Any]]:
    return [rates.as_dict() for rates in stats.three_rates_per_unit(session, *_period(start, end))]


@router.get("/stats/counts", tags=["statistics"])
def counts(session: SessionDep, principal: Operator,
           by: Annotated[str, Query(pattern="^(request_type|topic|level)$")] = "request_type",
           start: Start = None, end: End = None) -> dict[str, int]:
    return stats.counts_by(session, by, *_period(start, end))


@router.get("/stats/hot-topics", tags=["statistics"])
def hot_topics(session: SessionDep, principal: Operator, start: Start = None, end: End = None,
               limit: Annotated[int, Query(ge=1, le=100)] = 10) -> list[dict[str, Any]]:
    return [{"topic": topic, "count": count}
            for topic, count in stats.hot_topics(session, *_period(start, end), limit=limit)]


Centre = Annotated[Principal, require("operator", "admin", "supervisor")]


@router.get("/reports/{period}", tags=["statistics"])
def periodic_report(period: Literal["daily", "weekly"], session: SessionDep, principal: Centre,
                    day: Annotated[Day, Query(alias="date", description="a day of the period (Asia/Shanghai); "
                                                                        "weekly: its Monday-to-Sunday week")],
                    ) -> dict[str, Any]:
    """The periodic report (tickets/report.py): the three rates of the tickets received in the period, by
    unit too, the hot topics and the units that let deadlines pass. The console prints it at /reports."""
    return report.build(session, period, day, service.utcnow())


@router.get("/stats/overdue", response_model=list[TicketOut], tags=["statistics"])
def overdue(session: SessionDep, principal: Operator, unit_id: UnitFilter = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    return stats.overdue_tickets(session, service.utcnow(), unit_id=unit_id, limit=limit)


# --- tokens ------------------------------------------------------------------------------------------------

@router.post("/tokens", response_model=TokenIssued, status_code=201, tags=["auth"])
def create_token(body: TokenIn, session: SessionDep, principal: Admin) -> TokenIssued:
    """Issue an API token; the clear token is in this answer only."""
    record, token = issue_token(session, body.name, body.role, body.unit_id)
    session.commit()
    return TokenIssued(id=record.id, name=record.name, role=record.role, unit_id=record.unit_id, token=token)


@router.get("/tokens", response_model=list[TokenOut], tags=["auth"])
def list_tokens(session: SessionDep, principal: Admin) -> Any:
    """Every token ever issued, revoked ones included, without the tokens themselves."""
    return auth.list_tokens(session)


@router.delete("/tokens/{token_id}", response_model=TokenOut, tags=["auth"],
               responses={404: {"description": "no such token"},
                          409: {"description": "the last administrator token"}})
def revoke_token(token_id: RowId, session: SessionDep, principal: Admin) -> Any:
    """Revoke a token: from the next request on it answers 401, on every node. Revoking again changes
    nothing; the last administrator token cannot be revoked (issue another first)."""
    record = auth.revoke_token(session, token_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no token with id {token_id}")
    session.commit()
    return record
