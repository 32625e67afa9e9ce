"""Which recordings a ticket has and who may hear them: the `recordings.serving.RecordingCatalog` over the
ticket database: the intake's (the whole call and the answers) and each callback (回访) call's with its recorded
不满意 reason. Visibility follows the ticket API: unit staff only hear their own unit's tickets, on a ticket kept
confidential they get none of the recordings that identify the citizen (the same fields the API hides), and
never a callback's (the callbacks API hides those references from them). Each listen is written into the
ticket's history."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recordings.serving import RecordingEntry
from tickets import callbacks, service
from tickets.api import IDENTITY_FIELDS
from tickets.auth import Principal
from tickets.models import Ticket, TicketEvent, utcnow

LISTEN = "listen"
# Plays of the same recording by the same person within this time are one listening session: a browser
# restarts the download when the page seeks back to the start, which is not a second listen.
SAME_LISTEN = timedelta(minutes=5)
# name in URLs -> ticket field holding the file
RECORDING_FIELDS = {"call": "call_recording_ref", "request": "recording_ref", "name": "name_recording_ref",
                    "address": "address_recording_ref"}
LABELS = {"call": "whole call", "request": "request", "name": "name", "address": "address"}
CALLBACK_RECORDING = "callback-"  # + the attempt's id: its whole call; + "-reason": its recorded 不满意 reason


def hidden_from(ticket: Ticket, principal: Principal) -> frozenset[str]:
    """The ticket fields `principal` may not see (the citizen's identity on a confidential ticket)."""
    if ticket.confidential and principal.role == "unit_staff":
        return frozenset(IDENTITY_FIELDS)
    return frozenset()


def visible_ticket(session: Session, ticket_id: int, principal: Principal) -> Ticket:
    """The ticket if `principal` may see it; TicketNotFound (404) otherwise, also for another unit's ticket."""
    ticket = service.get_ticket(session, ticket_id)
    if not principal.may_see(ticket):
        raise service.TicketNotFound(f"no ticket with id {ticket_id}")
    return ticket


def ticket_recordings(session: Session, ticket: Ticket, principal: Principal) -> list[RecordingEntry]:
    hidden = hidden_from(ticket, principal)
    entries = [RecordingEntry(name, LABELS[name], Path(getattr(ticket, field)))
               for name, field in RECORDING_FIELDS.items() if getattr(ticket, field) and field not in hidden]
    if principal.role != "unit_staff":
        for attempt in callbacks.attempts_of(session, ticket.id):
            if attempt.recording_ref:
                entries.append(RecordingEntry(f"{CALLBACK_RECORDING}{attempt.id}", f"callback call {attempt.number}",
                                              Path(attempt.recording_ref)))
            if attempt.reason_ref:
                entries.append(RecordingEntry(f"{CALLBACK_RECORDING}{attempt.id}-reason",
                                              f"callback {attempt.number}: reason", Path(attempt.reason_ref)))
    return entries


class TicketRecordings:
    """`RecordingCatalog` on `session_factory`; `viewer` is the tickets.auth.Principal asking."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def recordings(self, ticket_id: int, viewer: Principal) -> list[RecordingEntry]:
        with self.session_factory() as session:
            return ticket_recordings(session, visible_ticket(session, ticket_id, viewer), viewer)

    def listened(self, ticket_id: int, entry: RecordingEntry, viewer: Principal) -> None:
        now = utcnow()
        note = f"{entry.name}: {entry.path.name}"
        with self.session_factory.begin() as session:
            ticket = service.get_ticket(session, ticket_id)
            last = session.scalar(select(TicketEvent.at).where(
                TicketEvent.ticket_id == ticket_id, TicketEvent.action == LISTEN, TicketEvent.actor == viewer.name,
                TicketEvent.note == note).order_by(TicketEvent.id.desc()).limit(1))
            if last is None or now - last > SAME_LISTEN:
                service.record_event(session, ticket, viewer.name, LISTEN, ticket.status, note, now)
