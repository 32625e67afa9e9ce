"""Call review: a ticket's page (caller, history, recordings with the transcript beside them, corrections,
copying text into the ticket, classification, lifecycle actions) and the review queue.

Every change goes through the ticket service with the API's rules: the lifecycle refuses what the status
does not allow (shown as 409 with the allowed actions), unit staff may only take their own unit's actions,
only operators and administrators edit, and another unit's ticket does not exist (404).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from console.auth import ConsoleUser, PageUser
from console.catalog import CALLBACK_RECORDING, hidden_from, ticket_recordings, visible_ticket
from console.countdown import countdown
from console.i18n import known, language_of
from console.transcripts import transcript_document
from console.web import render
from tickets import callbacks, replies, review, service
from tickets.api import UNIT_STAFF_ACTIONS
from tickets.lifecycle import Action, InvalidTransition, Status, allowed_actions
from tickets.models import CALLBACK_RESULTS, REQUEST_TYPES, Ticket, utcnow

router = APIRouter(include_in_schema=False)
COPYABLE_FIELDS = ("content", "caller_name", "address")
PAGE_SIZE = 25


def actions_for(ticket: Ticket, user: ConsoleUser) -> list[str]:
    """The lifecycle actions this user may take now, as the API allows them. A reply and its review go with
    the reply's content (tickets.replies): they have their own forms (`reply`, `reply-review`)."""
    allowed = [action for action in allowed_actions(Status(ticket.status)) if action not in service.REPLY_ACTIONS]
    if user.principal.role == "unit_staff":
        allowed = [action for action in allowed if action in UNIT_STAFF_ACTIONS]
    elif not user.may_edit:
        allowed = []
    return [action.value for action in allowed]


def reply_forms(ticket: Ticket, user: ConsoleUser, session: Session) -> dict[str, Any]:
    """Which reply form the page shows: writing one (in progress) or reviewing the pending one."""
    allowed = allowed_actions(Status(ticket.status))
    pending = next((reply for reply in replies.replies_of(session, ticket.id) if reply.status == "pending_review"),
                   None)
    return {"write": Action.REPLY in allowed and user.may_reply,
            "review": pending if Action.APPROVE_REPLY in allowed and user.may_review_replies else None,
            "pending": pending}


def history(ticket: Ticket) -> list[dict[str, Any]]:
    return [{"event": event, "label_key": f"history.{event.action}" if known(f"history.{event.action}")
             else f"action.{event.action}" if known(f"action.{event.action}") else None}
            for event in reversed(ticket.events)]


def ticket_page(request: Request, user: ConsoleUser, ticket_id: int, *, error: str | None = None,
                status_code: int = 200) -> Response:
    lang = language_of(request)
    with request.app.state.tickets.session_factory() as session:
        try:
            ticket = visible_ticket(session, ticket_id, user.principal)
        except service.NotFound:
            return render(request, "notfound.html", user, lang, status_code=404)
        hidden = hidden_from(ticket, user.principal)
        playable = [{"entry": entry, "available": entry.path.is_file(),
                     "url": str(request.url_for("play_recording", ticket_id=ticket.id, name=entry.name))}
                    for entry in ticket_recordings(session, ticket, user.principal)]
        recordings = [rec for rec in playable if not rec["entry"].name.startswith(CALLBACK_RECORDING)]
        callback_recordings = {rec["entry"].name: rec for rec in playable
                               if rec["entry"].name.startswith(CALLBACK_RECORDING)}
        transcript = None if "transcript_ref" in hidden else transcript_document(session, ticket)
        units = service.list_units(session)
        return render(request, "ticket.html", user, lang, status_code=status_code, ticket=ticket, hidden=hidden,
                      unit_names={unit.id: unit.name for unit in units}, units=units,
                      countdown=countdown(ticket, utcnow(), lang), history=history(ticket),
                      recordings=recordings, transcript=transcript, actions=actions_for(ticket, user),
                      reply=reply_forms(ticket, user, session),
                      callback_attempts=callbacks.attempts_of(session, ticket.id),
                      callback_recordings=callback_recordings,
                      handled_default=utcnow() + timedelta(minutes=1),  # the form's minutes never predate now
                      rejection_reasons=request.app.state.tickets.rules.procedures.rejection_reasons,
                      request_types=REQUEST_TYPES, callback_results=CALLBACK_RESULTS, error=error,
                      saved=request.query_params.get("saved") == "1")


