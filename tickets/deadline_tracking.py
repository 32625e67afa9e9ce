"""Which deadlines a ticket is under, as data: the event that starts each kind, the events that meet it and
the events after which it no longer applies. The service calls `apply` for every event it records, so the
stored list (`Ticket.deadlines`) is always what the history says, and `met_at` is the time of the event that
met it (archiving never touches it; the statistics read the history's event times against `due_at`).

    receipt           starts response (not for 申诉), complaint_review (投诉),
                      appeal_review + appeal_investigation + appeal_resolution (申诉)
    dispatch          starts unit_reply (2 working days from dispatch); meets the first reviews
    escalate          meets the first reviews; cancels unit_reply (the leader's instruction comes first)
    answer_directly,  meet every open deadline but the callback (the centre settled it at intake)
    reject
    return_misrouted  cancels unit_reply (a new one starts at the next dispatch)
    record_investigation  meets appeal_investigation (调查核实 done, before the reply)
    approve_reply     the reviewer approved the reply, which now counts as sent (审核把关): meets response,
                      unit_reply, appeal_investigation, appeal_resolution; starts callback
    callback          meets callback
    reopen (重办)      cancels the callback; starts the governing deadline and unit_reply again

The governing deadline is the one promised to the citizen and read back on the phone: an appeal's
resolution, otherwise the level's response. `Ticket.response_due_at` mirrors it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tickets.deadlines import DeadlineKind as Kind
from tickets.deadlines import DeadlinePolicy
from tickets.models import Ticket, TicketDeadline

APPEAL, COMPLAINT = "申诉", "投诉"
REVIEWS = (Kind.COMPLAINT_REVIEW, Kind.APPEAL_REVIEW)
SETTLED_AT_THE_CENTRE = tuple(kind for kind in Kind if kind != Kind.CALLBACK)
RECORD_INVESTIGATION = "record_investigation"


@dataclass(frozen=True)
class Effect:
    starts: tuple[Kind, ...] = ()
    meets: tuple[Kind, ...] = ()
    cancels: tuple[Kind, ...] = ()


# Keyed by the history's action names (tickets.lifecycle.Action values plus record_investigation).
EFFECTS: dict[str, Effect] = {
    "dispatch": Effect(starts=(Kind.UNIT_REPLY,), meets=REVIEWS),
    "escalate": Effect(meets=REVIEWS, cancels=(Kind.UNIT_REPLY,)),
    "answer_directly": Effect(meets=SETTLED_AT_THE_CENTRE),
    "reject": Effect(meets=SETTLED_AT_THE_CENTRE),
    "return_misrouted": Effect(cancels=(Kind.UNIT_REPLY,)),
    RECORD_INVESTIGATION: Effect(meets=(Kind.APPEAL_INVESTIGATION,)),
    "approve_reply": Effect(meets=(Kind.RESPONSE, Kind.UNIT_REPLY, Kind.APPEAL_INVESTIGATION,
                                   Kind.APPEAL_RESOLUTION), starts=(Kind.CALLBACK,)),
    "callback": Effect(meets=(Kind.CALLBACK,)),
    "reopen": Effect(cancels=(Kind.CALLBACK,), starts=(Kind.UNIT_REPLY,)),  # + the governing kind
}


def governing_kind(request_type: str | None) -> Kind:
    """The deadline promised to the citizen: an appeal's resolution, otherwise the level's response."""
    return Kind.APPEAL_RESOLUTION if request_type == APPEAL else Kind.RESPONSE


def intake_kinds(request_type: str | None) -> tuple[Kind, ...]:
    """What starts when a ticket is received, by request type."""
    if request_type == APPEAL:
        return Kind.APPEAL_REVIEW, Kind.APPEAL_INVESTIGATION, Kind.APPEAL_RESOLUTION
    if request_type == COMPLAINT:
        return Kind.RESPONSE, Kind.COMPLAINT_REVIEW
    return (Kind.RESPONSE,)


def open_deadline(ticket: Ticket, kind: Kind | str) -> TicketDeadline | None:
    return next((d for d in reversed(ticket.deadlines) if d.kind == kind and d.is_open), None)


def latest(ticket: Ticket, kind: Kind | str) -> TicketDeadline | None:
    return next((d for d in reversed(ticket.deadlines) if d.kind == kind), None)


def receive(ticket: Ticket, policy: DeadlinePolicy, now: datetime) -> None:
    """The ticket was received (created or submitted): start the intake deadlines."""
    for kind in intake_kinds(ticket.request_type):
        start(ticket, kind, policy, now)
    mirror(ticket)


def apply(ticket: Ticket, action: str, policy: DeadlinePolicy, now: datetime) -> None:
    """Record what the event `action` at `now` does to the ticket's deadlines."""
    effect = EFFECTS.get(action)
    if effect is None:
        return
    for deadline in ticket.deadlines:
        if not deadline.is_open:
            continue
        if deadline.kind in effect.meets:
            deadline.met_at = now
        elif deadline.kind in effect.cancels:
            deadline.cancelled_at = now
    starts = effect.starts + ((governing_kind(ticket.request_type),) if action == "reopen" else ())
    for kind in starts:
        start(ticket, kind, policy, now)
    mirror(ticket)


