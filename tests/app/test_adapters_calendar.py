"""DatabaseCalendar (the `WorkingDays` port) on SQLite and PostgreSQL: statutory days and live overrides."""
from __future__ import annotations

from datetime import date

from app.adapters.calendar_adapter import DatabaseCalendar
from tests.app.database_outage import SqliteOutage
from test_adapters_tickets import session_factory  # noqa: F401 - the real-database fixture
from tickets import service

NATIONAL_DAY = date(2026, 10, 1)
MAKE_UP_SATURDAY = date(2026, 10, 10)  # worked for the golden week
PLAIN_TUESDAY = date(2026, 12, 1)


def test_statutory_holidays_and_make_up_days(session_factory):  # noqa: F811
    calendar = DatabaseCalendar(session_factory)

    assert calendar.is_working_day(NATIONAL_DAY) is False
    assert calendar.is_working_day(MAKE_UP_SATURDAY) is True
    assert calendar.is_working_day(PLAIN_TUESDAY) is True


def test_an_override_saved_after_start_applies_to_the_next_check(session_factory):  # noqa: F811
    calendar = DatabaseCalendar(session_factory)
    assert calendar.is_working_day(PLAIN_TUESDAY) is True

    with session_factory.begin() as session:
        service.set_holiday_override(session, PLAIN_TUESDAY, False, "city holiday")

    assert calendar.is_working_day(PLAIN_TUESDAY) is False


def test_with_the_database_away_the_last_overrides_read_still_apply(tmp_path):
    database = SqliteOutage(tmp_path)
    try:
        with database.session_factory.begin() as session:
            service.set_holiday_override(session, PLAIN_TUESDAY, False, "city holiday")
        calendar = DatabaseCalendar(database.session_factory)
        assert calendar.is_working_day(PLAIN_TUESDAY) is False
        database.away()
        assert calendar.is_working_day(PLAIN_TUESDAY) is False   # the override read before, not an error
        assert calendar.is_working_day(NATIONAL_DAY) is False     # the statutory calendar needs no database
    finally:
        database.back()
        database.close()