@router.get("/tickets/{ticket_id}")
def show_ticket(ticket_id: int, request: Request, user: PageUser) -> Response:
    return ticket_page(request, user, ticket_id)


def change(request: Request, user: ConsoleUser, ticket_id: int, work: Callable[[Session, Ticket], None], *,
           editors_only: bool = True) -> Response:
    """Run `work` on the ticket in one transaction; success goes back to the page (303), a refusal shows
    the page again with the reason (409 lifecycle or concurrency, 422 bad value, 403 role)."""
    if editors_only and not user.may_edit:
        raise HTTPException(403, detail=f"the {user.principal.role} role may not do this")
    try:
        with request.app.state.tickets.session_factory.begin() as session:
            work(session, visible_ticket(session, ticket_id, user.principal))
    except service.NotFound:
        return render(request, "notfound.html", user, language_of(request), status_code=404)
    except (InvalidTransition, service.ConcurrentUpdate, service.Conflict) as error:
        return ticket_page(request, user, ticket_id, error=str(error), status_code=409)
    except ValueError as error:
        return ticket_page(request, user, ticket_id, error=str(error), status_code=422)
    return RedirectResponse(f"/tickets/{ticket_id}?saved=1", status_code=303)


@router.post("/tickets/{ticket_id}/transition")
def transition(ticket_id: int, request: Request, user: PageUser, action: Annotated[str, Form()],
               note: Annotated[str, Form(max_length=2000)] = "", unit_id: Annotated[str, Form()] = "",
               callback_result: Annotated[str, Form()] = "", rejection_reason: Annotated[str, Form()] = "",
               expected_version: Annotated[str, Form()] = "") -> Response:
    if action not in [a.value for a in Action] or Action(action) in service.REPLY_ACTIONS:
        raise HTTPException(422, detail=[{"loc": ["body", "action"], "type": "value_error",
                                          "msg": f"{action!r} is not an action"}])
    if user.principal.role == "unit_staff" and Action(action) not in UNIT_STAFF_ACTIONS:
        raise HTTPException(403, detail=f"unit staff may not {action}")
    if user.principal.role not in ("unit_staff", "operator", "admin"):
        raise HTTPException(403, detail=f"the {user.principal.role} role may not {action}")

    def work(session: Session, ticket: Ticket) -> None:
        service.transition(session, ticket.id, action, actor=user.principal.name,
                           rules=request.app.state.tickets.rules, note=note.strip() or None,
                           unit_id=_optional_int("unit_id", unit_id),
                           callback_result=callback_result or None, rejection_reason=rejection_reason or None,
                           expected_version=_optional_int("expected_version", expected_version))

    return change(request, user, ticket_id, work, editors_only=False)


@router.post("/tickets/{ticket_id}/reply")
def reply(ticket_id: int, request: Request, user: PageUser, handling_unit: Annotated[str, Form(max_length=100)] = "",
          handled_at: Annotated[str, Form(max_length=40)] = "", situation: Annotated[str, Form(max_length=4000)] = "",
          result: Annotated[str, Form(max_length=4000)] = "") -> Response:
    """The reply to the citizen with its four parts (tickets.replies), which then waits for review."""
    if not user.may_reply:
        raise HTTPException(403, detail=f"the {user.principal.role} role may not reply")

    def work(session: Session, ticket: Ticket) -> None:
        try:
            moment = service.as_utc(datetime.fromisoformat(handled_at))
        except ValueError:
            raise ValueError(f"handled_at: {handled_at!r} is not a date and time") from None
        replies.submit_reply(session, ticket.id, {"handling_unit": handling_unit.strip(), "handled_at": moment,
                                                  "situation": situation.strip(), "result": result.strip()},
                             actor=user.principal.name, rules=request.app.state.tickets.rules)

    return change(request, user, ticket_id, work, editors_only=False)


