"""The `WorkingDays` port over the ticket database's calendar: the statutory calendar plus the holiday
overrides an administrator keeps in the database, read at each check so an edit made through the API
applies to the next call without a restart."""
from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session, sessionmaker

from tickets.calendar import WorkingCalendar
from tickets.service import load_holiday_overrides


class DatabaseCalendar:
    """`callflows.ports.WorkingDays` on `session_factory` (tickets.db.open_database)."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def is_working_day(self, d: date) -> bool:
        with self.session_factory() as session, session.begin():
            overrides = load_holiday_overrides(session)
        return WorkingCalendar(overrides).is_working_day(d)
