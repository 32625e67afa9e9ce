"""Statistics for supervision and evaluation (统一督办、统一考核), computed in SQL over tickets received in a
period [start, end). Drafts (calls that never became a ticket) are not counted.

The three rates are read from the ticket's history (the events and their times) and its first governing
deadline, never from its current status: archiving, closing or any later status change leaves them as
they were.
- response rate: tickets whose first response (answered directly 答复, not accepted 不予受理, or a reply
  approved by the reviewer) came no later than their first governing deadline (the level's response, an
  appeal's resolution; tickets.deadline_tracking) over all tickets received;
- resolution rate: tickets answered directly, or whose last callback (回访) did not find the citizen
  unsatisfied and was not followed by a reopening (重办), over the tickets received less those not accepted
  (不予受理 is neither resolved nor unresolved: the matter was not the city's);
- satisfaction rate: 满意 + 基本满意 over tickets whose last callback reached the citizen (unreachable is left
  out).
A rate is None when its denominator is zero.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, case, func, or_, select
from sqlalchemy.orm import Session

from tickets.deadline_tracking import APPEAL
from tickets.deadlines import DeadlineKind
from tickets.lifecycle import Action
from tickets.models import MemberUnit, Notification, Ticket, TicketDeadline, TicketEvent
from tickets.service import SHANGHAI, waiting_past_due

SATISFIED = ("满意", "基本满意")
REACHED = ("满意", "基本满意", "不满意")
GROUPINGS = {"request_type": Ticket.request_type, "topic": Ticket.topic, "level": Ticket.level}


@dataclass(frozen=True)
class ThreeRates:
    unit_id: int | None
    unit_name: str | None
    received: int
    not_accepted: int
    responded_in_time: int
    resolved: int
    callbacks_reached: int
    satisfied: int

    @property
    def response_rate(self) -> float | None:
        return _rate(self.responded_in_time, self.received)

    @property
    def resolution_rate(self) -> float | None:
        return _rate(self.resolved, self.received - self.not_accepted)

    @property
    def satisfaction_rate(self) -> float | None:
        return _rate(self.satisfied, self.callbacks_reached)

    def as_dict(self) -> dict[str, Any]:
        """The counts and the rates, for JSON."""
        return {**asdict(self), "response_rate": self.response_rate, "resolution_rate": self.resolution_rate,
                "satisfaction_rate": self.satisfaction_rate}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0).cast(Integer)


def _in_period(start: datetime, end: datetime) -> Any:
    return and_(Ticket.is_draft.is_(False), Ticket.received_at >= start, Ticket.received_at < end)


RESPONSES = (Action.ANSWER_DIRECTLY, Action.REJECT, Action.APPROVE_REPLY)
REOPENED = "reopened"


def _history_has(*actions: str) -> Any:
    return select(TicketEvent.id).where(TicketEvent.ticket_id == Ticket.id,
                                        TicketEvent.action.in_(actions)).correlate(Ticket).exists()


def _last_of(value: Any, *actions: str) -> Any:
    """`value` of the ticket's latest history event among `actions`."""
    return (select(value).where(TicketEvent.ticket_id == Ticket.id, TicketEvent.action.in_(actions))
            .order_by(TicketEvent.id.desc()).limit(1).correlate(Ticket).scalar_subquery())


# The first deadline promised to the citizen, as it was set (a level override moves it, a reopening adds
# another that does not count here).
_FIRST_DUE = (select(TicketDeadline.due_at).where(
    TicketDeadline.ticket_id == Ticket.id, TicketDeadline.cancelled_at.is_(None),
    TicketDeadline.kind == case((Ticket.request_type == APPEAL, DeadlineKind.APPEAL_RESOLUTION.value),
                                else_=DeadlineKind.RESPONSE.value))
    .order_by(TicketDeadline.id).limit(1).correlate(Ticket).scalar_subquery())
_RESPONDED_IN_TIME = (select(TicketEvent.id).where(
    TicketEvent.ticket_id == Ticket.id, TicketEvent.action.in_(RESPONSES), TicketEvent.at <= _FIRST_DUE)
    .correlate(Ticket).exists())
_LAST_CALLBACK = _last_of(TicketEvent.result, Action.CALLBACK)
# The last callback's finding, or 'reopened' when the case was reopened (重办) after it.
_LAST_OUTCOME = _last_of(case((TicketEvent.action == Action.REOPEN.value, REOPENED), else_=TicketEvent.result),
                         Action.CALLBACK, Action.REOPEN)
_COLUMNS = (
    func.count(Ticket.id).label("received"),
    _count_if(_history_has(Action.REJECT)).label("not_accepted"),
    _count_if(_RESPONDED_IN_TIME).label("responded_in_time"),
    _count_if(or_(_history_has(Action.ANSWER_DIRECTLY),
                  _LAST_OUTCOME.in_((*SATISFIED, "unreachable")))).label("resolved"),
    _count_if(_LAST_CALLBACK.in_(REACHED)).label("callbacks_reached"),
    _count_if(_LAST_CALLBACK.in_(SATISFIED)).label("satisfied"),
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
    return [ThreeRates(row.id, row.name, row.received, row.not_accepted, row.responded_in_time, row.resolved,
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


@dataclass(frozen=True)
class OverdueUnit:
    unit_id: int | None  # None: tickets at the centre
    unit_name: str | None
    supervised: int  # 督办 of the unit's deadlines fired in the period
    tickets_supervised: int  # the distinct tickets those were on
    overdue_at_end: int  # the unit's tickets with a deadline past due and unmet when the period ended (the
    # callback, the centre's work, left out)


def overdue_units(session: Session, start: datetime, end: datetime) -> list[OverdueUnit]:
    """Which units let deadlines pass (for the centre's 督办 report), the most supervised first. Read from
    the 督办 notifications (the unit that had the ticket when it fired) and the deadlines' event times, so
    a later archiving changes nothing."""
    supervised = {row.unit_id: (row.fired, row.tickets) for row in session.execute(
        select(Notification.unit_id, func.count(Notification.id).label("fired"),
               func.count(func.distinct(Notification.ticket_id)).label("tickets"))
        .where(Notification.kind == "supervise", Notification.created_at >= start, Notification.created_at < end)
        .group_by(Notification.unit_id))}
    unmet_at_end = (select(TicketDeadline.ticket_id).where(
        TicketDeadline.kind != DeadlineKind.CALLBACK.value, TicketDeadline.due_at < end,
        or_(TicketDeadline.met_at.is_(None), TicketDeadline.met_at >= end),
        or_(TicketDeadline.cancelled_at.is_(None), TicketDeadline.cancelled_at >= end)))
    overdue = dict(session.execute(select(Ticket.unit_id, func.count(Ticket.id)).where(
        Ticket.is_draft.is_(False), Ticket.id.in_(unmet_at_end)).group_by(Ticket.unit_id)).all())
    names = dict(session.execute(select(MemberUnit.id, MemberUnit.name)).all())
    rows = [OverdueUnit(unit_id, names.get(unit_id), *supervised.get(unit_id, (0, 0)), overdue.get(unit_id, 0))
            for unit_id in set(supervised) | set(overdue)]
    return sorted(rows, key=lambda row: (-row.supervised, -row.overdue_at_end, row.unit_name or ""))
