"""The administrator's holiday overrides as the deadline rules read them, kept per database in the process.

Every ticket created, submitted or moved computes deadlines on the working-day calendar, and reading the
overrides table for each one was a statement per write (and per create through the API) for a table that
changes a few times a year. So the overrides are read once and kept, with this invalidation story:

- a commit that changed an override in this process (tickets.service.set_holiday_override and
  delete_holiday_override call `changed`) drops every kept copy: the next deadline here uses it;
- a change made by another node sharing the database is seen here after at most `max_age_seconds`
  (MAX_AGE_SECONDS): overrides are set days ahead of the days they concern, so a deadline computed in those
  seconds on another node is the only one that can miss it;
- a session whose own transaction changed an override, not yet committed, reads the table itself and so sees
  its own change, as it did before the cache.

Copies are kept per engine (a process may open several databases); a session bound to a single connection
reads the table every time.
"""
from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Mapping
from datetime import date
from types import MappingProxyType

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from tickets import db

MAX_AGE_SECONDS = 10.0
_CHANGED_IN = "tickets.holiday_overrides_changed"  # db.mark_transaction: this transaction changed one


class HolidayOverridesCache:
    """`get(session)`: the overrides {day: is working day} as `load(session)` reads them, from a copy at most
    `max_age_seconds` old (by `clock`) that no commit of `changed` has invalidated since."""

    def __init__(self, load: Callable[[Session], Mapping[date, bool]], *, max_age_seconds: float = MAX_AGE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._generation = 0  # bumped by each commit that changed an override
        self._lock = threading.Lock()
        self._copies: weakref.WeakKeyDictionary[Engine, tuple[int, float, Mapping[date, bool]]] = (
            weakref.WeakKeyDictionary())

    def get(self, session: Session) -> Mapping[date, bool]:
        bind = session.get_bind()
        if not isinstance(bind, Engine) or db.in_marked_transaction(session, _CHANGED_IN):
            return self._load(session)
        generation, now = self._generation, self._clock()
        kept = self._copies.get(bind)
        if kept is not None and kept[0] == generation and now - kept[1] < self.max_age_seconds:
            return kept[2]
        overrides = MappingProxyType(dict(self._load(session)))
        with self._lock:
            self._copies[bind] = (generation, now, overrides)  # a commit meanwhile left it stale: re-read next
        return overrides

    def changed(self, session: Session) -> None:
        """`session`'s transaction changed an override: it reads its own change until it ends, and its commit
        invalidates every kept copy (a rollback leaves them valid)."""
        db.mark_transaction(session, _CHANGED_IN)
        event.listen(session, "after_commit", self._invalidate, once=True)

    def _invalidate(self, session: Session) -> None:
        with self._lock:
            self._generation += 1
