"""Statistics for the centre's supervisors: the three rates (tickets.stats), tickets overdue now (in total
and by unit), hot topics, tickets by type, and calls per hour of the day, drawn as SVG (console.charts)."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import Response

from console import charts
from console.auth import PageUser
from console.i18n import language_of, translate
from console.web import render
from tickets import service, stats
from tickets.models import utcnow

router = APIRouter(include_in_schema=False)
PERIODS = (7, 30, 90)
OVERDUE_LIMIT = 1000


@router.get("/statistics")
def statistics(request: Request, user: PageUser, days: int = 30) -> Response:
    if not user.may_supervise:
        raise HTTPException(403, detail="statistics are for the centre's operators and supervisors")
    if days not in PERIODS:
        raise HTTPException(422, detail=[{"loc": ["query", "days"], "type": "value_error",
                                          "msg": f"one of {', '.join(map(str, PERIODS))}"}])
    lang = language_of(request)
    end = utcnow()
    start = end - timedelta(days=days)
    with request.app.state.tickets.session_factory() as session:
        rates = stats.three_rates(session, start, end)
        by_unit = stats.three_rates_per_unit(session, start, end)
        overdue = stats.overdue_tickets(session, end, limit=OVERDUE_LIMIT)
        units = {unit.id: unit.name for unit in service.list_units(session)}
        overdue_by_unit = Counter(units.get(ticket.unit_id, "—") if ticket.unit_id else "—" for ticket in overdue)
        hot = stats.hot_topics(session, start, end, limit=10)
        by_type = stats.counts_by(session, "request_type", start, end)
        per_hour = stats.calls_per_hour(session, start, end)
    no_data = translate("stats.no_data", lang)
    return render(request, "statistics.html", user, lang, days=days, periods=PERIODS, rates=rates, by_unit=by_unit,
                  overdue_count=len(overdue), overdue_capped=len(overdue) >= OVERDUE_LIMIT,
                  rings={name: charts.rate_ring(getattr(rates, name))
                         for name in ("response_rate", "resolution_rate", "satisfaction_rate")},
                  overdue_chart=charts.horizontal_bars(overdue_by_unit.most_common(), empty=no_data),
                  hot_chart=charts.horizontal_bars(hot, empty=no_data),
                  type_chart=charts.horizontal_bars(list(by_type.items()), empty=no_data),
                  hour_chart=charts.columns(per_hour, [f"{hour:02d}" for hour in range(24)]))
