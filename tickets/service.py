"""The ticket service: plain functions over a SQLAlchemy Session, shared by the HTTP API and the IVR.

Functions flush but never commit: the caller owns the transaction (one request, one call step).
Errors are typed so each caller can map them: NotFound (404), InvalidTransition (409 with the allowed
actions), ConcurrentUpdate (409, reload and retry), ValueError (bad input, 422).
"""
from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import (ColumnElement, Connection, Engine, Integer, Select, String, and_, bindparam, func, insert, inspect,
                        or_, select, true)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.exc import StaleDataError

from tickets import db, deadline_tracking, notifications
from tickets.calendar import WorkingCalendar
from tickets.classify import DEFAULT_RULES, Classifier
from tickets.deadlines import DeadlineKind, DeadlinePolicy, DeadlineSettings
from tickets.holiday_cache import HolidayOverridesCache
from tickets.lifecycle import Action, InvalidTransition, Status, allowed_actions, next_status
from tickets.models import (CALLBACK_RESULTS, CONTENT_MAX_LENGTH, HANDLING_MODES, REQUEST_TYPES, HolidayOverride,
                            Base, KnowledgeEntry, MemberUnit, Ticket, TicketEvent, TicketNumberCounter, utcnow)
from tickets.procedure_settings import ProcedureSettings
from tickets.settings import TicketSettings

SHANGHAI = ZoneInfo("Asia/Shanghai")
T = TypeVar("T")
# Statuses in which a ticket no longer waits for the responsible unit: not overdue any more.
SETTLED_STATUSES = (Status.DRAFT, Status.ANSWERED, Status.NOT_ACCEPTED, Status.REPLIED, Status.CALLBACK_DONE,
                    Status.CLOSED, Status.ARCHIVED)
# Fields an operator or the IVR may set directly; status, schedule and history only change through
# create/transition/override so that every change is recorded.
EDITABLE_FIELDS = ("caller_name", "phone", "address", "call_time", "content", "language", "transcript_ref",
                   "recording_ref", "name_recording_ref", "address_recording_ref", "call_recording_ref",
                   "transcript_confidence", "confidential", "request_type", "topic", "level", "handling_mode",
                   "unit_id", "call_id", "answer", "referred_by")
ANSWERED_FROM_KNOWLEDGE = "答复"
# Longest value of each text field: the column's length, the content's own limit for the unbounded text.
FIELD_LENGTHS = {name: getattr(Ticket, name).type.length or CONTENT_MAX_LENGTH for name in EDITABLE_FIELDS
                 if isinstance(getattr(Ticket, name).type, String)}
# Before dispatch the unit is a proposal an operator may correct; afterwards only the lifecycle moves it.
UNIT_PROPOSABLE = (Status.DRAFT, Status.RECEIVED)
SORTABLE_FIELDS = ("created_at", "received_at", "response_due_at", "level", "number", "status", "updated_at")


class NotFound(LookupError):
    """No ticket, unit, knowledge entry or override with that key."""


class TicketNotFound(NotFound):
    pass


class Conflict(Exception):
    """The request is well formed but contradicts what is stored or the ticket's state (the API's 409)."""


class DuplicateCallId(Conflict):
    def __init__(self, call_id: str) -> None:
        super().__init__(f"call_id: a ticket for call {call_id!r} already exists")
        self.call_id = call_id


class KeyReused(Exception):
    """An idempotency key comes back with other fields than the request that created `ticket`: a client bug
    or two different requests sharing a key, never a retry, so the original is not silently returned."""

    def __init__(self, ticket: Ticket) -> None:
        super().__init__("Idempotency-Key: already used for a request with other fields")
        self.ticket = ticket


class CallIdTaken(Conflict):
    """A ticket carries the call's id but was not opened by that call's intake (it was created through the
    API with the id): the call's answers are never merged into it."""


class ConcurrentUpdate(Exception):
    """Someone else changed the ticket between read and write (optimistic concurrency on `version`)."""

    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"ticket {ticket_id} was changed concurrently; reload it and retry")
        self.ticket_id = ticket_id


@dataclass(frozen=True)
class TicketRules:
    """The domain rules the service applies: level proposals, deadline durations and the procedures' choices
    (rejection reasons, reply channel, attachments) — all configuration."""

    classifier: Classifier
    deadline_settings: DeadlineSettings
    procedures: ProcedureSettings = field(default_factory=ProcedureSettings)

    @classmethod
    def default(cls, classification_rules: Path = DEFAULT_RULES) -> TicketRules:
        """The shipped keyword rules (or an administrator's file) and the default durations."""
        return cls(Classifier.from_file(classification_rules), DeadlineSettings())

    @classmethod
    def from_settings(cls, settings: TicketSettings) -> TicketRules:
        """The rules a [tickets] section configures (tickets.settings.load_ticket_settings)."""
        return cls(Classifier.from_file(settings.classification_rules), settings.deadlines, settings.procedures)

    def policy(self, session: Session) -> DeadlinePolicy:
        """A deadline policy on the statutory calendar plus the administrator's current overrides (as
        HOLIDAY_OVERRIDES keeps them: see tickets.holiday_cache for when a change is seen)."""
        return self.policy_for(HOLIDAY_OVERRIDES.get(session))

    def policy_for(self, overrides: Mapping[date, bool]) -> DeadlinePolicy:
        """A deadline policy with the given holiday overrides (the IVR's last known ones, database away)."""
        return DeadlinePolicy(self.deadline_settings, WorkingCalendar(overrides))


# --- numbers -----------------------------------------------------------------------------------------------

NUMBER_LENGTH = 10


def next_number(session: Session, when: datetime) -> str:
    """A 10-digit number a caller can key in: YYDDD (day of year, Shanghai time) + a 5-digit daily sequence,
    e.g. 2633300042. The counter row is updated atomically, so concurrent creators never share a number."""
    return reserve_numbers(session, when, 1)[0]


