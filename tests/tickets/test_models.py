"""The models against the real databases: time zones survive a round trip, the database itself refuses
duplicates and impossible values, history is kept in order."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import IntegrityError, StatementError

from tickets.models import ApiToken, HolidayOverride, MemberUnit, Ticket, TicketEvent

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ticket(number: str, **fields) -> Ticket:
    return Ticket(number=number, content="x", status="received", **fields)


def test_datetimes_come_back_tz_aware_and_equal(session_factory):
    due = datetime(2026, 10, 9, 23, 59, 59, tzinfo=SHANGHAI)
    with session_factory.begin() as session:
        session.add(ticket("2628200001", response_due_at=due))
    with session_factory() as session:
        stored = session.query(Ticket).one()
        assert stored.response_due_at == due
        assert stored.response_due_at.utcoffset() == timezone.utc.utcoffset(None)
        assert stored.created_at.tzinfo is not None


def test_naive_datetimes_are_refused(session_factory):
    with session_factory() as session:
        session.add(ticket("2628200001", response_due_at=datetime(2026, 10, 9, 12, 0)))
        with pytest.raises(StatementError, match="naive datetime"):
            session.flush()


@pytest.mark.parametrize("duplicate", ["number", "idempotency_key", "call_id"])
def test_unique_columns_are_enforced_by_the_database(session_factory, duplicate):
    values = {"number": "2628200001", "idempotency_key": "k1", "call_id": "c1"}
    with session_factory.begin() as session:
        session.add(ticket(**values))
    other = {"number": "2628200002", "idempotency_key": "k2", "call_id": "c2", duplicate: values[duplicate]}
    with session_factory() as session:
        session.add(ticket(**other))
        with pytest.raises(IntegrityError):
            session.flush()


def test_level_outside_one_to_four_is_refused_by_the_database(session_factory):
    with session_factory() as session:
        session.add(ticket("2628200001", level=5))
        with pytest.raises(IntegrityError):
            session.flush()


def test_unit_staff_token_needs_a_unit_and_roles_are_closed(session_factory):
    with session_factory() as session:
        session.add(ApiToken(token_sha256="a" * 64, name="s", role="unit_staff"))
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()
        session.add(ApiToken(token_sha256="b" * 64, name="s", role="root"))
        with pytest.raises(IntegrityError):
            session.flush()


def test_foreign_keys_are_enforced(session_factory):
    with session_factory() as session:
        session.add(ticket("2628200001", unit_id=42))
        with pytest.raises(IntegrityError):
            session.flush()


def test_units_keep_seat_order_and_lists(session_factory):
    with session_factory.begin() as session:
        session.add(MemberUnit(name="市供电公司", areas=["西城区", "东城区"], categories=["供电"],
                               seat_numbers=["3003", "3001", "3002"]))
        session.add(HolidayOverride(day=date(2026, 10, 10), is_working_day=True, note="调休"))
    with session_factory() as session:
        unit = session.query(MemberUnit).one()
        assert (unit.areas, unit.seat_numbers, unit.working_hours) == (["西城区", "东城区"], ["3003", "3001", "3002"],
                                                                       "08:30-12:00,13:30-17:30")
        assert session.get(HolidayOverride, date(2026, 10, 10)).is_working_day is True


def test_history_comes_back_in_order(session_factory):
    with session_factory.begin() as session:
        stored = ticket("2628200001")
        for action in ("create", "dispatch", "sign"):
            stored.events.append(TicketEvent(actor="op", action=action))
        session.add(stored)
    with session_factory() as session:
        assert [e.action for e in session.query(Ticket).one().events] == ["create", "dispatch", "sign"]
