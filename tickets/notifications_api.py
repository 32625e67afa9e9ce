"""Endpoints of the notifications and of the supervisor's list (tickets.api mounts this router).

Who sees what: unit staff their unit's notifications (another unit's is 404, as its tickets are); the
supervisor (廉政监督员) the 督办 and 推诿 ones of every unit and the list of supervised or flagged tickets;
operators and administrators everything, the centre's own notifications (tickets with no unit) included.
Reviewers have nothing to act on here (403).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status

from tickets import notifications, service
from tickets.api import RowId, SessionDep, require
from tickets.auth import Principal
from tickets.models import Ticket
from tickets.notifications import Audience
from tickets.schemas import MAX_ID, NotificationOut, NotificationPage, SupervisedTicket

router = APIRouter()
Reader = Annotated[Principal, require("operator", "unit_staff", "admin", "supervisor")]
Supervisor = Annotated[Principal, require("supervisor", "operator", "admin")]


@router.get("/notifications", response_model=NotificationPage, tags=["notifications"])
def list_notifications(session: SessionDep, principal: Reader,
                       unread: Annotated[bool, Query(description="only those nobody marked read")] = False,
                       kind: Literal["remind", "supervise", "evasion"] | None = None,
                       before_id: Annotated[int | None, Query(ge=1, le=MAX_ID,
                                                              description="next page: the last id seen")] = None,
                       limit: Annotated[int, Query(ge=1, le=200)] = 50) -> NotificationPage:
    """催办, 督办 and 推诿 notifications for the reader, newest first, with the reader's unread count."""
    audience = Audience.of(principal)
    items = notifications.list_notifications(session, audience, unread_only=unread, kind=kind,
                                             before_id=before_id, limit=limit)
    return NotificationPage(items=[NotificationOut.model_validate(item) for item in items],
                            unread=notifications.unread_count(session, audience))


@router.post("/notifications/{notification_id}/read", response_model=NotificationOut, tags=["notifications"],
             responses={404: {"description": "no such notification (or not the reader's)"}})
def mark_read(notification_id: RowId, session: SessionDep, principal: Reader) -> Any:
    """Mark a notification read; marking it again keeps who read it first and when."""
    notification = notifications.acknowledge(session, Audience.of(principal), notification_id, principal.name,
                                             service.utcnow())
    if notification is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no notification with id {notification_id}")
    session.commit()
    return notification


@router.get("/supervision", response_model=list[SupervisedTicket], tags=["notifications"])
def supervision_list(session: SessionDep, principal: Supervisor,
                     include_settled: Annotated[bool, Query(description="also those replied, closed...")] = False,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[SupervisedTicket]:
    """The supervisor's list (督办): tickets that missed a deadline or were flagged for repeated 推诿, the
    longest supervised first, with the deadlines they missed."""
    tickets = notifications.supervised_tickets(session, service.SETTLED_STATUSES, include_settled=include_settled,
                                               limit=limit)
    return [_supervised(ticket) for ticket in tickets]


def _supervised(ticket: Ticket) -> SupervisedTicket:
    missed = [deadline.kind for deadline in ticket.deadlines if deadline.supervised_at is not None]
    return SupervisedTicket.model_validate({**{name: getattr(ticket, name) for name in SupervisedTicket.model_fields
                                               if name != "missed_deadlines"}, "missed_deadlines": missed})
