"""The ticket HTTP API (FastAPI). `router` holds the endpoints; `install` mounts it on an application with
its database and rules; `create_app` builds a stand-alone application (tests, or running the API alone).

Service errors become HTTP answers in one place (`open_session`): unknown ticket → 404, invalid or
concurrent transition → 409, bad value → 422 naming the field. Every write commits before the response.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from tickets import db, service, stats
from tickets.auth import Principal, authenticate, issue_token
from tickets.classify import DEFAULT_RULES
from tickets.lifecycle import Action, InvalidTransition, Status, allowed_actions
from tickets.models import Ticket
from tickets.schemas import (HolidayIn, HolidayOut, InvestigationIn, KnowledgeIn, KnowledgeOut, KnowledgePatch, LevelOverride,
                             RequestType, TicketCreate, TicketDetail, TicketFields, TicketOut, TicketPage,
                             TokenIn, TokenIssued, TransitionRefused, TransitionRequest, UnitIn, UnitOut, UnitPatch)
from tickets.service import TicketRules

# What a member unit's staff may do to their own tickets: sign for, work, reply, or send back as misrouted.
UNIT_STAFF_ACTIONS = frozenset({Action.SIGN, Action.START, Action.REPLY, Action.RETURN_MISROUTED})


@dataclass(frozen=True)
class TicketsContext:
    """What the endpoints need from the application: where the tickets live and which rules apply."""

    session_factory: sessionmaker[Session]
    rules: TicketRules


@dataclass(frozen=True)
class ApiSettings:
    database_url: str = db.DEFAULT_URL
    bootstrap_admin_token: str | None = None  # stored (hashed) at start so a fresh install can log in
    classification_rules: Path = DEFAULT_RULES


def install(app: FastAPI, context: TicketsContext, prefix: str = "/api") -> None:
    app.state.tickets = context
    app.include_router(router, prefix=prefix)


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

def open_session(request: Request) -> Iterator[Session]:
    context: TicketsContext = request.app.state.tickets
    with context.session_factory() as session:
        try:
            yield session
        except InvalidTransition as error:
            session.rollback()
            raise HTTPException(status.HTTP_409_CONFLICT, detail={
                "message": str(error), "status": str(error.status),
                "allowed_actions": [str(action) for action in error.allowed]}) from error
        except (service.ConcurrentUpdate, service.Conflict) as error:
            session.rollback()
            raise HTTPException(status.HTTP_409_CONFLICT, detail={"message": str(error)}) from error
        except service.NotFound as error:
            session.rollback()
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error)) from error
        except ValueError as error:
            session.rollback()
            field, _, message = str(error).partition(": ")
            raise HTTPException(422, detail=[
                {"loc": ["body", field], "msg": message or str(error), "type": "value_error"}]) from error


SessionDep = Annotated[Session, Depends(open_session)]
_bearer = HTTPBearer(auto_error=False, description="an API token issued by an administrator")


def current_principal(session: SessionDep,
                      credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    principal = authenticate(session, credentials.credentials) if credentials else None
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    return principal


def require(*roles: str) -> Any:
    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"the {principal.role} role may not do this")
        return principal
    return Depends(check)


AnyRole = Annotated[Principal, require("operator", "unit_staff", "admin")]
Operator = Annotated[Principal, require("operator", "admin")]
Admin = Annotated[Principal, require("admin")]


def rules_of(request: Request) -> TicketRules:
    return request.app.state.tickets.rules


RulesDep = Annotated[TicketRules, Depends(rules_of)]

router = APIRouter()
NOT_FOUND = {404: {"description": "no such ticket"}}


def _visible(ticket: Ticket, principal: Principal) -> Ticket:
    if not principal.may_see(ticket):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="this ticket belongs to another unit")
    return ticket


# What identifies the citizen; hidden from the unit on a ticket kept confidential at their request (GB/T 33358).
IDENTITY_FIELDS = ("caller_name", "phone", "address", "name_recording_ref", "address_recording_ref",
                   "call_recording_ref", "transcript_ref")


def _summary(ticket: Ticket, principal: Principal) -> TicketOut:
    summary = TicketOut.model_validate(ticket)
    if ticket.confidential and principal.role == "unit_staff":
        summary = summary.model_copy(update=dict.fromkeys(IDENTITY_FIELDS))
    return summary


def _detail(ticket: Ticket, principal: Principal) -> TicketDetail:
    return TicketDetail.model_validate({**_summary(ticket, principal).model_dump(), "events": ticket.events,
                                        "allowed_actions": allowed_actions(Status(ticket.status))})


def _fields(body: TicketFields) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True)
    if values.get("call_time") is not None:
        values["call_time"] = service.as_utc(values["call_time"])
    return values


# --- tickets -----------------------------------------------------------------------------------------------

@router.post("/tickets", response_model=TicketDetail, status_code=201, tags=["tickets"],
             responses={200: {"model": TicketDetail, "description": "replay of an earlier Idempotency-Key"}})
def create_ticket(body: TicketCreate, session: SessionDep, principal: Operator, rules: RulesDep,
                  response: Response,
                  idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
                  ) -> TicketDetail:
    """Open a ticket. Level, type and topic left out are proposed from the content. A retried request with the
    same `Idempotency-Key` returns the original ticket (200) instead of creating a second one."""
    fields = _fields(body)
    draft = fields.pop("draft", False)
    ticket, created = service.create_ticket(session, fields, rules=rules, actor=principal.name,
                                            idempotency_key=idempotency_key, draft=draft)
    session.commit()
    if not created:
        response.status_code = status.HTTP_200_OK
    return _detail(ticket, principal)


@router.get("/tickets", response_model=TicketPage, tags=["tickets"])
def list_tickets(session: SessionDep, principal: AnyRole,
                 status_: Annotated[list[Status] | None, Query(alias="status")] = None,
                 level: Annotated[int | None, Query(ge=1, le=4)] = None,
                 unit_id: int | None = None,
                 request_type: RequestType | None = None,
                 topic: str | None = None,
                 overdue: bool | None = None,
                 created_from: datetime | None = None,
                 created_to: datetime | None = None,
                 q: Annotated[str | None, Query(max_length=200, description="text in content, name, "
                                                "address, topic, number or phone")] = None,
                 sort: Annotated[str, Query(pattern=rf"^-?({'|'.join(service.SORTABLE_FIELDS)})$")] = "-created_at",
                 page: Annotated[int, Query(ge=1)] = 1,
                 page_size: Annotated[int, Query(ge=1, le=200)] = 50) -> TicketPage:
    """Search tickets. Unit staff only ever see their own unit's tickets."""
    if principal.role == "unit_staff":
        if unit_id not in (None, principal.unit_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="unit staff see only their unit's tickets")
        unit_id = principal.unit_id
    query = service.TicketQuery(
        statuses=status_ or (), level=level, unit_id=unit_id, request_type=request_type, topic=topic,
        overdue=overdue, created_from=created_from and service.as_utc(created_from),
        created_to=created_to and service.as_utc(created_to), text=q, sort=sort, page=page, page_size=page_size)
    items, total = service.list_tickets(session, query)
    return TicketPage(items=[_summary(t, principal) for t in items], total=total, page=page,
                      page_size=page_size)


