"""The working-day calendar: chinesecalendar's 2026 data (holidays and make-up working weekends, 调休),
administrator overrides on top of it, and the Monday-Friday fallback past the data with a logged warning."""
import logging
from datetime import date, timedelta

import pytest

import tickets.calendar
from tickets.calendar import WorkingCalendar

# The State Council's 2026 make-up working weekends (国办发明电〔2025〕7号), as shipped in chinesecalendar 1.11.
MAKE_UP_WEEKENDS_2026 = [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9),
                         date(2026, 9, 20), date(2026, 10, 10)]
SPRING_FESTIVAL_2026 = [date(2026, 2, 15) + timedelta(days=i) for i in range(9)]  # 15th (Sun) - 23rd (Mon)
NATIONAL_DAY_2026 = [date(2026, 10, 1) + timedelta(days=i) for i in range(7)]


@pytest.fixture
def calendar():
    return WorkingCalendar()


def test_make_up_weekends_are_working_days(calendar):
    assert all(day.weekday() >= 5 for day in MAKE_UP_WEEKENDS_2026)
    assert [day for day in MAKE_UP_WEEKENDS_2026 if calendar.is_working_day(day)] == MAKE_UP_WEEKENDS_2026


def test_golden_weeks_are_holidays_including_their_weekdays(calendar):
    assert [day for day in SPRING_FESTIVAL_2026 + NATIONAL_DAY_2026 if calendar.is_working_day(day)] == []
    assert calendar.is_working_day(date(2026, 2, 24)) and calendar.is_working_day(date(2026, 10, 8))


def test_ordinary_weeks_are_monday_to_friday(calendar):
    week = [date(2026, 3, 2) + timedelta(days=i) for i in range(7)]
    assert [calendar.is_working_day(day) for day in week] == [True] * 5 + [False] * 2


def test_overrides_win_over_the_statutory_data():
    calendar = WorkingCalendar({date(2026, 2, 14): False, date(2026, 2, 16): True})
    assert calendar.is_working_day(date(2026, 2, 14)) is False
    assert calendar.is_working_day(date(2026, 2, 16)) is True
    assert calendar.has_statutory_data(date(2026, 2, 14))


def test_past_the_data_falls_back_to_monday_friday_and_warns_once_per_year(monkeypatch, caplog):
    monkeypatch.setattr(tickets.calendar, "_warned_years", set())
    calendar = WorkingCalendar({date(2027, 1, 1): False, date(2027, 1, 9): True})
    assert not calendar.has_statutory_data(date(2027, 1, 4))
    with caplog.at_level(logging.WARNING, logger="tickets.calendar"):
        week = [calendar.is_working_day(date(2027, 1, 11) + timedelta(days=i)) for i in range(7)]
        calendar.is_working_day(date(2027, 6, 1))
        calendar.is_working_day(date(2028, 6, 1))
    assert week == [True] * 5 + [False] * 2
    assert calendar.is_working_day(date(2027, 1, 1)) is False  # a Friday, made a holiday by the administrator
    assert calendar.is_working_day(date(2027, 1, 9)) is True  # a Saturday, made a working day
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[0].startswith("no statutory holiday data for 2027: counting Monday-Friday")
    assert warnings[1].startswith("no statutory holiday data for 2028")