def allocate_number(session: Session, when: datetime) -> str:
    """The next number for a ticket being created in `session`, without holding the day's counter row until
    `session` commits. On PostgreSQL the counter is bumped by one statement in a transaction of its own on a
    connection of db.counter_engine, so concurrent creators queue on the row for one statement instead of
    each other's whole transaction and its commit (that queue capped creation near 1/commit-time per second).
    That bump commits without waiting for the disk: a ticket's own (synchronous) commit comes later in the
    write-ahead log, so any number a stored ticket carries was durably counted; after a crash at most numbers
    nobody stored are handed out again. A number whose ticket then fails is skipped (a gap, as with a sequence).
    Elsewhere (SQLite serialises writers anyway), when `session` itself holds the row (it reserved numbers
    earlier in its transaction), or when the bump fails (lock timeout, a connection lost, every counter
    connection busy for seconds), the counter is bumped in `session` as next_number does."""
    bind = session.get_bind()
    if (bind.dialect.name != "postgresql" or not isinstance(bind, Engine)
            or db.in_marked_transaction(session, _COUNTER_HELD)):
        return next_number(session, when)
    try:
        with db.counter_engine(bind).connect() as connection:
            return reserve_numbers(connection, when, 1)[0]
    except (DBAPIError, PoolTimeout):  # the database's refusal or a lost connection: `session` tells for sure
        return next_number(session, when)


_COUNTER_HELD = "tickets.counter_held"  # db.mark_transaction: this transaction bumped a daily counter


def reserve_numbers(session: Session | Connection, when: datetime, count: int) -> list[str]:
    """`count` consecutive numbers of the day of `when`, taken from the daily counter in one atomic step:
    no other node and no later ticket gets them. An IVR node reserves a block ahead of time to tell callers a
    real number while the database is away (journal.numbers); the ticket is then created with that number.
    One statement (insert the day's row or add to it), so it also runs on an autocommit connection."""
    if count < 1:
        raise ValueError(f"count: {count} is not a positive number of tickets")
    day = number_day(when)
    bind = session if isinstance(session, Connection) else session.get_bind()
    last = session.execute(_bump_statement(bind.dialect.name), {"day": day, "count": count}).scalar_one()
    if isinstance(session, Session):
        db.mark_transaction(session, _COUNTER_HELD)
    if last > 99999:
        raise OverflowError(f"more than 99999 tickets on day {day}")
    return [f"{day}{sequence:05d}" for sequence in range(last - count + 1, last + 1)]


@functools.cache
def _bump_statement(dialect: str) -> Any:
    """Insert the day's counter row or add `count` to it, returning the last number taken. Built once per
    back end (with bound parameters): building it per ticket was most of a bump's CPU."""
    counters = inspect(TicketNumberCounter).local_table
    count = bindparam("count", type_=Integer)
    upsert = _dialect_insert(dialect)(counters).values(day=bindparam("day"), last=count)
    return upsert.on_conflict_do_update(index_elements=[counters.c.day], set_={"last": counters.c.last + count}
                                        ).returning(counters.c.last)


def _dialect_insert(dialect: str) -> Callable[..., Any]:
    """The INSERT with ON CONFLICT of the back end `dialect` (both spell the upsert the same way)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def number_day(when: datetime) -> str:
    """The YYDDD prefix of the numbers given on the day of `when` (Shanghai time)."""
    return when.astimezone(SHANGHAI).strftime("%y%j")


def check_reserved_number(number: str) -> None:
    """A number given to create a ticket with must look like one the counter hands out (ValueError naming
    `number`); that the counter really reserved it is the caller's responsibility (reserve_numbers)."""
    if not (len(number) == NUMBER_LENGTH and number.isascii() and number.isdigit()):
        raise ValueError(f"number: {number!r} is not a {NUMBER_LENGTH}-digit ticket number")


# --- creation and editing ----------------------------------------------------------------------------------

def create_ticket(session: Session, fields: Mapping[str, Any], *, rules: TicketRules, actor: str,
                  idempotency_key: str | None = None, draft: bool = False,
                  now: datetime | None = None, number: str | None = None) -> tuple[Ticket, bool]:
    """Create a ticket, or return the one created earlier with the same idempotency key and fields.

    Returns (ticket, created). Level, type and topic not given are proposed from the content by the
    classifier; a non-draft ticket gets its deadline, reminder time and the statutory-data flag at once.
    `number`: one reserved earlier with reserve_numbers (a journaled call replayed); else the next one.
    Raises KeyReused for a known key with other fields, DuplicateCallId when the call has a ticket already."""
    fingerprint = request_fingerprint(fields, draft)
    if idempotency_key is not None:
        existing = session.scalar(select(Ticket).where(Ticket.idempotency_key == idempotency_key))
        if existing is not None:
            return _replayed(existing, fingerprint), False
    now = now or utcnow()
    values = checked_fields(fields)
    check_unit_exists(session, values.get("unit_id"))
    check_call_id_free(session, values.get("call_id"))
    proposal_note = _apply_proposal(values, rules)
    values["call_time"] = values.get("call_time") or now
    if number is not None:
        check_reserved_number(number)
    ticket = Ticket(**values, idempotency_key=idempotency_key, idempotency_fingerprint=fingerprint,
                    number=number or allocate_number(session, now),
                    status=Status.DRAFT if draft else Status.RECEIVED, is_draft=draft, version=1,
                    created_at=now, updated_at=now)
    if not draft:
        ticket.received_at = now
        deadline_tracking.receive(ticket, rules.policy(session), now)
    notes = [note for note in (referral_note(values.get("referred_by")), proposal_note) if note]
    ticket.events.append(TicketEvent(at=now, actor=actor, action="create", from_status=None,
                                     to_status=ticket.status, note="; ".join(notes) or None))
    stored = _insert_ticket(session, ticket, on_conflict="nothing")
    if stored is None:
        # A concurrent (or earlier) request holds a unique value: with the same key, answer with its ticket
        # (when the fields match); with the same call id, refuse; else the database names the constraint.
        existing = idempotency_key and session.scalar(select(Ticket).where(
            Ticket.idempotency_key == idempotency_key))
        if existing:
            return _replayed(existing, fingerprint), False
        check_call_id_free(session, values.get("call_id"))
        stored = _insert_ticket(session, ticket, on_conflict="raise")
    return stored, True