@router.get("/tickets/by-number/{number}", response_model=TicketDetail, tags=["tickets"], responses=NOT_FOUND)
def get_ticket_by_number(number: str, session: SessionDep, principal: AnyRole) -> TicketDetail:
    """Look a ticket up by the number the caller was given."""
    return _detail(_visible(service.get_by_number(session, number), principal), principal)


@router.get("/tickets/{ticket_id}", response_model=TicketDetail, tags=["tickets"], responses=NOT_FOUND)
def get_ticket(ticket_id: int, session: SessionDep, principal: AnyRole) -> TicketDetail:
    """A ticket with its full history and the actions allowed now."""
    return _detail(_visible(service.get_ticket(session, ticket_id), principal), principal)


@router.patch("/tickets/{ticket_id}", response_model=TicketDetail, tags=["tickets"], responses=NOT_FOUND)
def edit_ticket(ticket_id: int, body: TicketFields, session: SessionDep, principal: Operator,
                rules: RulesDep) -> TicketDetail:
    """Correct or complete a ticket's fields (e.g. a draft left by a caller who hung up)."""
    ticket = service.update_fields(session, service.get_ticket(session, ticket_id), _fields(body),
                                   actor=principal.name, rules=rules)
    session.commit()
    return _detail(ticket, principal)


@router.post("/tickets/{ticket_id}/transitions", response_model=TicketDetail, tags=["tickets"],
             responses={**NOT_FOUND, 409: {"model": TransitionRefused,
                                           "description": "not allowed now, or changed concurrently"}})
def apply_transition(ticket_id: int, body: TransitionRequest, session: SessionDep, principal: AnyRole,
                     rules: RulesDep) -> TicketDetail:
    """Move a ticket through its lifecycle. An action not allowed in the current status is refused with 409
    and the list of allowed actions; when two writers race, one wins and the other gets 409."""
    _visible(service.get_ticket(session, ticket_id), principal)
    if principal.role == "unit_staff" and body.action not in UNIT_STAFF_ACTIONS:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"unit staff may not {body.action}")
    ticket = service.transition(session, ticket_id, body.action, actor=principal.name, rules=rules,
                                note=body.note, unit_id=body.unit_id, callback_result=body.callback_result,
                                expected_version=body.expected_version)
    session.commit()
    return _detail(ticket, principal)


@router.post("/tickets/{ticket_id}/investigation", response_model=TicketDetail, tags=["tickets"],
             responses={**NOT_FOUND, 409: {"description": "no open appeal_investigation deadline"}})
