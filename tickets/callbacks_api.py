"""Endpoints of the satisfaction callbacks (回访), beside the tickets' own (tickets.api mounts this router): an
operator asks for the callback now, and anyone who may see the ticket sees each attempt. Recording
references and call ids are not for unit staff, nor the number called on a confidential ticket, as
elsewhere in the API.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tickets import callbacks
from tickets.api import AnyRole, Operator, RowId, SessionDep, visible_ticket
from tickets.auth import Principal
from tickets.calendar import WorkingCalendar
from tickets.models import CallbackAttempt
from tickets.schemas import CallbackAttemptOut, CallbackRequestIn
from tickets.service import load_holiday_overrides

router = APIRouter()
# Never shown to unit staff: where the audio lies and the call's identity (tickets.api.CALL_DETAIL_FIELDS).
CALL_DETAILS = ("recording_ref", "reason_ref", "call_id")


def _shown(attempt: CallbackAttempt, principal: Principal) -> CallbackAttemptOut:
    out = CallbackAttemptOut.model_validate(attempt)
    if principal.role == "unit_staff":
        hidden = CALL_DETAILS + (("called_number",) if attempt.ticket.confidential else ())
        out = out.model_copy(update=dict.fromkeys(hidden))
    return out


@router.post("/tickets/{ticket_id}/callbacks", response_model=CallbackAttemptOut, status_code=202,
             tags=["callbacks"], responses={409: {"description": "not waiting for its callback, or a call is on"}})
def request_callback(ticket_id: RowId, session: SessionDep, principal: Operator, request: Request,
                     body: CallbackRequestIn | None = None) -> Any:
    """Call the citizen back now (the next free callback line of a node places it): the pending attempt is
    brought forward, or a new one added. In the quiet hours or on a holiday it is due at the next allowed
    moment (`due_at` says when)."""
    visible_ticket(session, ticket_id, principal)
    policy = request.app.state.tickets.callbacks
    attempt = callbacks.request_now(session, ticket_id, actor=principal.name, policy=policy,
                                    calendar=WorkingCalendar(load_holiday_overrides(session)),
                                    note=body.note if body else None)
    session.commit()
    return _shown(attempt, principal)


@router.get("/tickets/{ticket_id}/callbacks", response_model=list[CallbackAttemptOut], tags=["callbacks"])
def list_callbacks(ticket_id: RowId, session: SessionDep, principal: AnyRole) -> Any:
    """Every callback attempt of the ticket, oldest first: when, how it went, the answer, the recordings."""
    visible_ticket(session, ticket_id, principal)
    return [_shown(attempt, principal) for attempt in callbacks.attempts_of(session, ticket_id)]
