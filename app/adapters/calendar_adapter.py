"""The `WorkingDays` port over the ticket database's calendar: the statutory calendar plus the holiday
overrides an administrator keeps in the database, read at each check so an edit made through the API
applies to the next call without a restart. While the database is away the last overrides read are used:
a call's business-hours question must not fail because tickets cannot be written."""
from __future__ import annotations

import logging
from datetime import date

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tickets.calendar import WorkingCalendar
from tickets.service import load_holiday_overrides

log = logging.getLogger(__name__)


class DatabaseCalendar:
    """`callflows.ports.WorkingDays` on `session_factory` (tickets.db.open_database)."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        self._last_read: dict[date, bool] = {}

    def is_working_day(self, d: date) -> bool:
        try:
            with self.session_factory() as session, session.begin():
                self._last_read = load_holiday_overrides(session)
        except SQLAlchemyError as error:
            log.warning("holiday overrides unavailable (%s); using the last ones read", type(error).__name__)
        return WorkingCalendar(self._last_read).is_working_day(d)