def _insert_ticket(session: Session, ticket: Ticket, *, on_conflict: Literal["nothing", "raise"]) -> Ticket | None:
    """Store the new (transient) `ticket`, its deadlines and its history line: one INSERT .. RETURNING each
    (Core statements, built once), after which the objects join the session as if loaded. The ORM's unit of
    work did the same with a savepoint around it (so that a lost race on a unique key left the transaction
    usable): two statements more, and ~30 % of the API server's CPU per create (py-spy). ON CONFLICT DO
    NOTHING loses that race without an error instead.

    None, with nothing written, when a unique value (key, call id, number) is taken and `on_conflict` is
    "nothing"; with "raise", the database's IntegrityError names it."""
    connection = session.connection()
    dialect = connection.dialect.name
    if not _write_row(connection, ticket, _insert_statement(dialect, Ticket, on_conflict)):
        return None
    children = [*ticket.deadlines, *ticket.events]
    for child in children:
        child.ticket_id = ticket.id
        _write_row(connection, child, _insert_statement(dialect, type(child), "raise"))
    for stored in (ticket, *children):
        make_transient_to_detached(stored)
    session.add(ticket)  # with its deadlines and events (cascade): persistent, nothing left to flush
    return ticket


@functools.cache
def _insert_statement(dialect: str, model: type[Base], on_conflict: Literal["nothing", "raise"]) -> Any:
    """INSERT into `model`'s table returning every column; ON CONFLICT DO NOTHING with "nothing". Built
    once per kind: a statement object keeps its cache key, which SQLAlchemy otherwise derives again."""
    table = inspect(model).local_table
    statement = _dialect_insert(dialect)(table)
    if on_conflict == "nothing":
        statement = statement.on_conflict_do_nothing()
    return statement.returning(*table.columns)


def _write_row(connection: Connection, obj: Base, statement: Any) -> bool:
    """INSERT the column values set on the transient `obj` and set on it every column the database returns
    (id, defaults), so that nothing is left to load; False when no row was inserted."""
    mapper = inspect(type(obj))
    given = inspect(obj).dict
    keys = _column_keys(mapper)
    row = connection.execute(statement, {column.key: given[key] for column, key in keys if key in given})
    found = row.one_or_none()
    if found is None:
        return False
    for (_, key), value in zip(keys, found):
        setattr(obj, key, value)
    return True


@functools.cache
def _column_keys(mapper: Any) -> tuple[tuple[Any, str], ...]:
    """(table column, attribute name) of each column of a mapped table, in the table's order."""
    return tuple((column, mapper.get_property_by_column(column).key) for column in mapper.local_table.columns)


def referral_note(referred_by: str | None) -> str | None:
    """The history's note on a matter another desk handed over (110's hand-over, 双向联动)."""
    return f"由{referred_by}转来 (handed over by {referred_by})" if referred_by else None


