"""Statistics on the real databases over a month of tickets with known outcomes."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

import ticket_steps
from tickets import service, stats
from tickets.lifecycle import Action, Status, allowed_actions
from tickets.models import Ticket

SHANGHAI = ZoneInfo("Asia/Shanghai")
MARCH = (datetime(2026, 3, 1, tzinfo=SHANGHAI), datetime(2026, 4, 1, tzinfo=SHANGHAI))


def day(n: int, hour: int = 10) -> datetime:
    return datetime(2026, 3, n, hour, tzinfo=SHANGHAI)


def make(session, rules, at, content, **fields):
    ticket, _ = service.create_ticket(session, {"content": content, **fields}, rules=rules, actor="op", now=at)
    return ticket


def walk(session, rules, ticket, at, *steps):
    ticket_steps.walk(session, rules, ticket.id, at, *steps)


WORKED = [(Action.DISPATCH, 1, {}), (Action.SIGN, 2, {}), (Action.START, 3, {})]


@pytest.fixture
def month(session_factory, rules):
    """Six tickets received in March with known outcomes, plus a draft and an April ticket (not counted)."""
    with session_factory.begin() as session:
        water = service.create_unit(session, {"name": "市水务局"})
        roads = service.create_unit(session, {"name": "市住建局"})
        on_time = make(session, rules, day(2), "停水", level=2, unit_id=water.id, topic="供水", request_type="求助")
        walk(session, rules, on_time, day(2), *WORKED, (Action.REPLY, 10, {}),
             (Action.CALLBACK, 30, {"callback_result": "满意"}), (Action.CLOSE, 31, {}))
        late = make(session, rules, day(3), "燃气泄漏", level=1, unit_id=water.id, topic="燃气", request_type="求助")
        walk(session, rules, late, day(3), *WORKED, (Action.REPLY, 5, {}),
             (Action.CALLBACK, 30, {"callback_result": "不满意"}))
        answered = make(session, rules, day(4), "社保卡怎么补办", level=3, topic="社保", request_type="咨询")
        walk(session, rules, answered, day(4), (Action.ANSWER_DIRECTLY, 0, {}))
        make(session, rules, day(5), "路灯坏了", level=3, unit_id=roads.id, topic="路灯", request_type="投诉")
        rejected = make(session, rules, day(6), "外省的事", level=3, topic="其他", request_type="咨询")
        walk(session, rules, rejected, day(6), (Action.REJECT, 0, {"rejection_reason": "out_of_jurisdiction"}))
        unreachable = make(session, rules, day(7), "井盖丢失", level=2, unit_id=roads.id, topic="供水",
                           request_type="举报")
        walk(session, rules, unreachable, day(7), *WORKED, (Action.REPLY, 20, {}),
             (Action.CALLBACK, 40, {"callback_result": "unreachable"}))
        service.create_ticket(session, {"content": "挂断"}, rules=rules, actor="ivr", draft=True, now=day(8))
        make(session, rules, datetime(2026, 4, 2, tzinfo=SHANGHAI), "四月的", level=3, topic="供水")
    return {"water": water.id, "roads": roads.id, "late": late.id}


def test_three_rates_over_the_centre(session_factory, month):
    with session_factory() as session:
        rates = stats.three_rates(session, *MARCH)
    assert (rates.received, rates.not_accepted, rates.responded_in_time, rates.resolved, rates.callbacks_reached,
            rates.satisfied) == (6, 1, 4, 3, 2, 1)
    # 不予受理 is neither resolved nor unresolved: 3 resolved of the 5 accepted
    assert (rates.response_rate, rates.resolution_rate, rates.satisfaction_rate) == (0.6667, 0.6, 0.5)


def test_archiving_everything_changes_no_statistic(session_factory, rules, month):
    def figures():
        with session_factory() as session:
            return (stats.three_rates(session, *MARCH), stats.three_rates_per_unit(session, *MARCH),
                    stats.three_rates(session, *MARCH, unit_id=month["water"]), stats.hot_topics(session, *MARCH))

    before = figures()
    with session_factory.begin() as session:
        for ticket in session.scalars(select(Ticket).where(Ticket.is_draft.is_(False))).all():
            if ticket.status == Status.CALLBACK_DONE:
                service.transition(session, ticket.id, Action.CLOSE, actor="op", rules=rules, now=day(25))
            if Action.ARCHIVE in allowed_actions(Status(ticket.status)):
                service.transition(session, ticket.id, Action.ARCHIVE, actor="op", rules=rules, now=day(26))
        statuses = sorted(session.scalars(select(Ticket.status).where(Ticket.is_draft.is_(False))))
    assert statuses == ["archived"] * 5 + ["received"] * 2  # all but the roads ticket nobody worked, and April's
    assert figures() == before
    assert (before[0].responded_in_time, before[0].resolved, before[0].not_accepted) == (4, 3, 1)


def test_a_reopened_case_is_resolved_again_only_by_a_new_callback(session_factory, rules, month):
    def water():
        with session_factory() as session:
            rates = stats.three_rates(session, *MARCH, unit_id=month["water"])
            return rates.resolved, rates.callbacks_reached, rates.satisfied

    assert water() == (1, 2, 1)  # the late ticket's callback found the citizen unsatisfied
    with session_factory.begin() as session:
        walk(session, rules, session.get(Ticket, month["late"]), day(10), (Action.REOPEN, 0, {}),
             (Action.SIGN, 1, {}), (Action.START, 2, {}), (Action.REPLY, 3, {}))
    assert water() == (1, 2, 1)  # replied again, no callback yet: still the unsatisfied finding
    with session_factory.begin() as session:
        walk(session, rules, session.get(Ticket, month["late"]), day(11),
             (Action.CALLBACK, 0, {"callback_result": "基本满意"}))
    assert water() == (2, 2, 2)


def test_three_rates_per_unit(session_factory, month):
    with session_factory() as session:
        water = stats.three_rates(session, *MARCH, unit_id=month["water"])
        per_unit = {r.unit_name: r for r in stats.three_rates_per_unit(session, *MARCH)}
    assert (water.unit_name, water.received, water.response_rate, water.satisfaction_rate) == ("市水务局", 2, 0.5, 0.5)
    assert set(per_unit) == {"市水务局", "市住建局"}
    roads = per_unit["市住建局"]
    assert (roads.received, roads.responded_in_time, roads.resolved, roads.satisfaction_rate) == (2, 1, 1, None)


def test_empty_period_has_no_rates(session_factory, month):
    with session_factory() as session:
        rates = stats.three_rates(session, datetime(2025, 1, 1, tzinfo=SHANGHAI), datetime(2025, 2, 1,
                                                                                            tzinfo=SHANGHAI))
    assert (rates.received, rates.response_rate, rates.satisfaction_rate) == (0, None, None)


def test_counts_and_hot_topics(session_factory, month):
    with session_factory() as session:
        assert list(stats.counts_by(session, "level", *MARCH).items()) == [("3", 3), ("2", 2), ("1", 1)]
        by_type = stats.counts_by(session, "request_type", *MARCH)
        assert by_type == {"咨询": 2, "求助": 2, "举报": 1, "投诉": 1}
        assert list(by_type.values()) == [2, 2, 1, 1]  # largest first
        assert stats.hot_topics(session, *MARCH, limit=1) == [("供水", 2)]


def test_overdue_list_is_what_still_waits_past_its_deadline(session_factory, month, rules):
    with session_factory() as session:
        overdue = stats.overdue_tickets(session, day(20))
        assert [t.content for t in overdue] == ["路灯坏了"]
        assert stats.overdue_tickets(session, day(5, 11)) == []
        flagged, _, _ = service.list_tickets(session, service.TicketQuery(overdue=True, now=day(20), sort="number"))
        assert [t.content for t in flagged] == ["燃气泄漏", "路灯坏了"]  # the late reply stays flagged


def test_calls_per_hour_counts_call_times_in_shanghai_hours_drafts_included(session_factory, rules):
    with session_factory.begin() as session:
        for at in (day(2, 9), day(2, 9), day(3, 23), datetime(2026, 3, 4, 0, 30, tzinfo=SHANGHAI)):
            make(session, rules, at, "路灯坏了", call_time=at)
        service.save_draft(session, "call-1", {"content": "", "call_time": day(5, 9)}, rules=rules)
        make(session, rules, day(5, 9), "outside", call_time=datetime(2026, 4, 1, 9, tzinfo=SHANGHAI))
    with session_factory() as session:
        hours = stats.calls_per_hour(session, *MARCH)
    assert hours[9] == 3 and hours[23] == 1 and hours[0] == 1
    assert sum(hours) == 5 and len(hours) == 24
