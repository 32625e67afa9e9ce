"""The centre's periodic report (定期编发热线运行情况通报): for one day or one week (Monday to Sunday) of the
hotline's calendar (Asia/Shanghai), the three rates of the tickets received, by unit too, the hot topics and
the units that let deadlines pass. Every figure comes from tickets.stats, which reads the history, so a
report made again later says the same about the same tickets (later events, such as a callback that came
after the period, do count: the rates are those of the tickets received in the period, as of now).

One dictionary, JSON-ready: the API (`GET /api/reports/{period}`), the command line (`python -m tickets
report`) and the console's printable page all show this.
"""
from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tickets import stats
from tickets.deadlines import SHANGHAI

PERIODS = {"daily": 1, "weekly": 7}
HOT_TOPICS = 10


def bounds(period: str, day: date) -> tuple[datetime, datetime]:
    """[start, end) of the period holding `day`: that day, or its week from Monday 00:00 in Shanghai."""
    if period not in PERIODS:
        raise ValueError(f"period: one of {', '.join(PERIODS)}, not {period!r}")
    first = day - timedelta(days=day.weekday()) if period == "weekly" else day
    start = datetime.combine(first, time(), SHANGHAI)
    return start, datetime.combine(first + timedelta(days=PERIODS[period]), time(), SHANGHAI)


def build(session: Session, period: str, day: date, now: datetime) -> dict[str, Any]:
    """The report of the period holding `day`, made at `now` (a period still running is overdue as of now)."""
    start, end = bounds(period, day)
    return {
        "period": period, "start": start.isoformat(), "end": end.isoformat(), "generated_at": now.isoformat(),
        "rates": stats.three_rates(session, start, end).as_dict(),
        "rates_by_unit": [rates.as_dict() for rates in stats.three_rates_per_unit(session, start, end)],
        "hot_topics": [{"topic": topic, "count": count}
                       for topic, count in stats.hot_topics(session, start, end, limit=HOT_TOPICS)],
        "overdue_units": [asdict(row) for row in stats.overdue_units(session, start, min(end, now))],
    }
