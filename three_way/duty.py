"""When a member unit's remote seats may be rung: its working hours, on working days of the statutory calendar.

A unit states its hours as text, e.g. "08:30-12:00,13:30-17:30" (the member-unit directory's
`working_hours`); "00:00-24:00" is round the clock. Outside those hours, or on a statutory holiday (and on a
weekend that is not a make-up working day), nobody is rung: the case goes to the unit as a work order instead.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo

from three_way.ports import WorkingDays

HOTLINE_ZONE = ZoneInfo("Asia/Shanghai")  # the hours are the unit's local office hours
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class WorkingHours:
    """Spans [start, end) of the day; end 24:00 is midnight at the end of the day."""

    spans: tuple[tuple[time, time | None], ...]  # None as end: until midnight

    @classmethod
    def parse(cls, text: str) -> WorkingHours:
        """"08:30-12:00,13:30-17:30" -> WorkingHours; ValueError naming the part that is wrong."""
        spans: list[tuple[time, time | None]] = []
        for part in text.split(","):
            match = _SPAN.match(part)
            if not match:
                raise ValueError(f"working_hours: {part.strip()!r} is not HH:MM-HH:MM (e.g. 08:30-12:00)")
            start_h, start_m, end_h, end_m = (int(g) for g in match.groups())
            try:
                start = time(start_h, start_m)
                end = None if (end_h, end_m) == (24, 0) else time(end_h, end_m)
            except ValueError:
                raise ValueError(f"working_hours: {part.strip()!r} is not a time of day") from None
            if end is not None and end <= start:
                raise ValueError(f"working_hours: {part.strip()!r} ends before it starts")
            spans.append((start, end))
        return cls(tuple(spans))

    def contains(self, moment: time) -> bool:
        return any(start <= moment and (end is None or moment < end) for start, end in self.spans)

    def __str__(self) -> str:
        return ",".join(f"{start:%H:%M}-{'24:00' if end is None else format(end, '%H:%M')}"
                        for start, end in self.spans)


def on_duty(hours: WorkingHours, now: datetime, calendar: WorkingDays) -> bool:
    """True when `now` (any time zone) falls in the hours, Asia/Shanghai time, on a working day."""
    if now.tzinfo is None:
        raise ValueError("on_duty needs a time-zone-aware moment")
    local = now.astimezone(HOTLINE_ZONE)
    return calendar.is_working_day(local.date()) and hours.contains(local.time())


@dataclass(frozen=True)
class Seat:
    """A remote seat (远端坐席): its SIP number and the language its announcement is spoken in."""

    number: str
    language: str = "zh"


@dataclass(frozen=True)
class UnitSeats:
    """A member unit's seats in the order to ring them, and its working hours."""

    unit: str
    seats: Sequence[Seat]
    hours: WorkingHours

    def on_duty(self, now: datetime, calendar: WorkingDays) -> bool:
        """Someone can be rung now: the unit has seats and it is within its hours on a working day."""
        return bool(self.seats) and on_duty(self.hours, now, calendar)


class SeatDirectory(Protocol):
    """The member units' seats as the composition reads them from the directory (a database read per call,
    so an edit in the API applies to the next call)."""

    def seats_of(self, unit: str) -> UnitSeats | None:
        """The unit's seats and hours; None for a unit that is not in the directory."""
        ...
