"""The three-way call API: an operator connects a ticket's citizen with the responsible unit's remote seats.

    POST   /api/tickets/{id}/three-way          {"citizen": "<number>", "operator": "<number>"}  (operator optional)
    GET    /api/three-way/{id}                  legs and their states, events, recordings (live or stored)
    PATCH  /api/three-way/{id}/legs/{leg}       {"muted": true} / {"listen_only": true}
    DELETE /api/three-way/{id}/legs/{leg}       remove that party (its call is hung up)

No open dialling: the citizen's number must be the ticket's own phone number, a member unit's seat or a
configured extension; the operator's a seat or a configured extension. Anything else is refused with 422
naming the field, and logged with who asked. One three-way call per ticket at a time (409). Unit staff see
only their own unit's calls (another unit's: 404, as for tickets).
"""
from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from app.conferences import CaseAnnouncements, conference_json, iso
from three_way.conference import Conference
from three_way.desk import Case, ThreeWayDesk
from tickets import service, three_way_calls
from tickets.api import AnyRole, Operator, SessionDep
from tickets.auth import Principal
from tickets.models import MemberUnit, Ticket
from tickets.schemas import Phone

log = logging.getLogger(__name__)


class ThreeWayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    citizen: Phone
    operator: Phone | None = None
    operator_listen_only: bool = Field(False, description="the operator hears everyone and is not heard "
                                                          "(coaching a seat)")


class LegChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    muted: bool | None = None
    listen_only: bool | None = None


def three_way_router(desk: ThreeWayDesk | None, announcements: CaseAnnouncements | None,
                     extensions: Collection[str]) -> APIRouter:
    """`desk` None: the node runs no call flow that can bridge (demo mode): POST answers 503.
    `extensions`: the configured numbers besides the directory (test extensions, the operator seat)."""
    router = APIRouter(prefix="/api", tags=["three-way"])

    @router.post("/tickets/{ticket_id}/three-way", status_code=status.HTTP_202_ACCEPTED)
    def start(ticket_id: int, body: ThreeWayRequest, session: SessionDep, principal: Operator) -> dict[str, Any]:
        """Dial the citizen, the operator (optional) and the responsible unit's seats in order, and bridge
        them; returns at once with the conference (follow it with GET /api/three-way/{id})."""
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no ticket with id {ticket_id}")
        unit = ticket.unit or three_way_calls.unit_for_topic(session, ticket.topic)
        if unit is None:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=f"ticket {ticket.number} has no responsible "
                                "unit: dispatch it to a unit first, or give it a topic a unit handles")
        dialable = three_way_calls.directory_numbers(session) | set(extensions)
        _check_number(principal, ticket, "citizen", body.citizen, dialable | ({ticket.phone} - {None}))
        if body.operator is not None:
            _check_number(principal, ticket, "operator", body.operator, dialable)
        if desk is None or announcements is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                detail="three-way calls need the hotline call flow (this node runs the demo)")
        busy = next((c for c in desk.live() if desk.get(c.conference_id)[1].ticket == ticket.number), None)
        if busy is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=f"ticket {ticket.number} is in three-way call "
                                                                 f"{busy.conference_id} already")
        announcement, hold = announcements.for_ticket(_values(ticket, unit))
        case = Case(unit.name, ticket.number, principal.name)
        conference = desk.start(case, citizen=body.citizen, operator=body.operator, announcement=announcement,
                                hold=hold, operator_listen_only=body.operator_listen_only)
        log.info("three-way call %s for ticket %s started by %s", conference.conference_id, ticket.number,
                 principal.name)
        return conference_json(conference.view(), case)

    @router.get("/three-way/{conference_id}")
    def show(conference_id: str, session: SessionDep, principal: AnyRole) -> dict[str, Any]:
        """A conference's parties and their states: live from this node, or as stored once it ended (with
        its speaker-labelled transcript once the background transcription linked it)."""
        live = desk.get(conference_id) if desk is not None else None
        if live is not None and (live[0].ended_at is None or not three_way_calls.is_stored(session, conference_id)):
            conference, case = live
            if principal.role == "unit_staff":
                try:
                    _visible(principal, three_way_calls.unit_by_name(session, case.unit).id, conference_id)
                except service.NotFound:
                    _visible(principal, None, conference_id)
            return conference_json(conference.view(), case)
        try:
            stored = three_way_calls.get_call(session, conference_id)
        except service.NotFound:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no three-way call {conference_id}") from None
        _visible(principal, stored.unit_id, conference_id)
        ticket = session.get(Ticket, stored.ticket_id) if stored.ticket_id else None
        return {"id": stored.id, "state": "ended", "unit": stored.unit_name,
                "ticket": ticket.number if ticket else None, "started_by": stored.started_by,
                "started_at": iso(stored.started_at), "ended_at": iso(stored.ended_at),
                "outcome": stored.outcome, "legs": stored.legs, "events": stored.events,
                "recordings": stored.recordings, "transcript": stored.transcript_ref}

    @router.patch("/three-way/{conference_id}/legs/{leg_id}")
    def change(conference_id: str, leg_id: str, body: LegChange, principal: Operator) -> dict[str, Any]:
        """Mute or unmute a party, or make it listen-only (hears everyone, is not heard)."""
        conference, case = _live(conference_id)
        try:
            if body.muted is not None:
                conference.set_muted(leg_id, body.muted)
            if body.listen_only is not None:
                conference.set_listen_only(leg_id, body.listen_only)
        except KeyError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no party {leg_id} in the call") from None
        return conference_json(conference.view(), case)

    @router.delete("/three-way/{conference_id}/legs/{leg_id}", status_code=status.HTTP_204_NO_CONTENT)
    def remove(conference_id: str, leg_id: str, principal: Operator) -> None:
        """Take a party out of the call and hang it up (the others stay while two remain)."""
        conference, _ = _live(conference_id)
        if leg_id not in conference.joined():
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no party {leg_id} in the call")
        conference.remove(leg_id, f"removed by {principal.name}")

    def _live(conference_id: str) -> tuple[Conference, Case]:
        live = desk.get(conference_id) if desk is not None else None
        if live is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no three-way call {conference_id} here")
        if live[0].ended_at is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=f"three-way call {conference_id} has ended")
        return live

    return router


def _check_number(principal: Principal, ticket: Ticket, field: str, number: str, allowed: set[str]) -> None:
    if number in allowed:
        return
    log.warning("three-way call refused: %s (%s) asked to dial %s as %s for ticket %s: not in the member-unit "
                "directory or the configured extensions", principal.name, principal.role, number, field,
                ticket.number)
    raise HTTPException(422, detail=[{"loc": ["body", field], "type": "value_error",
                                      "msg": f"{number} is not a number the hotline may dial (the ticket's phone, "
                                             "a member unit's seat, or a configured extension)"}])


def _visible(principal: Principal, unit_id: int | None, conference_id: str) -> None:
    if principal.role == "unit_staff" and unit_id != principal.unit_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no three-way call {conference_id}")


def _values(ticket: Ticket, unit: MemberUnit) -> dict[str, Any]:
    return {"request_type": ticket.request_type, "topic": ticket.topic, "ticket_number": ticket.number,
            "unit": unit.name, "language": ticket.language}

