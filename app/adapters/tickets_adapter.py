"""The `Tickets` port over the ticket database (tickets.service), for live calls.

Every method opens its own short transaction and commits before returning: a call's thread must never hold
a database transaction while a prompt plays, and what the caller said is stored the moment it is collected
(a hang-up then leaves the draft). Drafts are keyed by the call id, so repeating a step is harmless.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from callflows.ports import TicketInfo, TicketNotFound
from tickets import service, three_way_calls
from tickets.classify import Proposal
from tickets.models import MemberUnit, Ticket

T = TypeVar("T")
ACTOR = "ivr"


class DatabaseTickets:
    """`callflows.ports.Tickets` backed by `tickets.service` on `session_factory` (tickets.db.open_database)."""

    def __init__(self, session_factory: sessionmaker[Session], rules: service.TicketRules) -> None:
        self.session_factory = session_factory
        self.rules = rules

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self.session_factory() as session, session.begin():
            yield session

    def _in_transaction(self, work: Callable[[Session], T]) -> T:
        with self._transaction() as session:
            return work(session)

    def propose(self, text: str) -> Proposal:
        return self.rules.classifier.propose(text)

    def save_draft(self, call_id: str, caller: str, fields: Mapping[str, Any]) -> str:
        """Returns the draft's ticket number (the journal keeps it, to tell the caller if the database goes
        away before the submit)."""
        return self._in_transaction(lambda session: service.save_draft(
            session, call_id, typed_fields(fields), rules=self.rules, caller=caller, actor=ACTOR).number)

    def submit(self, call_id: str, caller: str, fields: Mapping[str, Any]) -> TicketInfo:
        return self._in_transaction(lambda session: _info(service.submit_draft(
            session, call_id, typed_fields(fields), rules=self.rules, caller=caller, actor=ACTOR)))

    def mark_incomplete(self, call_id: str, reason: str) -> None:
        self._in_transaction(lambda session: service.mark_incomplete(session, call_id, reason, actor=ACTOR))

    def update(self, number: str, fields: Mapping[str, Any]) -> TicketInfo:
        def work(session: Session) -> TicketInfo:
            try:
                ticket = service.get_by_number(session, number)
            except service.TicketNotFound as error:
                raise TicketNotFound(number) from error
            return _info(service.update_fields(session, ticket, typed_fields(fields), actor=ACTOR, rules=self.rules))
        return self._in_transaction(work)

    def find(self, number: str) -> TicketInfo | None:
        def work(session: Session) -> TicketInfo | None:
            try:
                return _info(service.get_by_number(session, number))
            except service.TicketNotFound:
                return None
        return self._in_transaction(work)

    def open_tickets(self, caller: str) -> Sequence[TicketInfo]:
        return self._in_transaction(
            lambda session: [_info(ticket) for ticket in service.open_tickets_for_phone(session, caller)])

    def kb_search(self, text: str, language: str) -> str | None:
        def work(session: Session) -> str | None:
            entries = service.search_knowledge(session, text, language=language, limit=1, approved_only=True)
            return entries[0].answer if entries else None
        return self._in_transaction(work)

    def unit_for(self, topic: str) -> str | None:
        return self._in_transaction(lambda session: getattr(three_way_calls.unit_for_topic(session, topic),
                                                            "name", None))

    def answer_by_unit(self, number: str, unit: str, note: str) -> TicketInfo:
        return self._with_unit(number, unit, lambda session, ticket, member: _info(
            three_way_calls.answer_on_the_spot(session, ticket, member, note=note, actor=ACTOR, rules=self.rules)))

    def transfer_to_unit(self, number: str, unit: str, note: str) -> TicketInfo:
        def work(session: Session, ticket: Ticket, member: MemberUnit) -> TicketInfo:
            due = three_way_calls.transfer_to_unit(session, ticket, member, actor=ACTOR, rules=self.rules,
                                                   note=note)
            return replace(_info(ticket), deadline=service.as_utc(due))  # the unit's reply deadline
        return self._with_unit(number, unit, work)

    def _with_unit(self, number: str, unit: str,
                   work: Callable[[Session, Ticket, MemberUnit], TicketInfo]) -> TicketInfo:
        """`work` on the ticket `number` and the member unit named `unit`, in one transaction."""
        def in_session(session: Session) -> TicketInfo:
            try:
                ticket = service.get_by_number(session, number)
            except service.TicketNotFound as error:
                raise TicketNotFound(number) from error
            return work(session, ticket, three_way_calls.unit_by_name(session, unit))
        return self._in_transaction(in_session)

FLAGS = {"true": True, "false": False}


def typed_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Flow templates render every value as text; the level is a number and `confidential` a flag
    ("true"/"false") in the ticket model."""
    values = dict(fields)
    level = values.get("level")
    if isinstance(level, str):
        try:
            values["level"] = int(level)
        except ValueError:
            raise ValueError(f"level: {level!r} is not one of 1, 2, 3, 4") from None
    confidential = values.get("confidential")
    if isinstance(confidential, str):
        if confidential not in FLAGS:
            raise ValueError(f"confidential: {confidential!r} is not true or false")
        values["confidential"] = FLAGS[confidential]
    return values


def _info(ticket: Ticket) -> TicketInfo:
    """Read while the session is open: the ORM object expires when the transaction commits."""
    deadline = service.as_utc(ticket.response_due_at) if ticket.response_due_at else None
    return TicketInfo(number=ticket.number, status=str(ticket.status), deadline=deadline,
                      request_type=ticket.request_type)
