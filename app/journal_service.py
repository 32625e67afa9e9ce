"""The node's journal and what runs beside it, as the 12345 application uses them.

At start: the journal file is opened and the calls a crash of the node cut off end as incomplete (their
callers' answers are kept), the Tickets port writes journal first (app.journaled_tickets), and one
background thread runs the replayer, keeps the day's reserved ticket numbers stocked, refreshes the holiday
overrides used for deadlines told while the database is away, and prunes what the database has held for
`keep_days`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from app.adapters.tickets_adapter import DatabaseTickets
from app.config import ROOT, JournalSettings
from app.journal_sink import DatabaseSink
from app.journaled_tickets import JournaledTickets
from journal.numbers import ReservedNumbers
from journal.replayer import BackgroundTasks, Replayer
from journal.store import Journal
from tickets.service import TicketRules

log = logging.getLogger(__name__)
CUT_OFF = "the node stopped during the call"


@dataclass
class JournalService:
    journal: Journal
    sink: DatabaseSink
    tickets: JournaledTickets
    replayer: Replayer
    background: BackgroundTasks

    @classmethod
    def open(cls, settings: JournalSettings, session_factory: sessionmaker[Session], rules: TicketRules
             ) -> JournalService:
        """Ready before the first call is answered; `start` the background thread once the node runs."""
        journal = Journal(ROOT / settings.path)
        cut_off = journal.end_calls_in_flow(CUT_OFF)
        if cut_off:
            log.warning("%d call(s) cut off by the last stop of the node are kept as incomplete", len(cut_off))
        sink = DatabaseSink(session_factory, rules)
        tickets = JournaledTickets(journal, DatabaseTickets(session_factory, rules), reserved_day=sink.today)
        numbers = ReservedNumbers(journal, sink, stock=settings.reserved_numbers, today=sink.today)
        replayer = Replayer(journal, sink)
        keep = timedelta(days=settings.keep_days)

        def refresh_overrides() -> None:
            tickets.remember_overrides(sink.holiday_overrides())

        def prune() -> None:
            journal.prune(keep)

        background = BackgroundTasks([replayer.replay_once, numbers.top_up, refresh_overrides, prune],
                                     interval=settings.replay_interval_seconds)
        return cls(journal, sink, tickets, replayer, background)

    def start(self) -> None:
        self.background.start()

    def close(self) -> None:
        self.background.stop()
        self.journal.close()
