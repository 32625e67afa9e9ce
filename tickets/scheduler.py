"""Reminders (催办) and supervision of missed deadlines (督办), run from the database, per deadline.

Every deadline a ticket is under (`ticket_deadlines`: response, unit_reply, the reviews, the appeal's
milestones, the callback) is reminded once when `remind_at` has come and supervised once when `due_at` has
passed, as long as no event met or cancelled it. Each job claims the deadline row with a conditional UPDATE
(on reminded_at / supervised_at being empty) in the same transaction as the ticket's history line, so a
restart loses nothing, running twice fires nothing twice, and two nodes racing on one deadline fire it once.
The claim repeats the whole due condition: a deadline met, cancelled or moved between the candidate query and
the claim (the unit replied meanwhile) is not flagged. The same transaction writes the notification for the
unit handling the ticket (tickets.notifications), so there is one per 催办/督办, and a 督办 at a unit may flag
the ticket for repeated 推诿; a unit's webhook is posted later by tickets.webhooks, never from here. The job
lock (Redis with several nodes) only keeps all but one node idle per round; when Redis is down every node
runs the jobs and the claims still fire each deadline once.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.orm import Session, sessionmaker

from tickets import notifications
from tickets.claims import claim_each
from tickets.locks import JobLock, LocalJobLock
from tickets.models import TicketDeadline, utcnow
from tickets.periodic import Periodic
from tickets.service import record_event

log = logging.getLogger(__name__)
ACTOR = "scheduler"
REMIND, SUPERVISE = notifications.REMIND, notifications.SUPERVISE
_OPEN = and_(TicketDeadline.met_at.is_(None), TicketDeadline.cancelled_at.is_(None))


@dataclass(frozen=True)
class Fired:
    number: str  # the ticket's
    kind: str  # the deadline's


@dataclass
class RoundReport:
    """What each job fired for in one round (empty when another node held the job's lock)."""

    reminded: list[Fired] = field(default_factory=list)
    supervised: list[Fired] = field(default_factory=list)


class Scheduler:
    def __init__(self, session_factory: sessionmaker[Session], lock: JobLock | None = None, *,
                 interval_seconds: float = 30.0, batch: int = 200):
        self.session_factory = session_factory
        self.lock = lock or LocalJobLock()
        self.batch = batch
        self._rounds = Periodic("ticket-scheduler", self.run_once, interval_seconds)

    def run_once(self, now: datetime | None = None) -> RoundReport:
        now = now or utcnow()
        report = RoundReport()
        with self.lock.hold(REMIND) as mine:
            if mine:
                report.reminded = self._remind(now)
        with self.lock.hold(SUPERVISE) as mine:
            if mine:
                report.supervised = self._supervise(now)
        return report

    def _remind(self, now: datetime) -> list[Fired]:
        """催办 before a deadline expires: once, when its reminder time has come and it is still open."""
        due_soon = (_OPEN, TicketDeadline.reminded_at.is_(None), TicketDeadline.remind_at <= now,
                    TicketDeadline.due_at > now)
        return self._fire(due_soon, TicketDeadline.reminded_at, REMIND, now,
                          lambda d: f"催办: {d.kind} due {d.due_at.isoformat()}")

    def _supervise(self, now: datetime) -> list[Fired]:
        """督办 once a deadline has passed unmet: the ticket is flagged overdue and put on the supervisor's
        list (Ticket.supervised_at, the first time)."""
        missed = (_OPEN, TicketDeadline.supervised_at.is_(None), TicketDeadline.due_at <= now)

        def mark(deadline: TicketDeadline) -> str:
            ticket = deadline.ticket
            ticket.overdue = True
            ticket.supervised_at = ticket.supervised_at or now
            return f"督办: {deadline.kind} overdue since {deadline.due_at.isoformat()}, escalated for supervision"

        return self._fire(missed, TicketDeadline.supervised_at, SUPERVISE, now, mark)

    def _fire(self, due: tuple[ColumnElement[bool], ...], marker: Any, action: str, now: datetime,
              note: Callable[[TicketDeadline], str]) -> list[Fired]:
        """One short transaction per deadline (tickets.claims): claim it with a conditional UPDATE of `marker`
        that repeats every `due` condition, then append the ticket's history line and write the notification
        for the unit handling the ticket (a 督办 at a unit may flag the ticket for repeated 推诿)."""

        def fire(session: Session, deadline_id: int) -> Fired:
            deadline = session.get(TicketDeadline, deadline_id, populate_existing=True)
            ticket = deadline.ticket
            message = note(deadline)
            record_event(session, ticket, ACTOR, action, ticket.status, message, now)
            unit_id = notifications.responsible_unit(ticket, deadline.kind)
            notifications.notify(session, ticket, action, message, now, unit_id=unit_id, deadline_kind=deadline.kind)
            if action == SUPERVISE and unit_id is not None:
                flagged = notifications.flag_if_repeated(session, ticket, unit_id, now)
                if flagged is not None:
                    record_event(session, ticket, ACTOR, notifications.EVASION, ticket.status, flagged, now)
            return Fired(ticket.number, deadline.kind)

        candidates = select(TicketDeadline.id).where(*due).order_by(TicketDeadline.due_at,
                                                                     TicketDeadline.id).limit(self.batch)
        fired = claim_each(self.session_factory, candidates,
                           lambda deadline_id: update(TicketDeadline).where(TicketDeadline.id == deadline_id, *due)
                           .values({marker.key: now}), fire)
        if fired:
            log.info("%s fired for %d deadlines: %s", action, len(fired),
                     ", ".join(f"{f.number}/{f.kind}" for f in fired))
        return fired

    def start(self) -> None:
        """Run rounds in a daemon thread until `stop` (server.py's job)."""
        self._rounds.start()

    def stop(self) -> None:
        self._rounds.stop()
