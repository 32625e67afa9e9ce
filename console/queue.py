"""The ticket queue: filters (status, level, unit, type, overdue), text search, paging, and each ticket's
deadline countdown. The search is the ticket service's own (tickets.service.list_tickets); unit staff see
only their unit's tickets, whatever the filter says."""
from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from console.auth import PageUser
from console.catalog import hidden_from
from console.countdown import countdown
from console.i18n import language_of
from console.web import render
from tickets import service
from tickets.lifecycle import Status
from tickets.models import REQUEST_TYPES, utcnow

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25


def choice(name: str, value: str | None, allowed: list[str] | tuple[str, ...]) -> str | None:
    """A filter value from the query string: '' means any; anything not offered is a 422 naming the filter."""
    if value in (None, ""):
        return None
    if value not in allowed:
        raise HTTPException(422, detail=[{"loc": ["query", name], "type": "value_error",
                                          "msg": f"{value!r} is not one of {', '.join(map(str, allowed))}"}])
    return value


def number(name: str, value: str | None, low: int, high: int) -> int | None:
    if value in (None, ""):
        return None
    if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
        raise HTTPException(422, detail=[{"loc": ["query", name], "type": "value_error",
                                          "msg": f"{value!r} is not a number from {low} to {high}"}])
    return int(value)


def ticket_row(ticket: Any, principal: Any, units: dict[int, str], now: Any, lang: str) -> dict[str, Any]:
    hidden = hidden_from(ticket, principal)
    return {"ticket": ticket, "unit": units.get(ticket.unit_id) if ticket.unit_id else None,
            "caller_name": None if "caller_name" in hidden else ticket.caller_name,
            "phone": None if "phone" in hidden else ticket.phone, "hidden": bool(hidden),
            "countdown": countdown(ticket, now, lang)}


@router.get("/")
def home() -> Response:
    return RedirectResponse("/queue", status_code=303)


@router.get("/queue")
def queue(request: Request, user: PageUser, status: str | None = None, level: str | None = None,
          unit_id: str | None = None, request_type: str | None = None, overdue: str | None = None,
          q: str | None = None, page: str | None = None) -> Response:
    lang = language_of(request)
    principal = user.principal
    filters = {"status": choice("status", status, [s.value for s in Status]),
               "level": number("level", level, 1, 4), "unit_id": number("unit_id", unit_id, 1, 2**31),
               "request_type": choice("request_type", request_type, REQUEST_TYPES),
               "overdue": choice("overdue", overdue, ["yes", "no"]),
               "q": (q or "").strip()[:200] or None}
    page_number = number("page", page, 1, 100_000) or 1
    if principal.role == "unit_staff":
        filters["unit_id"] = principal.unit_id
    now = utcnow()
    with request.app.state.tickets.session_factory() as session:
        query = service.TicketQuery(
            statuses=[filters["status"]] if filters["status"] else (), level=filters["level"],
            unit_id=filters["unit_id"], request_type=filters["request_type"],
            overdue=None if filters["overdue"] is None else filters["overdue"] == "yes", text=filters["q"],
            sort="-created_at", page=page_number, page_size=PAGE_SIZE, now=now,
            count_limit=service.INTERACTIVE_COUNT_LIMIT)
        found = service.list_tickets(session, query)
        units = {unit.id: unit.name for unit in service.list_units(session)}
        rows = [ticket_row(ticket, principal, units, now, lang) for ticket in found.items]
        # a count that stopped early still reaches past this page: at least one more page follows
        pages = max(1, math.ceil(found.total / PAGE_SIZE)) + (0 if found.total_exact else 1)
        page_link = {key: ("" if value is None else value) for key, value in filters.items()}
        return render(request, "queue.html", user, lang, rows=rows, total=found.total,
                      total_exact=found.total_exact, page=page_number, pages=pages,
                      filters=filters, page_link=page_link, units=units, statuses=[s.value for s in Status],
                      request_types=REQUEST_TYPES)