def request_fingerprint(fields: Mapping[str, Any], draft: bool) -> str:
    """What identifies a creation request: its non-empty fields and whether it is a draft."""
    given = {name: value for name, value in fields.items() if value is not None}
    canonical = json.dumps({"fields": given, "draft": draft}, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replayed(ticket: Ticket, fingerprint: str) -> Ticket:
    """The ticket an idempotency key created, when the retry carries the same fields (tickets created
    before fingerprints were stored are replayed as before)."""
    if ticket.idempotency_fingerprint not in (None, fingerprint):
        raise KeyReused(ticket)
    return ticket


def check_call_id_free(session: Session, call_id: str | None, ticket_id: int | None = None) -> None:
    """One ticket per call: another ticket with this call id is a DuplicateCallId."""
    if call_id is None:
        return
    owner = session.scalar(select(Ticket.id).where(Ticket.call_id == call_id))
    if owner is not None and owner != ticket_id:
        raise DuplicateCallId(call_id)


def update_fields(session: Session, ticket: Ticket, fields: Mapping[str, Any], *, actor: str,
                  rules: TicketRules | None = None, now: datetime | None = None) -> Ticket:
    """Change editable fields (not status or schedule), recording which ones changed in the history.
    A corrected request type of a received ticket brings that type's deadlines (e.g. 申诉's three), which
    needs `rules` (callers that only attach references, such as the transcript linker, may leave it out).

    The responsible unit is only proposed this way before dispatch; afterwards it changes through the
    lifecycle (return_misrouted, then dispatch), so that every hand-over is a recorded dispatch and the
    unit's own staff keep seeing what was theirs until it is sent elsewhere."""
    values = checked_fields(fields)
    check_unit_exists(session, values.get("unit_id"))
    ensure_editable(ticket)
    changed = sorted(name for name, value in values.items() if getattr(ticket, name) != value)
    if not changed:
        return ticket
    if "level" in changed:
        raise ValueError("level: change it with override_level so that the deadline follows")
    if "unit_id" in changed and ticket.status not in UNIT_PROPOSABLE:
        status = Status(ticket.status)
        raise InvalidTransition(status, Action.DISPATCH, allowed_actions(status))
    if "call_id" in changed:
        check_call_id_free(session, values["call_id"], ticket.id)
    now = now or utcnow()
    for name in changed:
        setattr(ticket, name, values[name])
    if "request_type" in changed and ticket.received_at is not None:
        if rules is None:
            raise ValueError("request_type: changing the type of a received ticket needs the deadline rules")
        deadline_tracking.request_type_changed(ticket, rules.policy(session), now)
    record_event(session, ticket, actor, "edit", ticket.status, "changed: " + ", ".join(changed), now)
    _flush(session, ticket)
    return ticket


def checked_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The editable subset of `fields`, with the domain's closed vocabularies enforced (ValueError naming the
    field), so the IVR gets the same guarantees as the API's schema. The IVR also checks a call's answers with
    it before journaling them, so that a replay never meets a value the database refuses."""
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValueError(f"{unknown[0]}: not a ticket field that can be set")
    values = dict(fields)
    _refuse_nulls(values, Ticket)
    for name, value in values.items():
        limit = FIELD_LENGTHS.get(name)
        if isinstance(value, str) and limit is not None and len(value) > limit:
            raise ValueError(f"{name}: at most {limit} characters, got {len(value)}")
    vocabularies = {"request_type": REQUEST_TYPES, "handling_mode": HANDLING_MODES}
    for name, allowed in vocabularies.items():
        if values.get(name) is not None and values[name] not in allowed:
            raise ValueError(f"{name}: {values[name]!r} is not one of {', '.join(allowed)}")
    if values.get("level") is not None and values["level"] not in (1, 2, 3, 4):
        raise ValueError(f"level: {values['level']!r} is not one of 1, 2, 3, 4")
    return values


def check_unit_exists(session: Session, unit_id: int | None) -> None:
    if unit_id is not None and session.get(MemberUnit, unit_id) is None:
        raise ValueError(f"unit_id: no member unit with id {unit_id}")


def _apply_proposal(values: dict[str, Any], rules: TicketRules) -> str | None:
    """Fill level/type/topic the caller did not give from the classifier; the note says what was proposed."""
    missing = [name for name in ("level", "request_type", "topic") if values.get(name) is None]
    if not missing:
        return None
    proposal = rules.classifier.propose(values.get("content") or "")
    proposed = {"level": proposal.level, "request_type": proposal.request_type, "topic": proposal.topic}
    for name in missing:
        values[name] = proposed[name]
    matched = ", ".join(proposal.matched) or "no rule matched"
    return f"proposed {', '.join(f'{n}={values[n]}' for n in missing)} ({matched})"


def response_deadline(fields: Mapping[str, Any], received: datetime, *, rules: TicketRules,
                      overrides: Mapping[date, bool] | None = None) -> datetime:
    """The deadline promised to the citizen (an appeal's resolution, else the level's response) of a ticket
    with `fields` submitted at `received` (level given, else proposed from the content), computed without
    the database: what the IVR tells a caller while the database is away. submit_draft(now=received)
    computes the same with the same holiday `overrides`."""
    values = dict(fields)
    _apply_proposal(values, rules)
    kind = deadline_tracking.governing_kind(values.get("request_type"))
    return rules.policy_for(overrides or {}).for_kind(received, kind, values["level"]).due


# --- lifecycle ---------------------------------------------------------------------------------------------

def _get_or_raise(session: Session, model: type[T], key: Any, missing: str,
                  error: type[NotFound] = NotFound) -> T:
    """The row of `model` with primary key `key`; `error(missing)` when there is none (the API's 404)."""
    row = session.get(model, key)
    if row is None:
        raise error(missing)
    return row


def get_ticket(session: Session, ticket_id: int) -> Ticket:
    return _get_or_raise(session, Ticket, ticket_id, f"no ticket with id {ticket_id}", TicketNotFound)


def ensure_editable(ticket: Ticket) -> None:
    """Archived (归档) tickets are the record: nothing about them changes any more (the API's 409)."""
    if ticket.status == Status.ARCHIVED:
        raise Conflict(f"ticket {ticket.number} is archived and read-only")


def get_by_number(session: Session, number: str) -> Ticket:
    ticket = session.scalar(select(Ticket).where(Ticket.number == number))
    if ticket is None:
        raise TicketNotFound(f"no ticket with number {number}")
    return ticket


# Actions that belong to a reply (回复) and its review: tickets.replies performs them with the reply itself.
REPLY_ACTIONS = (Action.REPLY, Action.APPROVE_REPLY, Action.RETURN_REPLY)


def transition(session: Session, ticket_id: int, action: Action | str, *, actor: str, rules: TicketRules,
               note: str | None = None, unit_id: int | None = None, callback_result: str | None = None,
               rejection_reason: str | None = None, expected_version: int | None = None,
               now: datetime | None = None, with_reply: bool = False) -> Ticket:
    """Apply a lifecycle action. Raises InvalidTransition (with `allowed`) when the action is not allowed in
    the current status, ConcurrentUpdate when another writer got there first (one wins, the other learns).
    The reply actions need the reply's content: only tickets.replies calls them (`with_reply`)."""
    ticket = get_ticket(session, ticket_id)
    if expected_version is not None and ticket.version != expected_version:
        raise ConcurrentUpdate(ticket_id)
    action = Action(action)
    if action in REPLY_ACTIONS and not with_reply:
        raise ValueError(f"action: {action.value} goes with the reply itself: POST /api/tickets/{{id}}/replies "
                         "to reply, POST /api/replies/{id}/review to approve or return it")
    now = now or utcnow()
    before, unit_before = ticket.status, ticket.unit_id
    with session.no_autoflush:  # one UPDATE per transition, at the end, guarded by the version
        ticket.status = next_status(Status(before), action)
        note = _apply_side_effects(session, ticket, action, rules, now, note=note, unit_id=unit_id,
                                   callback_result=callback_result, rejection_reason=rejection_reason)
        record_event(session, ticket, actor, action.value, before, note, now,
                     result=callback_result if action is Action.CALLBACK else None)
    _flush(session, ticket)
    if action is Action.RETURN_MISROUTED:  # a unit sending tickets back may be shirking them (推诿)
        flagged = notifications.flag_if_repeated(session, ticket, unit_before, now)
        if flagged is not None:
            record_event(session, ticket, notifications.FLAGGER, notifications.EVASION, ticket.status, flagged, now)
            _flush(session, ticket)
    return ticket


def _apply_side_effects(session: Session, ticket: Ticket, action: Action, rules: TicketRules, now: datetime, *,
                        note: str | None, unit_id: int | None, callback_result: str | None,
                        rejection_reason: str | None) -> str | None:
    """What an action changes beside the status: who handles it, the schedule, the callback result. Returns
    the history note (a 不予受理's is the configured reason, or the operator's words for 'other')."""
    if action is Action.SUBMIT:
        ticket.is_draft = False
        ticket.incomplete_reason = None
        ticket.received_at = now
        deadline_tracking.receive(ticket, rules.policy(session), now)
    elif action is Action.REJECT:
        note = rules.procedures.rejection_note(rejection_reason, note)
        ticket.rejection_reason = rejection_reason
    elif action is Action.DISPATCH:
        if unit_id is not None:
            get_unit(session, unit_id)
            ticket.unit_id = unit_id
        if ticket.unit_id is None:
            raise ValueError("unit_id: dispatch needs the responsible unit")
        ticket.handling_mode = "转办"
    elif action is Action.ANSWER_DIRECTLY:
        ticket.handling_mode = ANSWERED_FROM_KNOWLEDGE
        ticket.answer = ticket.answer or note
    elif action is Action.ESCALATE:
        ticket.handling_mode = "呈报"
    elif action is Action.RETURN_MISROUTED:
        ticket.unit_id = None
    elif action is Action.APPROVE_REPLY:  # the reply counts as sent once approved
        ticket.replied_at = now
    elif action is Action.CALLBACK:
        if callback_result not in CALLBACK_RESULTS:
            raise ValueError(f"callback_result: one of {', '.join(CALLBACK_RESULTS)} is required")
        ticket.callback_result = callback_result
    elif action is Action.REOPEN:  # 重办: the unit works again to fresh deadlines at the same level
        ticket.replied_at = None
        ticket.closed_at = None
    if action in (Action.ANSWER_DIRECTLY, Action.REJECT, Action.CLOSE):
        ticket.closed_at = now
    if action is not Action.SUBMIT:
        deadline_tracking.apply(ticket, action.value, rules.policy(session), now)
    return note


def record_investigation(session: Session, ticket_id: int, *, actor: str, note: str, rules: TicketRules,
                         now: datetime | None = None) -> Ticket:
    """申诉: the responsible side records that the investigation (调查核实, 第十一条) is done and what it found,
    before the reply; this meets the appeal's investigation deadline. The status does not change."""
    ticket = get_ticket(session, ticket_id)
    ensure_editable(ticket)
    if not (note or "").strip():
        raise ValueError("note: say what the investigation found")
    if deadline_tracking.open_deadline(ticket, DeadlineKind.APPEAL_INVESTIGATION) is None:
        raise Conflict(f"ticket {ticket.number} has no open appeal_investigation deadline")
    now = now or utcnow()
    deadline_tracking.apply(ticket, deadline_tracking.RECORD_INVESTIGATION, rules.policy(session), now)
    record_event(session, ticket, actor, deadline_tracking.RECORD_INVESTIGATION, ticket.status, note, now)
    _flush(session, ticket)
    return ticket


def override_level(session: Session, ticket_id: int, level: int, *, actor: str, rules: TicketRules,
                   note: str | None = None, now: datetime | None = None) -> Ticket:
    """An operator corrects the proposed level; a received ticket's deadline is recomputed from its receipt."""
    ticket = get_ticket(session, ticket_id)
    ensure_editable(ticket)
    checked_fields({"level": level})
    before = ticket.level
    ticket.level = level
    deadline_tracking.level_changed(ticket, rules.policy(session))
    text = f"level {before} -> {level}" + (f": {note}" if note else "")
    record_event(session, ticket, actor, "override_level", ticket.status, text, now)
    _flush(session, ticket)
    return ticket


def record_event(session: Session, ticket: Ticket, actor: str, action: str, from_status: str | None,
                 note: str | None, at: datetime | None = None, result: str | None = None) -> None:
    """Append a history line, to_status being the ticket's status now (also for the scheduler's 催办/督办);
    `result` is what the event found (a callback's satisfaction), read by the statistics.
    It goes through the backref, so the ticket's whole history is not loaded for it."""
    session.add(TicketEvent(ticket=ticket, at=at or utcnow(), actor=actor, action=action,
                            from_status=from_status, to_status=ticket.status, note=note, result=result))


def _flush(session: Session, ticket: Ticket) -> None:
    ticket_id = ticket.id  # read now: after a failed flush the object is expired
    try:
        session.flush()
    except StaleDataError as error:
        raise ConcurrentUpdate(ticket_id) from error


# --- the call's view: drafts keyed by call id (callflows.ports.Tickets) -------------------------------------

INTAKE_KEY_PREFIX = "call:"  # idempotency keys of the IVR's drafts; the API refuses keys with this prefix


def intake_key(call_id: str) -> str:
    """The idempotency key of the draft a call's intake opens: it marks the ticket as that call's own."""
    return f"{INTAKE_KEY_PREFIX}{call_id}"


def _intake_ticket(session: Session, call_id: str) -> Ticket | None:
    """The ticket this call's intake opened (None before the first answer was saved). Call ids are the IVR's
    own (uuid4 at answer), but the API may set a ticket's call_id: such a ticket is never the call's draft,
    so CallIdTaken rather than merging one call's answers into another's ticket."""
    ticket = session.scalar(select(Ticket).where(Ticket.call_id == call_id))
    if ticket is not None and ticket.idempotency_key != intake_key(call_id):
        raise CallIdTaken(f"call_id: {call_id} belongs to ticket {ticket.number}, which this call's intake did not "
                          f"open; the call's answers are not merged into it")
    return ticket


def save_draft(session: Session, call_id: str, fields: Mapping[str, Any], *, rules: TicketRules,
               caller: str | None = None, actor: str = "ivr", number: str | None = None,
               now: datetime | None = None) -> Ticket:
    """Create the call's draft on first use and merge `fields` into it: what a caller said is kept even
    if they hang up halfway. The calling number is the phone unless the caller gave another.

    A journaled call replayed after a database outage passes the `number` the caller was told (reserved
    earlier; a draft created meanwhile under another number takes it, see `assign_number`) and `now`, the
    time the caller said it, so the ticket's times and deadline are the call's, not the replay's.
    CallIdTaken when a ticket opened otherwise carries the call id."""
    ticket = _intake_ticket(session, call_id)
    if ticket is None:
        first = {"phone": caller, **fields} if caller and not fields.get("phone") else dict(fields)
        try:
            ticket, _ = create_ticket(session, {**first, "call_id": call_id}, rules=rules, actor=actor,
                                      idempotency_key=intake_key(call_id), draft=True, now=now, number=number)
            return ticket
        except KeyReused as race:  # another step of the same call created the draft first: merge into it
            ticket = race.ticket
    if number is not None:
        assign_number(session, ticket, number, actor=actor, now=now)
    level = fields.get("level")
    update_fields(session, ticket, {k: v for k, v in fields.items() if k != "level"}, actor=actor, rules=rules,
                  now=now)
    if level is not None and level != ticket.level:
        override_level(session, ticket.id, level, actor=actor, rules=rules, note="said by the caller", now=now)
    return ticket


def assign_number(session: Session, ticket: Ticket, number: str, *, actor: str,
                  now: datetime | None = None) -> Ticket:
    """Give a call's ticket the reserved number its caller was told. It happens when the database committed
    the call's draft (or submit) but the IVR never heard back (the connection dropped) and told the caller a
    reserved number: the number the caller heard wins, and the history keeps the one it replaces."""
    check_reserved_number(number)
    if ticket.number == number:
        return ticket
    before = ticket.number
    ticket.number = number
    record_event(session, ticket, actor, "renumber", ticket.status,
                 f"number {before} -> {number} (the number the caller was told)", now)
    _flush(session, ticket)
    return ticket


def submit_draft(session: Session, call_id: str, fields: Mapping[str, Any], *, rules: TicketRules,
                 caller: str | None = None, actor: str = "ivr", number: str | None = None,
                 now: datetime | None = None) -> Ticket:
    """Merge the last fields and submit the call's draft; a second submit returns the submitted ticket.
    `number` and `now` as in save_draft (a replayed call: received and due as when the caller called).
    A draft whose handling mode is 答复 was answered on the phone from the knowledge base: it is received and
    answered at once (its response deadline met, nothing left to remind anyone of)."""
    ticket = save_draft(session, call_id, fields, rules=rules, caller=caller, actor=actor, number=number, now=now)
    if ticket.status == Status.DRAFT:
        transition(session, ticket.id, Action.SUBMIT, actor=actor, rules=rules, now=now)
        if ticket.handling_mode == ANSWERED_FROM_KNOWLEDGE:  # the IVR gave a knowledge-base answer (答复)
            transition(session, ticket.id, Action.ANSWER_DIRECTLY, actor=actor, rules=rules, now=now,
                       note=ticket.answer or "answered from the knowledge base")
    return ticket


def mark_incomplete(session: Session, call_id: str, reason: str, *, actor: str = "ivr",
                    now: datetime | None = None) -> Ticket | None:
    """The caller left before submitting: keep the draft, flagged so an operator completes it. CallIdTaken
    when a ticket opened otherwise carries the call id (it is not this call's to flag)."""
    ticket = _intake_ticket(session, call_id)
    if ticket is None or ticket.status != Status.DRAFT or ticket.incomplete_reason == reason:
        return ticket
    ticket.incomplete_reason = reason
    record_event(session, ticket, actor, "incomplete", ticket.status, reason, now)
    _flush(session, ticket)
    return ticket


def open_tickets_for_phone(session: Session, phone: str) -> list[Ticket]:
    """A caller's tickets still being worked on, newest first (for the status-check menu)."""
    query = select(Ticket).where(Ticket.phone == phone, Ticket.status.not_in(
        [Status.DRAFT, Status.CLOSED, Status.ARCHIVED, Status.ANSWERED, Status.NOT_ACCEPTED]))
    return list(session.scalars(query.order_by(Ticket.created_at.desc())))


# --- listing and search -------------------------------------------------------------------------------------

@dataclass
class TicketQuery:
    """Filters, sort and page of a ticket list. `sort` is a field of SORTABLE_FIELDS, '-' for descending."""

    statuses: Sequence[str] = ()
    level: int | None = None
    unit_id: int | None = None
    request_type: str | None = None
    topic: str | None = None
    overdue: bool | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    text: str | None = None
    sort: str = "-created_at"
    page: int = 1
    page_size: int = 50
    include_drafts: bool = True
    # Unit staff: `text` must not find a confidential ticket by the citizen's name, address or phone.
    confidential_identity_hidden: bool = False
    now: datetime = field(default_factory=utcnow)
    # Count the matches only up to this many (None: all of them; see list_tickets).
    count_limit: int | None = None


# What an operator's list counts up to (the API and the console): counting all ~10,000 tickets a two-character
# word matches in 100,000 took longer than finding the page; "more than 1000" tells an operator as much.
INTERACTIVE_COUNT_LIMIT = 1000


class TicketList(NamedTuple):
    """One page of matching tickets and how many match: exactly, or (total_exact False) more than `total`,
    when the query's count_limit stopped the count."""

    items: list[Ticket]
    total: int
    total_exact: bool


def waiting_past_due(now: datetime) -> Any:
    """Past its response deadline and still waiting for the unit: what supervision (督办) acts on."""
    return and_(Ticket.response_due_at < now, Ticket.status.not_in(list(SETTLED_STATUSES)))


def overdue_condition(now: datetime) -> Any:
    """Overdue: missed its deadline (the flag stays after a late reply, for evaluation) or is missing it now."""
    return or_(Ticket.overdue.is_(True), waiting_past_due(now))


def ticket_filter(query: TicketQuery, dialect: str = "sqlite") -> Select[tuple[Ticket]]:
    """The query's conditions; `dialect` of the database, because PostgreSQL searches text by index."""
    statement = select(Ticket)
    if query.statuses:
        statement = statement.where(Ticket.status.in_(list(query.statuses)))
    if not query.include_drafts:
        statement = statement.where(Ticket.is_draft.is_(False))
    for column, value in ((Ticket.level, query.level), (Ticket.unit_id, query.unit_id),
                          (Ticket.request_type, query.request_type), (Ticket.topic, query.topic)):
        if value is not None:
            statement = statement.where(column == value)
    if query.overdue is not None:
        condition = overdue_condition(query.now)
        statement = statement.where(condition if query.overdue else ~condition)
    if query.created_from is not None:
        statement = statement.where(Ticket.created_at >= query.created_from)
    if query.created_to is not None:
        statement = statement.where(Ticket.created_at < query.created_to)
    if query.text:
        statement = statement.where(text_condition(query.text, query.confidential_identity_hidden,
                                                   indexed=dialect == "postgresql"))
    return statement


def text_condition(needle: str, confidential_identity_hidden: bool, *, indexed: bool = False) -> ColumnElement[bool]:
    """Digits: a ticket number (or its start) or the phone. Other text: a substring of the content, topic,
    caller's name or address. The identity fields of confidential tickets only when they are not hidden.

    `indexed` (PostgreSQL): the candidates are the rows whose bigrams (migration 0007) contain the query's,
    read through the indexes; the ILIKE stays the exact test. A one-character query has no bigram and is
    a plain scan."""
    def identity(condition: ColumnElement[bool]) -> ColumnElement[bool]:
        return and_(Ticket.confidential.is_(False), condition) if confidential_identity_hidden else condition

    if needle.isascii() and needle.isdigit():
        digits = needle[:NUMBER_LENGTH]  # numbers have a fixed length: a prefix is an indexed range
        return or_(Ticket.number.between(digits.ljust(NUMBER_LENGTH, "0"), digits.ljust(NUMBER_LENGTH, "9")),
                   identity(Ticket.phone == needle))
    pattern = f"%{_escape_like(needle)}%"

    def found_in(*columns: Any) -> ColumnElement[bool]:
        return or_(*(column.ilike(pattern, escape="\\") for column in columns))

    exact = or_(found_in(Ticket.content, Ticket.topic), identity(found_in(Ticket.caller_name, Ticket.address)))
    if not (indexed and any(len(word) >= 2 for word in needle.split())):
        return exact
    # The bigram conditions only choose the candidate rows (one BitmapOr of the two indexes); kept out of
    # the exact test, because PostgreSQL would otherwise compute both rows' bigrams again for every candidate.
    query_grams = func.ticket_query_grams(needle)
    candidates = or_(func.ticket_search_grams(Ticket.content, Ticket.topic).op("@>")(query_grams),
                     func.ticket_search_grams(Ticket.caller_name, Ticket.address).op("@>")(query_grams))
    return and_(candidates, exact)


def list_tickets(session: Session, query: TicketQuery) -> TicketList:
    """One page of matching tickets and how many match.

    With `query.count_limit`, the count stops past max(count_limit, the end of the requested page): then
    total_exact is False and `total` that limit, so a reader still knows that a next page exists.

    A text search on PostgreSQL runs without parallel workers: on the two cores of a node, starting them cost
    more than they saved (停水 over 100,000 tickets: count 20-47 ms with a worker, 9 ms without; the page
    14 ms against 2.5 ms); scans of plain columns keep them (status and level: 5 ms with, 10 ms without)."""
    name = query.sort.lstrip("-")
    if name not in SORTABLE_FIELDS:
        raise ValueError(f"sort: {name!r} is not one of {', '.join(SORTABLE_FIELDS)}")
    column = getattr(Ticket, name)
    order = column.desc() if query.sort.startswith("-") else column.asc()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and query.text:
        session.execute(sql_text("SET LOCAL max_parallel_workers_per_gather = 0"))
    statement = ticket_filter(query, dialect)
    limit = None if query.count_limit is None else max(query.count_limit, query.page * query.page_size)
    counted = statement.with_only_columns(Ticket.id)
    if limit is not None:
        counted = counted.limit(limit + 1)
    total = session.scalar(select(func.count()).select_from(counted.subquery())) or 0
    page = statement.order_by(order, Ticket.id.desc()).limit(query.page_size).offset(
        (query.page - 1) * query.page_size)
    exact = limit is None or total <= limit
    return TicketList(list(session.scalars(page)), total if exact else limit, exact)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- member units ------------------------------------------------------------------------------------------

UNIT_FIELDS = ("name", "areas", "categories", "seat_numbers", "seat_languages", "working_hours", "webhook_url")


def create_unit(session: Session, fields: Mapping[str, Any]) -> MemberUnit:
    unit = MemberUnit(**_only(fields, UNIT_FIELDS, MemberUnit))
    _flush_unique_name(session, unit)
    return unit


def get_unit(session: Session, unit_id: int) -> MemberUnit:
    return _get_or_raise(session, MemberUnit, unit_id, f"no member unit with id {unit_id}")


def list_units(session: Session) -> list[MemberUnit]:
    return list(session.scalars(select(MemberUnit).order_by(MemberUnit.name)))


def update_unit(session: Session, unit_id: int, fields: Mapping[str, Any]) -> MemberUnit:
    unit = get_unit(session, unit_id)
    with session.no_autoflush:  # the name is checked before anything is written
        for name, value in _only(fields, UNIT_FIELDS, MemberUnit).items():
            setattr(unit, name, value)
        _flush_unique_name(session, unit)
    return unit


def _flush_unique_name(session: Session, unit: MemberUnit) -> None:
    """Unit names are unique: a taken name is a ValueError naming the field, checked before the write (a
    rename flushed into a failing UPDATE would leave the session unusable)."""
    taken = session.scalar(select(MemberUnit.id).where(MemberUnit.name == unit.name,
                                                       MemberUnit.id != unit.id if unit.id else true()))
    if taken is not None:
        raise ValueError(f"name: a member unit named {unit.name!r} already exists")
    session.add(unit)
    session.flush()


def delete_unit(session: Session, unit_id: int) -> None:
    """Refused (ValueError) while tickets, knowledge entries or tokens still refer to the unit."""
    unit = get_unit(session, unit_id)
    try:
        with session.begin_nested():
            session.delete(unit)
    except IntegrityError as error:
        raise ValueError(f"unit {unit_id} is still referred to by tickets, knowledge entries or tokens") \
            from error


def _only(fields: Mapping[str, Any], allowed: Sequence[str], model: type[Base]) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field")
    _refuse_nulls(fields, model)
    return dict(fields)


def _refuse_nulls(fields: Mapping[str, Any], model: type[Base]) -> None:
    """A null for a column that must have a value (e.g. PATCH {"confidential": null}) is the client's error,
    named, not a constraint failure at the database."""
    columns = model.__table__.columns
    for name, value in fields.items():
        if value is None and name in columns and not columns[name].nullable:
            raise ValueError(f"{name}: may not be null")


# --- knowledge base ----------------------------------------------------------------------------------------

KNOWLEDGE_FIELDS = ("question", "answer", "keywords", "language", "unit_id")


def create_knowledge(session: Session, fields: Mapping[str, Any]) -> KnowledgeEntry:
    check_unit_exists(session, fields.get("unit_id"))
    entry = KnowledgeEntry(**_only(fields, KNOWLEDGE_FIELDS, KnowledgeEntry))
    session.add(entry)
    session.flush()
    return entry


def get_knowledge(session: Session, entry_id: int) -> KnowledgeEntry:
    return _get_or_raise(session, KnowledgeEntry, entry_id, f"no knowledge entry with id {entry_id}")


def list_knowledge(session: Session, *, language: str | None = None, limit: int = 50) -> list[KnowledgeEntry]:
    statement = select(KnowledgeEntry).order_by(KnowledgeEntry.id).limit(limit)
    if language is not None:
        statement = statement.where(KnowledgeEntry.language == language)
    return list(session.scalars(statement))


def update_knowledge(session: Session, entry_id: int, fields: Mapping[str, Any]) -> KnowledgeEntry:
    entry = get_knowledge(session, entry_id)
    check_unit_exists(session, fields.get("unit_id"))
    for name, value in _only(fields, KNOWLEDGE_FIELDS, KnowledgeEntry).items():
        setattr(entry, name, value)
    session.flush()
    return entry


def delete_knowledge(session: Session, entry_id: int) -> None:
    session.delete(get_knowledge(session, entry_id))
    session.flush()


def search_knowledge(session: Session, text: str, *, language: str | None = None,
                     limit: int = 10, approved_only: bool = False) -> list[KnowledgeEntry]:
    """Entries whose keywords occur in `text` (a caller's sentence or an operator's query), best first:
    more matched keywords, then longer matched keywords. A query that contains the question also matches.
    `approved_only`: what the phone may say (a unit's entry an operator has not approved yet is left out;
    an approved entry answers with its approved text while a unit's edit waits, tickets.knowledge_review)."""
    statement = select(KnowledgeEntry)
    if language is not None:
        statement = statement.where(KnowledgeEntry.language == language)
    if approved_only:
        statement = statement.where(KnowledgeEntry.approved.is_(True))
    needle = text.casefold()
    scored = []
    for entry in session.scalars(statement):
        hits = [keyword for keyword in entry.keywords if keyword and keyword.casefold() in needle]
        if entry.question.casefold() in needle or (needle and needle in entry.question.casefold()):
            hits.append(entry.question)
        if hits:
            scored.append((len(hits), sum(map(len, hits)), -entry.id, entry))
    scored.sort(key=lambda item: item[:3], reverse=True)
    return [item[3] for item in scored[:limit]]


# --- holiday overrides -------------------------------------------------------------------------------------

def load_holiday_overrides(session: Session) -> dict[date, bool]:
    """The overrides as stored now (TicketRules.policy reads them through HOLIDAY_OVERRIDES)."""
    rows = session.execute(select(HolidayOverride.day, HolidayOverride.is_working_day))
    return {row.day: row.is_working_day for row in rows}


HOLIDAY_OVERRIDES = HolidayOverridesCache(load_holiday_overrides)


def list_holiday_overrides(session: Session) -> list[HolidayOverride]:
    return list(session.scalars(select(HolidayOverride).order_by(HolidayOverride.day)))


def set_holiday_override(session: Session, day: date, is_working_day: bool, note: str = "") -> HolidayOverride:
    override = session.get(HolidayOverride, day)
    if override is None:
        override = HolidayOverride(day=day, is_working_day=is_working_day, note=note)
        session.add(override)
    else:
        override.is_working_day, override.note = is_working_day, note
    session.flush()
    HOLIDAY_OVERRIDES.changed(session)
    return override


def delete_holiday_override(session: Session, day: date) -> None:
    override = _get_or_raise(session, HolidayOverride, day, f"no holiday override for {day.isoformat()}")
    session.delete(override)
    session.flush()
    HOLIDAY_OVERRIDES.changed(session)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes from a client are read as Shanghai local time, the hotline's own clock."""
    return (value if value.tzinfo else value.replace(tzinfo=SHANGHAI)).astimezone(timezone.utc)

