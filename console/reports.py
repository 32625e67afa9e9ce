"""The periodic report (tickets.report) as a printable page: one day or one week, the three rates, by unit,
the hot topics and the units that let deadlines pass. The same figures as `GET /api/reports/{period}` and
`python -m tickets report`; the browser's print (or save as PDF) gives the paper copy, the print style
leaves the console's header out."""
from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import Response

from console.auth import PageUser
from console.i18n import language_of
from console.web import render
from tickets import report
from tickets.deadlines import SHANGHAI
from tickets.models import utcnow
from tickets.schemas import FIRST_YEAR, LAST_YEAR

router = APIRouter(include_in_schema=False)


def _day(text: str | None, today: date) -> date:
    """The requested day; by default yesterday, the last whole day."""
    if not text:
        return today - timedelta(days=1)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise HTTPException(422, detail=[{"loc": ["query", "date"], "type": "value_error",
                                          "msg": f"a day YYYY-MM-DD in {FIRST_YEAR}-{LAST_YEAR}"}])
    return day


@router.get("/reports")
def report_page(request: Request, user: PageUser, period: str = "daily", date: str | None = None) -> Response:
    if not user.may_supervise:
        raise HTTPException(403, detail="reports are for the centre's operators and supervisors")
    if period not in report.PERIODS:
        raise HTTPException(422, detail=[{"loc": ["query", "period"], "type": "value_error",
                                          "msg": f"one of {', '.join(report.PERIODS)}"}])
    now = utcnow()
    day = _day(date, now.astimezone(SHANGHAI).date())
    with request.app.state.tickets.session_factory() as session:
        figures = report.build(session, period, day, now)
    step = timedelta(days=report.PERIODS[period])
    start, end = report.bounds(period, day)
    return render(request, "report.html", user, language_of(request), report=figures, period=period,
                  day=day, first_day=start.date(),
                  last_day=(end - timedelta(days=1)).date(), previous=day - step, following=day + step)