def start(ticket: Ticket, kind: Kind, policy: DeadlinePolicy, now: datetime) -> TicketDeadline:
    """Start a deadline of `kind` at `now`; one still open of the same kind is superseded (cancelled)."""
    previous = open_deadline(ticket, kind)
    if previous is not None:
        previous.cancelled_at = now
    deadline = policy.for_kind(now, kind, ticket.level)
    row = TicketDeadline(kind=kind.value, started_at=now, due_at=deadline.due,
                         remind_at=policy.reminder_at(now, deadline.due),
                         statutory_data_missing=deadline.statutory_data_missing)
    ticket.deadlines.append(row)
    return row


def level_changed(ticket: Ticket, policy: DeadlinePolicy) -> None:
    """A new level moves the open response deadline, counted from when it started; the reminder and
    supervision claims are reset so they fire for the new times."""
    deadline = open_deadline(ticket, Kind.RESPONSE)
    if deadline is None:
        return
    due = policy.for_level(deadline.started_at, ticket.level)
    deadline.due_at, deadline.remind_at = due.due, policy.reminder_at(deadline.started_at, due.due)
    deadline.reminded_at = deadline.supervised_at = None
    mirror(ticket)


def request_type_changed(ticket: Ticket, policy: DeadlinePolicy, now: datetime) -> None:
    """An operator corrected the request type of a received ticket: the type's own deadlines follow, counted
    from the receipt (a complaint's 24 h review does not restart because the type was fixed later)."""
    wanted = set(intake_kinds(ticket.request_type))
    received = ticket.received_at or now
    for deadline in ticket.deadlines:
        if deadline.is_open and deadline.kind in (Kind.RESPONSE, *REVIEWS, Kind.APPEAL_INVESTIGATION,
                                                  Kind.APPEAL_RESOLUTION) and deadline.kind not in wanted:
            deadline.cancelled_at = now
    for kind in intake_kinds(ticket.request_type):
        if latest(ticket, kind) is None or latest(ticket, kind).cancelled_at is not None:
            start(ticket, kind, policy, received)
    mirror(ticket)


def mirror(ticket: Ticket) -> None:
    """Keep the ticket's summary columns in step with its deadlines."""
    governing = latest(ticket, governing_kind(ticket.request_type))
    ticket.response_due_at = governing.due_at if governing is not None else None
    callback = latest(ticket, Kind.CALLBACK)
    ticket.callback_due_at = callback.due_at if callback is not None and callback.cancelled_at is None else None
    ticket.statutory_data_missing = any(d.statutory_data_missing for d in ticket.deadlines)
    ticket.overdue = any(missed(d) for d in ticket.deadlines)


def missed(deadline: TicketDeadline) -> bool:
    """Supervised (督办) or met after it was due: kept for evaluation after the work is done."""
    return deadline.supervised_at is not None or (deadline.met_at is not None and deadline.met_at > deadline.due_at)