@router.post("/tickets/{ticket_id}/reply-review")
def review_reply(ticket_id: int, request: Request, user: PageUser, decision: Annotated[str, Form()],
                 note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """审核把关 of the ticket's pending reply: approve it (it counts as sent) or return it with the reason."""
    if not user.may_review_replies:
        raise HTTPException(403, detail=f"the {user.principal.role} role may not review replies")
    if decision not in ("approve", "return"):
        raise HTTPException(422, detail=[{"loc": ["body", "decision"], "type": "value_error",
                                          "msg": "approve or return"}])

    def work(session: Session, ticket: Ticket) -> None:
        pending = reply_forms(ticket, user, session)["pending"]
        if pending is None:
            raise service.Conflict("this ticket has no reply waiting for review")
        replies.review_reply(session, pending.id, approve=decision == "approve", actor=user.principal.name,
                             rules=request.app.state.tickets.rules, note=note.strip() or None)

    return change(request, user, ticket_id, work, editors_only=False)


def _optional_int(name: str, value: str) -> int | None:
    if not value:
        return None
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"{name}: {value!r} is not a number")
    return int(value)


@router.post("/tickets/{ticket_id}/copy")
def copy_text(ticket_id: int, request: Request, user: PageUser, field: Annotated[str, Form()],
              text: Annotated[str, Form(max_length=5000)] = "") -> Response:
    """Copy (corrected) transcript text into the ticket's content, name or address."""
    if field not in COPYABLE_FIELDS:
        raise HTTPException(422, detail=[{"loc": ["body", "field"], "type": "value_error",
                                          "msg": f"{field!r} is not one of {', '.join(COPYABLE_FIELDS)}"}])
    return change(request, user, ticket_id, lambda session, ticket: service.update_fields(
        session, ticket, {field: " ".join(text.split())}, actor=user.principal.name,
        rules=request.app.state.tickets.rules))


@router.post("/tickets/{ticket_id}/classify")
def classify(ticket_id: int, request: Request, user: PageUser, request_type: Annotated[str, Form()] = "",
             topic: Annotated[str, Form(max_length=100)] = "", level: Annotated[str, Form()] = "") -> Response:
    """Type and topic through the service's field edit, the level through its override (the deadline
    follows); both are recorded in the history."""

    def work(session: Session, ticket: Ticket) -> None:
        service.update_fields(session, ticket, {"request_type": request_type or None, "topic": topic.strip() or None},
                              actor=user.principal.name, rules=request.app.state.tickets.rules)
        new_level = _optional_int("level", level)
        if new_level is not None and new_level != ticket.level:
            service.override_level(session, ticket.id, new_level, actor=user.principal.name,
                                   rules=request.app.state.tickets.rules, note="call review")

    return change(request, user, ticket_id, work)


@router.post("/tickets/{ticket_id}/reviewed")
def mark_reviewed(ticket_id: int, request: Request, user: PageUser) -> Response:
    return change(request, user, ticket_id,
                  lambda session, ticket: review.mark_reviewed(session, ticket, actor=user.principal.name))


@router.get("/review")
def review_queue(request: Request, user: PageUser, page: int = 1) -> Response:
    lang = language_of(request)
    page = max(1, min(page, 100_000))
    unit_id = user.principal.unit_id if user.principal.role == "unit_staff" else None
    with request.app.state.tickets.session_factory() as session:
        items, total = review.review_queue(session, low_confidence=request.app.state.console.settings.low_confidence,
                                           unit_id=unit_id, page=page, page_size=PAGE_SIZE)
        now = utcnow()
        rows = [{"ticket": item.ticket, "reason": str(item.reason), "countdown": countdown(item.ticket, now, lang),
                 "hidden": bool(hidden_from(item.ticket, user.principal))} for item in items]
        return render(request, "review_queue.html", user, lang, rows=rows, total=total, page=page,
                      pages=max(1, math.ceil(total / PAGE_SIZE)))
