"""three_way's `SeatDirectory` over the member units (tickets.models.MemberUnit).

Read at every call, so an administrator's edit of a unit's seats, their languages or its working hours
applies to the next three-way call. Hours that cannot be read are logged and count as never on duty:
a typo must not ring someone's phone at night.
"""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from three_way.duty import Seat, UnitSeats, WorkingHours
from tickets.models import MemberUnit

log = logging.getLogger(__name__)

NEVER = WorkingHours(())


class DatabaseSeatDirectory:
    """A unit's remote seats in ringing order, each with its announcement language (`default_language`
    unless the unit's seat_languages names another), and its working hours."""

    def __init__(self, session_factory: sessionmaker[Session], default_language: str = "zh") -> None:
        self.session_factory = session_factory
        self.default_language = default_language

    def seats_of(self, unit: str) -> UnitSeats | None:
        with self.session_factory() as session:
            member = session.scalar(select(MemberUnit).where(MemberUnit.name == unit))
            if member is None:
                return None
            languages = member.seat_languages or {}
            seats = tuple(Seat(number, languages.get(number, self.default_language))
                          for number in member.seat_numbers or [])
            try:
                hours = WorkingHours.parse(member.working_hours)
            except ValueError as error:
                log.error("member unit %s: %s; its seats are never rung until it is corrected", unit, error)
                hours = NEVER
            return UnitSeats(member.name, seats, hours)
