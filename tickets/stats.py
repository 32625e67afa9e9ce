"""Statistics for supervision and evaluation (统一督办、统一考核), computed in SQL over tickets received in a
period [start, end). Drafts (calls that never became a ticket) are not counted.

The "three rates" as defined here:
- response rate: tickets that got their response in time (the unit replied no later than response_due_at,
  or the centre settled it at intake: answered directly / not accepted) over all tickets received;
- resolution rate: tickets settled (answered directly, or callback done / closed / archived) whose callback
  did not find the citizen unsatisfied, over all tickets received;
- satisfaction rate: 满意 + 基本满意 over callbacks that reached the citizen (unreachable is left out).
A rate is None when its denominator is zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, case, func, or_, select
from sqlalchemy.orm import Session

from tickets.lifecycle import Status
from tickets.models import MemberUnit, Ticket
from tickets.service import SHANGHAI, waiting_past_due

SATISFIED = ("满意", "基本满意")
REACHED = ("满意", "基本满意", "不满意")
GROUPINGS = {"request_type": Ticket.request_type, "topic": Ticket.topic, "level": Ticket.level}


@dataclass(frozen=True)
class ThreeRates:
    unit_id: int | None
    unit_name: str | None
    received: int
    responded_in_time: int
    resolved: int
    callbacks_reached: int
    satisfied: int

    @property
    def response_rate(self) -> float | None:
        return _rate(self.responded_in_time, self.received)

    @property
    def resolution_rate(self) -> float | None:
        return _rate(self.resolved, self.received)

    @property
    def satisfaction_rate(self) -> float | None:
        return _rate(self.satisfied, self.callbacks_reached)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0).cast(Integer)


def _in_period(start: datetime, end: datetime) -> Any:
    return and_(Ticket.is_draft.is_(False), Ticket.received_at >= start, Ticket.received_at < end)


_SETTLED_AT_INTAKE = Ticket.status.in_([Status.ANSWERED, Status.NOT_ACCEPTED])
_COLUMNS = (
    func.count(Ticket.id).label("received"),
    _count_if(or_(_SETTLED_AT_INTAKE, Ticket.replied_at <= Ticket.response_due_at)).label("responded_in_time"),
    _count_if(and_(Ticket.status.in_([Status.ANSWERED, Status.CALLBACK_DONE, Status.CLOSED, Status.ARCHIVED]),
                   or_(Ticket.callback_result.is_(None), Ticket.callback_result != "不满意"))).label("resolved"),
    _count_if(Ticket.callback_result.in_(REACHED)).label("callbacks_reached"),
    _count_if(Ticket.callback_result.in_(SATISFIED)).label("satisfied"),
)


def three_rates(session: Session, start: datetime, end: datetime, unit_id: int | None = None) -> ThreeRates:
    """The three rates over the whole centre, or one unit's tickets."""
    statement = select(*_COLUMNS).where(_in_period(start, end))
    if unit_id is not None:
        statement = statement.where(Ticket.unit_id == unit_id)
    row = session.execute(statement).one()
    unit = session.get(MemberUnit, unit_id) if unit_id is not None else None
    return ThreeRates(unit_id, unit.name if unit else None, **row._asdict())


def three_rates_per_unit(session: Session, start: datetime, end: datetime) -> list[ThreeRates]:
    """One line per unit that had tickets in the period, by name."""
    statement = (select(MemberUnit.id, MemberUnit.name, *_COLUMNS).join(MemberUnit, Ticket.unit_id == MemberUnit.id)
                 .where(_in_period(start, end)).group_by(MemberUnit.id, MemberUnit.name).order_by(MemberUnit.name))
    return [ThreeRates(row.id, row.name, row.received, row.responded_in_time, row.resolved,
                       row.callbacks_reached, row.satisfied) for row in session.execute(statement)]


def counts_by(session: Session, grouping: str, start: datetime, end: datetime) -> dict[str, int]:
    """Ticket counts per request type, topic or level ('unknown' where it is not set), largest first."""
    column = GROUPINGS[grouping]
    statement = (select(column, func.count(Ticket.id)).where(_in_period(start, end)).group_by(column)
                 .order_by(func.count(Ticket.id).desc(), column))
    return {("unknown" if key is None else str(key)): count for key, count in session.execute(statement)}


def hot_topics(session: Session, start: datetime, end: datetime, limit: int = 10) -> list[tuple[str, int]]:
    """The topics citizens raised most often in the period (热点), for the centre's reports."""
    counts = counts_by(session, "topic", start, end)
    counts.pop("unknown", None)
    return list(counts.items())[:limit]


def overdue_tickets(session: Session, now: datetime, unit_id: int | None = None,
                    limit: int = 100) -> list[Ticket]:
    """Tickets past their deadline and still waiting for the unit, the longest overdue first."""
    statement = select(Ticket).where(Ticket.is_draft.is_(False), waiting_past_due(now))
    if unit_id is not None:
        statement = statement.where(Ticket.unit_id == unit_id)
    return list(session.scalars(statement.order_by(Ticket.response_due_at.asc().nulls_last()).limit(limit)))


def calls_per_hour(session: Session, start: datetime, end: datetime) -> list[int]:
    """How many calls reached intake (a ticket or a draft) in each hour of the day, Asia/Shanghai, over the
    period [start, end): when the hotline needs its seats. Counted in Python from the call times, so SQLite
    and PostgreSQL agree on the time zone."""
    hours = [0] * 24
    for (call_time,) in session.execute(select(Ticket.call_time).where(
            Ticket.call_time >= start, Ticket.call_time < end)):
        hours[call_time.astimezone(SHANGHAI).hour] += 1
    return hours
