"""Which days are working days: the Chinese statutory calendar (holidays and make-up working weekends, 调休)
from the `chinesecalendar` package, corrected by an administrator's overrides.

The package only knows the years the State Council has published (up to 2026 in 1.11). Beyond that the
calendar falls back to Monday–Friday plus overrides, says so (`has_statutory_data`) and logs it once per year,
so deadlines keep working and the missing data is visible instead of an exception in a call.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date

import chinese_calendar

log = logging.getLogger(__name__)
_warned_years: set[int] = set()


class WorkingCalendar:
    def __init__(self, overrides: Mapping[date, bool] | None = None):
        self.overrides = dict(overrides or {})

    def has_statutory_data(self, day: date) -> bool:
        try:
            chinese_calendar.is_workday(day)
        except NotImplementedError:
            return False
        return True

    def is_statutory_holiday(self, day: date) -> bool:
        """A public holiday (法定节假日 and its days off), not an ordinary weekend: no callback is placed on it.
        An administrator's override decides first; beyond the published years nothing is a holiday."""
        if day in self.overrides:
            return not self.overrides[day]
        try:
            holiday, name = chinese_calendar.get_holiday_detail(day)
        except NotImplementedError:
            return False
        return holiday and name is not None

    def is_working_day(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:
            if day.year not in _warned_years:
                _warned_years.add(day.year)
                log.warning("no statutory holiday data for %d: counting Monday-Friday plus administrator "
                            "overrides; add the year's holidays as overrides or update chinesecalendar", day.year)
            return day.weekday() < 5
