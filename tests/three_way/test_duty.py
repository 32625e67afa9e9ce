"""three_way.duty: working hours parsed with clear errors, and 'on duty' = inside the hours (Shanghai time)
on a working day of the statutory calendar (the real tickets calendar: holidays and make-up working days)."""
from __future__ import annotations

from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from three_way.duty import Seat, UnitSeats, WorkingHours, on_duty
from tickets.calendar import WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
OFFICE = WorkingHours.parse("08:30-12:00, 13:30-17:30")


def test_hours_are_half_open_spans():
    assert OFFICE.contains(time(8, 30)) and OFFICE.contains(time(11, 59, 59))
    assert not OFFICE.contains(time(12, 0)) and not OFFICE.contains(time(13, 0))
    assert OFFICE.contains(time(17, 29)) and not OFFICE.contains(time(17, 30))
    assert not OFFICE.contains(time(8, 29))
    assert str(OFFICE) == "08:30-12:00,13:30-17:30"
    always = WorkingHours.parse("00:00-24:00")
    assert always.contains(time(0, 0)) and always.contains(time(23, 59, 59)) and str(always) == "00:00-24:00"


@pytest.mark.parametrize("text,message", [
    ("8:30", "'8:30' is not HH:MM-HH:MM"),
    ("08:30-12:00,lunch", "'lunch' is not HH:MM-HH:MM"),
    ("25:00-26:00", "'25:00-26:00' is not a time of day"),
    ("12:00-08:00", "'12:00-08:00' ends before it starts"),
    ("", "'' is not HH:MM-HH:MM"),
])
def test_bad_hours_name_the_part_that_is_wrong(text, message):
    with pytest.raises(ValueError, match=f"working_hours: {message}"):
        WorkingHours.parse(text)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def test_on_duty_follows_the_statutory_calendar_and_shanghai_time():
    calendar = WorkingCalendar()
    assert on_duty(OFFICE, at(2026, 9, 29, 10, 0), calendar)  # a Tuesday
    assert not on_duty(OFFICE, at(2026, 10, 1, 10, 0), calendar)  # National Day: no seat is rung
    assert not on_duty(OFFICE, at(2026, 10, 3, 10, 0), calendar)  # inside the golden week
    assert not on_duty(OFFICE, at(2026, 9, 26, 10, 0), calendar)  # an ordinary Saturday
    assert not on_duty(OFFICE, at(2026, 9, 29, 12, 30), calendar)  # lunch break
    # 02:00 UTC is 10:00 in Shanghai: the hours are the unit's local office hours
    assert on_duty(OFFICE, datetime(2026, 9, 29, 2, 0, tzinfo=timezone.utc), calendar)
    assert not on_duty(OFFICE, datetime(2026, 9, 29, 12, 0, tzinfo=timezone.utc), calendar)  # 20:00 there
    with pytest.raises(ValueError, match="time-zone-aware"):
        on_duty(OFFICE, datetime(2026, 9, 29, 10, 0), calendar)


def test_a_make_up_working_weekend_and_an_administrators_holiday_count():
    calendar = WorkingCalendar()
    assert on_duty(OFFICE, at(2026, 10, 10, 9, 0), calendar)  # 调休: Saturday 10 October 2026 is worked
    assert on_duty(OFFICE, at(2026, 9, 20, 9, 0), calendar)  # and Sunday 20 September
    assert not on_duty(OFFICE, at(2026, 9, 25, 9, 0), calendar)  # Mid-Autumn Festival, a Friday
    closed = WorkingCalendar({datetime(2026, 9, 29).date(): False})
    assert not on_duty(OFFICE, at(2026, 9, 29, 10, 0), closed)


def test_a_unit_without_seats_is_never_on_duty():
    calendar = WorkingCalendar()
    staffed = UnitSeats("自来水公司", (Seat("1002"), Seat("1003", "ko")), OFFICE)
    assert staffed.on_duty(at(2026, 9, 29, 10, 0), calendar)
    assert not UnitSeats("自来水公司", (), OFFICE).on_duty(at(2026, 9, 29, 10, 0), calendar)
