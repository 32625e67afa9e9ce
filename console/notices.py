"""The notifications page (通知): the 催办, 督办 and 推诿 notifications of the reader (tickets.notifications:
unit staff their unit's, the supervisor 督办 and 推诿 of every unit, the centre all), each marked read with
one click, and for the supervisor and the centre the supervision list (督办 and 推诿-flagged tickets still
open). Reviewers have nothing here."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from console.auth import PageUser
from console.i18n import language_of
from console.web import render
from tickets import notifications, service
from tickets.models import utcnow
from tickets.notifications import Audience

router = APIRouter(include_in_schema=False)
SHOWN = 100


def _check(user: PageUser) -> Audience:
    if not user.may_read_notifications:
        raise HTTPException(403, detail="notifications are for units, the centre and the supervisor")
    return Audience.of(user.principal)


@router.get("/notifications")
def notifications_page(request: Request, user: PageUser, unread: bool = False) -> Response:
    audience = _check(user)
    with request.app.state.tickets.session_factory() as session:
        items = notifications.list_notifications(session, audience, unread_only=unread, limit=SHOWN)
        rows = [{"notification": item, "number": item.ticket.number} for item in items]
        units = {unit.id: unit.name for unit in service.list_units(session)}
        supervised = (notifications.supervised_tickets(session, service.SETTLED_STATUSES, limit=SHOWN)
                      if user.may_supervise else [])
        return render(request, "notifications.html", user, language_of(request), rows=rows, unread=unread,
                      unread_count=notifications.unread_count(session, audience), units=units,
                      supervised=supervised)


@router.post("/notifications/{notification_id}/read")
def mark_read(notification_id: int, request: Request, user: PageUser) -> Response:
    audience = _check(user)
    with request.app.state.tickets.session_factory.begin() as session:
        if notifications.acknowledge(session, audience, notification_id, user.principal.name, utcnow()) is None:
            raise HTTPException(404, detail=f"no notification with id {notification_id}")
    return RedirectResponse("/notifications", status_code=303)
