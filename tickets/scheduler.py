"""Reminders (催办), supervision of overdue tickets (督办) and due callbacks (回访), run from the database.

The schedule is the tickets' own due timestamps (remind_at, response_due_at, callback_due_at), and each job
marks what it did (reminded_at, supervised_at, a callback_due history line) with a conditional UPDATE in the
same transaction as the history line. So a restart loses nothing, running twice fires nothing twice, and two
nodes racing on one ticket fire it once (the claim is conditional on the marker or on the row's version).
The claim repeats the whole due condition, status included: a ticket replied between the candidate query
and the claim is not flagged. The job lock (Redis with several nodes) only keeps all but one node idle per
round; when Redis is down every node runs the jobs and the claims still fire each ticket once.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.orm import Session, sessionmaker

from tickets.lifecycle import Status
from tickets.locks import JobLock, LocalJobLock
from tickets.models import Ticket, TicketEvent, utcnow
from tickets.service import record_event

log = logging.getLogger(__name__)
ACTOR = "scheduler"
# Statuses in which the responsible side still owes the citizen a response.
WAITING = (Status.RECEIVED, Status.DISPATCHED, Status.SIGNED, Status.IN_PROGRESS, Status.ESCALATED)
REMIND, SUPERVISE, CALLBACK_DUE = "remind", "supervise", "callback_due"


@dataclass
class RoundReport:
    """Ticket numbers each job fired for in one round (empty when another node held the job's lock)."""

    reminded: list[str] = field(default_factory=list)
    supervised: list[str] = field(default_factory=list)
    callbacks_due: list[str] = field(default_factory=list)


class Scheduler:
    def __init__(self, session_factory: sessionmaker[Session], lock: JobLock | None = None, *,
                 interval_seconds: float = 30.0, batch: int = 200):
        self.session_factory = session_factory
        self.lock = lock or LocalJobLock()
        self.interval_seconds = interval_seconds
        self.batch = batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime | None = None) -> RoundReport:
        now = now or utcnow()
        report = RoundReport()
        with self.lock.hold(REMIND) as mine:
            if mine:
                report.reminded = self._remind(now)
        with self.lock.hold(SUPERVISE) as mine:
            if mine:
                report.supervised = self._supervise(now)
        with self.lock.hold(CALLBACK_DUE) as mine:
            if mine:
                report.callbacks_due = self._callbacks_due(now)
        return report

    def _remind(self, now: datetime) -> list[str]:
        due = (Ticket.status.in_(WAITING), Ticket.remind_at <= now, Ticket.reminded_at.is_(None),
               Ticket.response_due_at > now)
        return self._fire(REMIND, due, {"reminded_at": now},
                          lambda t: f"催办: response due {t.response_due_at.isoformat()}", now)

    def _supervise(self, now: datetime) -> list[str]:
        due = (Ticket.status.in_(WAITING), Ticket.response_due_at <= now, Ticket.supervised_at.is_(None))
        return self._fire(SUPERVISE, due, {"supervised_at": now, "overdue": True},
                          lambda t: f"督办: overdue since {t.response_due_at.isoformat()}, escalated "
                                    "for supervision", now)

    def _callbacks_due(self, now: datetime) -> list[str]:
        already = exists().where(TicketEvent.ticket_id == Ticket.id, TicketEvent.action == CALLBACK_DUE,
                                 TicketEvent.at >= Ticket.replied_at)
        due = (Ticket.status == Status.REPLIED, Ticket.callback_due_at <= now, ~already)
        # The marker is a history line, not a column of the row, so a concurrent claim is excluded by the
        # row's version instead (PostgreSQL re-checks only the row itself when two UPDATEs meet).
        return self._fire(CALLBACK_DUE, due, {}, lambda t: f"回访 due since {t.callback_due_at.isoformat()}",
                          now, by_version=True)

    def _fire(self, action: str, due: tuple[ColumnElement[bool], ...], marks: dict[str, Any],
              note: Callable[[Ticket], str], now: datetime, *, by_version: bool = False) -> list[str]:
        """One short transaction per ticket: claim it with a conditional UPDATE that repeats every `due`
        condition (so a ticket replied or re-scheduled since the candidates were read is left alone), then
        append the history line. A claim that matches no row was someone else's (another node, or a
        concurrent transition)."""
        fired = []
        with self.session_factory() as session:
            rows = session.execute(select(Ticket.id, Ticket.version).where(*due)
                                   .order_by(Ticket.id).limit(self.batch)).all()
        for ticket_id, version in rows:
            guard = (Ticket.version == version,) if by_version else ()
            claim = update(Ticket).where(Ticket.id == ticket_id, *due, *guard).values(
                **marks, version=Ticket.version + 1)
            with self.session_factory.begin() as session:
                if session.execute(claim.execution_options(synchronize_session=False)).rowcount != 1:
                    continue
                ticket = session.get(Ticket, ticket_id, populate_existing=True)
                record_event(session, ticket, ACTOR, action, ticket.status, note(ticket), now)
                fired.append(ticket.number)
        if fired:
            log.info("%s fired for %d tickets: %s", action, len(fired), ", ".join(fired))
        return fired

    def start(self) -> None:
        """Run rounds in a daemon thread until `stop` (server.py's job)."""
        self._thread = threading.Thread(target=self._loop, name="ticket-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            try:
                self.run_once()
            except Exception:  # a database hiccup must not end reminders for good
                log.exception("scheduler round failed; retrying in %.0f s", self.interval_seconds)
