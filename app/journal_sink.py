"""The ticket database as the journal needs it: the replayer's `TicketSink` and the reservation's
`NumberSource`, over tickets.service.

A journaled call is written in one transaction, keyed by our call id (unique in the tickets table): the
draft with everything the caller said, dated when they said it, with the number they were told; then the
submit (received and due from the moment they finished) or the incomplete flag. Writing a call the database
already holds changes nothing, so a replay repeated after a crash adds no ticket and no history line.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.journaled_tickets import has_request
from journal.records import JournaledCall
from tickets import service
from tickets.models import Ticket

SHANGHAI = ZoneInfo("Asia/Shanghai")
REPLAY_ACTOR = "ivr"


def reservation_day(moment: datetime) -> str:
    """The label of a day's reserved numbers: the Shanghai date, as the numbers' YYDDD prefix counts days."""
    return moment.astimezone(SHANGHAI).date().isoformat()


class DatabaseSink:
    """journal.replayer.TicketSink and journal.numbers.NumberSource on `session_factory`."""

    def __init__(self, session_factory: sessionmaker[Session], rules: service.TicketRules, *,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.session_factory = session_factory
        self.rules = rules
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    def write_call(self, call: JournaledCall) -> str:
        if not has_request(call.fields):
            return ""  # only the call's set-up (language) was given: no draft was ever due
        number = call.number or None  # told to the caller (or the live draft's); None: the database gives one
        started = call.started_at or call.ended_at
        with self.session_factory.begin() as session:
            ticket = service.save_draft(session, call.call_id, call.fields, rules=self.rules, caller=call.caller,
                                        actor=REPLAY_ACTOR, number=number, now=started)
            if call.outcome == "submitted":
                service.submit_draft(session, call.call_id, {}, rules=self.rules, actor=REPLAY_ACTOR,
                                     now=call.ended_at)
            else:
                service.mark_incomplete(session, call.call_id, call.reason, actor=REPLAY_ACTOR, now=call.ended_at)
            return ticket.number

    def attach(self, call_id: str, fields: Mapping[str, Any], actor: str) -> bool:
        with self.session_factory.begin() as session:
            ticket = session.scalar(select(Ticket).where(Ticket.call_id == call_id))
            if ticket is None:
                return False
            service.update_fields(session, ticket, fields, actor=actor)
            return True

    def available(self) -> bool:
        try:
            with self.session_factory() as session:
                session.execute(select(Ticket.id).limit(1))  # reachable, and the schema is there
        except SQLAlchemyError:
            return False
        return True

    def reserve_numbers(self, count: int) -> tuple[str, list[str]]:
        now = self.clock()
        with self.session_factory.begin() as session:
            return reservation_day(now), service.reserve_numbers(session, now, count)

    def today(self) -> str:
        """journal.numbers.ReservedNumbers' `today`: the day whose stock is kept."""
        return reservation_day(self.clock())

    def holiday_overrides(self) -> dict[date, bool]:
        with self.session_factory() as session:
            return service.load_holiday_overrides(session)
