"""Three-way calls (三方通话) in the ticket domain: which member unit a topic goes to, the numbers the directory
lets the hotline dial, the record of each three-way call, and what the call does to its ticket.

The procedures: a member unit answers the hotline's three-way call and its remote seat answers the citizen on
the spot. So after the call the ticket is either closed as answered by that unit (答复: the unit, the seat
and the time in its history), or, when the citizen's question stayed open or nobody could take the call,
transferred to the unit (转办) under the unit's reply deadline (2 working days, `unit_reply`).

Plain functions over a Session like tickets.service: they flush, the caller commits.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets import deadline_tracking, service
from tickets.deadlines import DeadlineKind
from tickets.lifecycle import Action
from tickets.models import MemberUnit, ThreeWayCall, Ticket, utcnow
from tickets.service import TicketRules


def unit_for_topic(session: Session, topic: str | None) -> MemberUnit | None:
    """The responsible unit for a topic: the first unit (oldest first) that lists it among its categories."""
    if not topic:
        return None
    for unit in session.scalars(select(MemberUnit).order_by(MemberUnit.id)):
        if topic in (unit.categories or []):
            return unit
    return None


def unit_by_name(session: Session, name: str) -> MemberUnit:
    unit = session.scalar(select(MemberUnit).where(MemberUnit.name == name))
    if unit is None:
        raise service.NotFound(f"no member unit named {name!r}")
    return unit


def directory_numbers(session: Session) -> set[str]:
    """Every remote seat number of every member unit: what the hotline may dial besides its extensions."""
    return {number for seats in session.scalars(select(MemberUnit.seat_numbers)) for number in seats or []}


def answer_on_the_spot(session: Session, ticket: Ticket, unit: MemberUnit, *, note: str, actor: str,
                       rules: TicketRules, now: datetime | None = None) -> Ticket:
    """The citizen's question was answered in the three-way call: closed as answered (答复) by `unit` now;
    `note` (e.g. the seat and the call) is added to the history's line."""
    ticket.unit_id = unit.id
    return service.transition(session, ticket.id, Action.ANSWER_DIRECTLY, actor=actor, rules=rules, now=now,
                              note=f"answered on the spot by {unit.name} in a three-way call"
                                   + (f" ({note})" if note else ""))


def transfer_to_unit(session: Session, ticket: Ticket, unit: MemberUnit, *, actor: str, rules: TicketRules,
                     note: str, now: datetime | None = None) -> datetime:
    """转办 to `unit`; returns the unit's reply deadline the dispatch started (2 working days on the
    statutory calendar, tickets.deadline_tracking)."""
    service.transition(session, ticket.id, Action.DISPATCH, actor=actor, rules=rules, unit_id=unit.id,
                       note=note, now=now or utcnow())
    deadline = deadline_tracking.open_deadline(ticket, DeadlineKind.UNIT_REPLY)
    assert deadline is not None, "a dispatch starts the unit's reply deadline"
    return deadline.due_at


def record_call(session: Session, *, conference_id: str, ticket_number: str | None, unit_name: str,
                started_by: str, started_at: datetime, ended_at: datetime | None, outcome: str,
                seat_number: str | None, legs: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]],
                recordings: Mapping[str, str], actor: str) -> ThreeWayCall:
    """Store a finished three-way call and note it in its ticket's history."""
    ticket = service.get_by_number(session, ticket_number) if ticket_number else None
    unit = session.scalar(select(MemberUnit).where(MemberUnit.name == unit_name))
    call = ThreeWayCall(id=conference_id, ticket_id=ticket.id if ticket else None, unit_id=unit.id if unit else None,
                        unit_name=unit_name, started_by=started_by, started_at=started_at, ended_at=ended_at,
                        outcome=outcome, seat_number=seat_number, legs=list(legs), events=list(events),
                        recordings=dict(recordings))
    session.add(call)
    if ticket is not None:
        with_seat = f", seat {seat_number}" if seat_number else ""
        service.record_event(session, ticket, actor, "three_way", ticket.status,
                             f"three-way call {conference_id} with {unit_name}{with_seat}: {outcome}", ended_at)
    session.flush()
    return call


def get_call(session: Session, call_id: str) -> ThreeWayCall:
    call = session.get(ThreeWayCall, call_id)
    if call is None:
        raise service.NotFound(f"no three-way call with id {call_id}")
    return call


def is_stored(session: Session, call_id: str) -> bool:
    return session.get(ThreeWayCall, call_id) is not None


def calls_of_ticket(session: Session, ticket_id: int) -> list[ThreeWayCall]:
    return list(session.scalars(select(ThreeWayCall).where(ThreeWayCall.ticket_id == ticket_id)
                                .order_by(ThreeWayCall.started_at)))


def link_transcript(session: Session, call_id: str, transcript_ref: str) -> ThreeWayCall:
    call = get_call(session, call_id)
    call.transcript_ref = transcript_ref
    session.flush()
    return call
