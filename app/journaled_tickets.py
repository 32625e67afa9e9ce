"""The `Tickets` port for live calls: every answer goes to the node's journal first, then to the database.

What the caller says is in the journal (fsync'd) before the flow moves on; the database write that follows
may fail, and then the call continues on the journal alone and the replayer writes it when the database is
back (journal.replayer, app.journal_sink). The caller is told the truth at the submit:
- the database answered: its ticket number and deadline;
- the database is away and the call's draft already had a number: that number;
- else a number the node reserved from the database ahead of time (journal.numbers), which the replayed
  ticket gets; the deadline is computed here from the same rules (tickets.service.response_deadline);
- no reserved number left: no number (TicketInfo.number == ""), and the flow says it comes by callback.

A draft ticket exists in the database only once the caller has said something: answers that only set up
the call (the language key) are journaled but open no draft and use no ticket number, so a caller who
presses a key and is transferred to 110 leaves nothing for operators to clean up.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timezone
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from app.adapters.tickets_adapter import DatabaseTickets, typed_fields
from callflows.ports import TicketInfo
from journal.records import DatabaseNumbered, DraftSaved, JournaledCall, LeftIncomplete, Record, Submitted, Written
from journal.store import Journal
from tickets import service
from tickets.classify import Proposal
from tickets.lifecycle import Status

log = logging.getLogger(__name__)
T = TypeVar("T")

# Answers that set up the call, not the request (the language key, who handed the caller over): no draft yet.
CALL_SETUP_FIELDS = frozenset({"language", "referred_by"})
WRITTEN_DURING_CALL = "call"


def has_request(fields: Mapping[str, Any]) -> bool:
    """Whether the caller said anything a ticket is about (a field beside the call's set-up, with a value)."""
    return any(value not in (None, "") for name, value in fields.items() if name not in CALL_SETUP_FIELDS)


class JournaledTickets:
    """`callflows.ports.Tickets`: `journal` first, then `database` (a DatabaseTickets).

    After a database failure no call tries the database for `retry_after` seconds (a call already waited for
    the failure once; the replayer finds out when it is back); a call whose write failed stays on the
    journal until it ends, so its ticket is written once, whole, by the replayer."""

    def __init__(self, journal: Journal, database: DatabaseTickets, *, reserved_day: Callable[[], str],
                 retry_after: float = 5.0, clock: Callable[[], datetime] | None = None) -> None:
        self.journal = journal
        self.database = database
        self.rules = database.rules
        self.reserved_day = reserved_day
        self.retry_after = retry_after
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._overrides: dict[date, bool] = {}
        self._lock = threading.Lock()
        self._database_back_at = 0.0  # monotonic time before which the database is not tried

    # -- the call's answers -------------------------------------------------------------------------------

    def save_draft(self, call_id: str, caller: str, fields: Mapping[str, Any]) -> None:
        values = self._checked(fields)
        if not self._journaled(DraftSaved(call_id, caller, values, self.clock())):
            self.database.save_draft(call_id, caller, values)
            return
        call = self._call(call_id)
        if call.database_missed or not has_request(call.fields):
            return
        first = call.number_source != "database"  # the database has no draft of this call yet
        done, number = self._database(call_id, self.database.save_draft, call_id, caller,
                                      call.fields if first else values)
        if done and first:
            self.journal.append(DatabaseNumbered(call_id, number, self.clock()))

    def submit(self, call_id: str, caller: str, fields: Mapping[str, Any]) -> TicketInfo:
        values = self._checked(fields)
        now = self.clock()
        if not self._journaled(DraftSaved(call_id, caller, values, now)):
            return self.database.submit(call_id, caller, values)
        call = self._call(call_id)
        if not call.database_missed:
            first = call.number_source != "database"
            done, info = self._database(call_id, self.database.submit, call_id, caller,
                                        call.fields if first else values)
            if done:
                self.journal.append(Submitted(call_id, caller, values, now, info.number, "database", info.deadline),
                                    Written(call_id, info.number, WRITTEN_DURING_CALL, now))
                return info
            call = self._call(call_id)
        return self._submit_from_journal(call, caller, values, now)

    def _submit_from_journal(self, call: JournaledCall, caller: str, values: dict[str, Any],
                             now: datetime) -> TicketInfo:
        """The database is away: tell the draft's number, else a reserved one, else none (callback)."""
        deadline = service.response_deadline(call.fields, now, rules=self.rules, overrides=self._overrides)
        submitted = Submitted(call.call_id, caller, values, now, call.number, "database", deadline)
        if call.number_source == "database":
            self.journal.append(submitted)
        else:
            submitted = self.journal.submit_with_reserved_number(submitted, self.reserved_day(),
                                                                 "database away at the submit")
        log.warning("call %s: submitted to the journal, ticket number %s (%s); the replayer writes it",
                    call.call_id, submitted.number or "none", submitted.number_source)
        return TicketInfo(number=submitted.number, status=str(Status.RECEIVED), deadline=deadline,
                          request_type=call.fields.get("request_type"))

    def mark_incomplete(self, call_id: str, reason: str) -> None:
        if not self._journaled(LeftIncomplete(call_id, reason, self.clock())):
            self.database.mark_incomplete(call_id, reason)
            return
        call = self._call(call_id)
        if not has_request(call.fields):
            self.journal.written(call_id, "", WRITTEN_DURING_CALL)  # nothing for the database
        elif not call.database_missed and call.number_source == "database":
            done, _ = self._database(call_id, self.database.mark_incomplete, call_id, reason)
            if done:
                self.journal.written(call_id, call.number, WRITTEN_DURING_CALL)
        # else: the replayer writes the call (it takes every ended call the journal has not seen written)

    def _checked(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Typed and checked as the database would (ValueError naming the field) before journaling, so that
        a replay never meets a value the database refuses."""
        values = typed_fields(fields)
        service.checked_fields(values)
        return values

    def _journaled(self, record: Record) -> bool:
        """Append `record`; False (logged) when the journal's disk fails, and the call then writes straight
        to the database as it did before there was a journal."""
        try:
            self.journal.append(record)
        except (sqlite3.Error, OSError):
            log.exception("call %s: the journal failed; writing to the database directly", record.call_id)
            return False
        return True

    def _call(self, call_id: str) -> JournaledCall:
        call = self.journal.call(call_id)
        assert call is not None, f"call {call_id} was just journaled"
        return call

    def _database(self, call_id: str, write: Callable[..., T], *args: Any) -> tuple[bool, T | None]:
        """(True, `write(*args)`), or (False, None) after recording in the journal that the call missed the
        database (the write failed, or another one did moments ago)."""
        with self._lock:
            resting = time.monotonic() < self._database_back_at
        if resting:
            self.journal.missed_database(call_id, "database away (an earlier write failed moments ago)")
            return False, None
        try:
            return True, write(*args)
        except SQLAlchemyError as error:
            log.warning("call %s: database write failed, continuing on the journal: %s", call_id, error)
            with self._lock:
                self._database_back_at = time.monotonic() + self.retry_after
            self.journal.missed_database(call_id, f"{type(error).__name__}: {error}")
            return False, None

    # -- reading the database: not part of the intake -------------------------------------------------------

    def propose(self, text: str) -> Proposal:
        return self.database.propose(text)

    def update(self, number: str, fields: Mapping[str, Any]) -> TicketInfo:
        return self.database.update(number, fields)

    def find(self, number: str) -> TicketInfo | None:
        return self.database.find(number)

    def open_tickets(self, caller: str) -> Sequence[TicketInfo]:
        return self.database.open_tickets(caller)

    def kb_search(self, text: str, language: str) -> str | None:
        """No answer while the database is away: the flow then takes the request as a ticket."""
        try:
            return self.database.kb_search(text, language)
        except SQLAlchemyError as error:
            log.warning("knowledge base unavailable (%s); the request becomes a ticket", type(error).__name__)
            return None

    def seat_numbers(self, unit: str) -> list[str]:
        return self.database.seat_numbers(unit)

    def remember_overrides(self, overrides: Mapping[date, bool]) -> None:
        """The holiday overrides to compute deadlines with while the database is away (refreshed by the
        node's background thread whenever the database is reachable)."""
        self._overrides = dict(overrides)