def record_investigation(ticket_id: int, body: InvestigationIn, session: SessionDep, principal: AnyRole,
                         rules: RulesDep) -> TicketDetail:
    """申诉: record that the investigation (调查核实) is done and what it found; meets the appeal's
    `appeal_investigation` deadline (3 working days) before the reply."""
    _visible(service.get_ticket(session, ticket_id), principal)
    ticket = service.record_investigation(session, ticket_id, actor=principal.name, note=body.note, rules=rules)
    session.commit()
    return _detail(ticket, principal)


@router.patch("/tickets/{ticket_id}/level", response_model=TicketDetail, tags=["tickets"], responses=NOT_FOUND)
def override_level(ticket_id: int, body: LevelOverride, session: SessionDep, principal: Operator,
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
def get_unit(unit_id: int, session: SessionDep, principal: AnyRole) -> Any:
    return service.get_unit(session, unit_id)


@router.patch("/units/{unit_id}", response_model=UnitOut, tags=["units"])
def update_unit(unit_id: int, body: UnitPatch, session: SessionDep, principal: Admin) -> Any:
    unit = service.update_unit(session, unit_id, body.model_dump(exclude_unset=True))
    session.commit()
    return unit


@router.delete("/units/{unit_id}", status_code=204, tags=["units"])
def delete_unit(unit_id: int, session: SessionDep, principal: Admin) -> None:
    service.delete_unit(session, unit_id)
    session.commit()


# --- knowledge base ----------------------------------------------------------------------------------------

@router.get("/knowledge", response_model=list[KnowledgeOut], tags=["knowledge"])
def list_knowledge(session: SessionDep, principal: AnyRole,
                   q: Annotated[str | None, Query(max_length=500, description="a question or sentence; "
                                                  "entries whose keywords occur in it, best first")] = None,
                   language: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Any:
    if q:
        return service.search_knowledge(session, q, language=language, limit=limit)
    return service.list_knowledge(session, language=language, limit=limit)


@router.post("/knowledge", response_model=KnowledgeOut, status_code=201, tags=["knowledge"])
def create_knowledge(body: KnowledgeIn, session: SessionDep, principal: Operator) -> Any:
    entry = service.create_knowledge(session, body.model_dump())
    session.commit()
    return entry


@router.get("/knowledge/{entry_id}", response_model=KnowledgeOut, tags=["knowledge"])
def get_knowledge(entry_id: int, session: SessionDep, principal: AnyRole) -> Any:
    return service.get_knowledge(session, entry_id)


@router.patch("/knowledge/{entry_id}", response_model=KnowledgeOut, tags=["knowledge"])
def update_knowledge(entry_id: int, body: KnowledgePatch, session: SessionDep, principal: Operator) -> Any:
    entry = service.update_knowledge(session, entry_id, body.model_dump(exclude_unset=True))
    session.commit()
    return entry


@router.delete("/knowledge/{entry_id}", status_code=204, tags=["knowledge"])
def delete_knowledge(entry_id: int, session: SessionDep, principal: Operator) -> None:
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


def _rates(rates: stats.ThreeRates) -> dict[str, Any]:
    return {"unit_id": rates.unit_id, "unit_name": rates.unit_name, "received": rates.received,
            "responded_in_time": rates.responded_in_time, "resolved": rates.resolved,
            "callbacks_reached": rates.callbacks_reached, "satisfied": rates.satisfied,
            "response_rate": rates.response_rate, "resolution_rate": rates.resolution_rate,
            "satisfaction_rate": rates.satisfaction_rate}


Start = Annotated[datetime | None, Query(description="period start (default: 30 days before end)")]
End = Annotated[datetime | None, Query(description="period end, exclusive (default: now)")]


@router.get("/stats/rates", tags=["statistics"])
def three_rates(session: SessionDep, principal: Operator, start: Start = None, end: End = None,
                unit_id: int | None = None) -> dict[str, Any]:
    """Response, resolution and satisfaction rates of tickets received in the period (definitions in
    tickets/stats.py), for the centre or one unit."""
    return _rates(stats.three_rates(session, *_period(start, end), unit_id=unit_id))


@router.get("/stats/rates/by-unit", tags=["statistics"])
def three_rates_by_unit(session: SessionDep, principal: Operator, start: Start = None,
                        end: End = None) -> list[dict[str, Any]]:
    return [_rates(rates) for rates in stats.three_rates_per_unit(session, *_period(start, end))]


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


@router.get("/stats/overdue", response_model=list[TicketOut], tags=["statistics"])
def overdue(session: SessionDep, principal: Operator, unit_id: int | None = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    return stats.overdue_tickets(session, service.utcnow(), unit_id=unit_id, limit=limit)


# --- tokens ------------------------------------------------------------------------------------------------

@router.post("/tokens", response_model=TokenIssued, status_code=201, tags=["auth"])
def create_token(body: TokenIn, session: SessionDep, principal: Admin) -> TokenIssued:
    """Issue an API token; the clear token is in this answer only."""
    record, token = issue_token(session, body.name, body.role, body.unit_id)
    session.commit()
    return TokenIssued(id=record.id, name=record.name, role=record.role, unit_id=record.unit_id, token=token)
