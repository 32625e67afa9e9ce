"""Satisfaction callbacks (回访): the durable queue of calls that read an approved reply to the citizen and ask
how satisfied they are (核实满意度), with its retry schedule and what each answer does to the ticket.

    approved reply (channel phone) --schedule--> attempt 1 pending, due at the next allowed moment
    pending --claim (conditional UPDATE, lease)--> calling --finish--> done
        1 满意 / 2 基本满意  -> callback recorded, ticket closed (for the archive)
        3 不满意            -> callback recorded with the reason, ticket reopened (重办: a new unit deadline)
        not reached        -> the next attempt `retry_hours` later, or after the last: callback 'unreachable'
    calling past its lease (the node died mid-call) -> done as 'interrupted', counted, the next one scheduled

Calls are placed only outside the quiet hours (local time) and, unless configured, not on statutory
holidays. The rows are the only state: a restart, or two nodes racing, never lose, repeat or double an
attempt (numbers are unique per reply; every step is a conditional UPDATE on the state, tickets.claims).
Functions taking a session flush but never commit, as in tickets.service; the claim functions own their
short transactions.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tickets import replies, service
from tickets.calendar import WorkingCalendar
from tickets.claims import claim_each
from tickets.lifecycle import Action, Status
from tickets.models import SATISFACTION, CallbackAttempt, Reply, Ticket, utcnow

ACTOR = "callbacks"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# How an attempt ended. 'answered' with a satisfaction is the only success; the rest are retried.
OUTCOMES = ("answered", "no_answer", "busy", "failed", "hung_up", "silence", "not_confirmed", "interrupted")
MAX_SCHEDULE_STEPS = 400  # days an allowed moment is looked for (a year of holidays would be a configuration bug)


@dataclass(frozen=True)
class CallbackPolicy:
    """When callbacks may be placed and how often they are retried (the [callbacks] section, app.config)."""

    attempts: int = 3
    retry_interval: timedelta = timedelta(hours=2)
    quiet_start: time = time(21, 0)  # local time: no call from here ...
    quiet_end: time = time(8, 0)  # ... to here
    call_on_holidays: bool = False
    lease: timedelta = timedelta(minutes=15)  # longest a node may hold an attempt (ringing plus the call)
    zone: ZoneInfo = SHANGHAI

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts: at least 1, got {self.attempts}")
        if self.retry_interval <= timedelta(0) or self.lease <= timedelta(0):
            raise ValueError("retry_hours and lease_minutes must be positive")

    def quiet(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone).time()
        if self.quiet_start == self.quiet_end:
            return False
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= local < self.quiet_end
        return local >= self.quiet_start or local < self.quiet_end

    def allowed(self, moment: datetime, calendar: WorkingCalendar) -> bool:
        """A callback may ring now: outside the quiet hours, and not on a statutory holiday unless configured."""
        day = moment.astimezone(self.zone).date()
        return not self.quiet(moment) and (self.call_on_holidays or not calendar.is_statutory_holiday(day))

    def next_allowed(self, moment: datetime, calendar: WorkingCalendar) -> datetime:
        """`moment` when a call may ring then, else the first moment after it that is allowed."""
        for _ in range(MAX_SCHEDULE_STEPS):
            if self.allowed(moment, calendar):
                return moment
            local = moment.astimezone(self.zone)
            if self.quiet(moment):
                end = datetime.combine(local.date(), self.quiet_end, self.zone)
                moment = end if end > local else end + timedelta(days=1)
            else:  # a holiday: the next day's first allowed moment
                moment = datetime.combine(local.date() + timedelta(days=1), self.quiet_end, self.zone)
        raise ValueError(f"no allowed callback time within {MAX_SCHEDULE_STEPS} days of {moment.isoformat()}")


@dataclass(frozen=True)
class CallbackCall:
    """What a node needs to place one claimed attempt: whom to call, in which language, what to read."""

    attempt_id: int
    attempt_number: int
    ticket_id: int
    ticket_number: str
    phone: str
    language: str | None
    confidential: bool
    handling_unit: str
    handled_at: datetime
    situation: str
    result: str


@dataclass(frozen=True)
class AttemptResult:
    """How the call went (the dialler fills it from the call and the flow's answers)."""

    outcome: str
    satisfaction_key: str | None = None  # '1', '2' or '3' as pressed (or said)
    reason_ref: str | None = None
    reason_text: str | None = None
    recording_ref: str | None = None
    call_id: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome: one of {', '.join(OUTCOMES)}, got {self.outcome!r}")
        if self.satisfaction_key is not None and self.satisfaction_key not in SATISFACTION:
            raise ValueError(f"satisfaction_key: one of {', '.join(SATISFACTION)}, got {self.satisfaction_key!r}")
        if self.satisfaction_key is not None and self.outcome != "answered":
            raise ValueError("satisfaction_key: only an answered call has one")


# --- scheduling ----------------------------------------------------------------------------------------------

def _awaiting_first_attempt(limit: int):
    """Approved replies to be phoned whose ticket waits for its callback and which have no attempt yet."""
    no_attempt = ~exists().where(CallbackAttempt.reply_id == Reply.id)
    return (select(Reply.id, Reply.ticket_id).join(Ticket, Ticket.id == Reply.ticket_id)
            .where(Reply.status == "approved", Reply.delivered_at.is_(None), Reply.channel == "phone",
                   Ticket.status == Status.REPLIED.value, no_attempt)
            .order_by(Reply.reviewed_at, Reply.id).limit(limit))


def schedule_new(session_factory: sessionmaker[Session], policy: CallbackPolicy, calendar: WorkingCalendar,
                 now: datetime, limit: int = 200) -> list[int]:
    """Give every newly approved phone reply its first attempt, due at the first allowed moment from `now`.
    Two nodes doing it at once make one row (the unique number per reply); returns the new attempts' ids."""
    with session_factory() as session:
        waiting = session.execute(_awaiting_first_attempt(limit)).all()
    made = []
    for reply_id, ticket_id in waiting:
        try:
            with session_factory.begin() as session:
                attempt = _add_attempt(session, ticket_id, reply_id, 1, policy.next_allowed(now, calendar), ACTOR)
                made.append(attempt.id)
        except IntegrityError:  # another node scheduled it first
            continue
    return made


def _add_attempt(session: Session, ticket_id: int, reply_id: int, number: int, due: datetime,
                 requested_by: str) -> CallbackAttempt:
    attempt = CallbackAttempt(ticket_id=ticket_id, reply_id=reply_id, number=number, due_at=due,
                              requested_by=requested_by, state="pending")
    session.add(attempt)
    session.flush()
    return attempt


def request_now(session: Session, ticket_id: int, *, actor: str, policy: CallbackPolicy,
                calendar: WorkingCalendar, note: str | None = None, now: datetime | None = None) -> CallbackAttempt:
    """An operator asks for the callback now: the pending attempt is brought forward, or a new one is added
    (numbered after the others). Still never in the quiet hours or on a holiday: then it is due at the next
    allowed moment (the answer says when). Conflict when the ticket is not waiting for its callback, has no
    approved reply, or a call is in progress."""
    now = now or utcnow()
    ticket = service.get_ticket(session, ticket_id)
    if ticket.status != Status.REPLIED:
        raise service.Conflict(f"ticket {ticket.number} is {ticket.status}: only a replied ticket is called back")
    reply = session.scalar(select(Reply).where(Reply.ticket_id == ticket_id, Reply.status == "approved")
                           .order_by(Reply.id.desc()).limit(1))
    if reply is None:
        raise service.Conflict(f"ticket {ticket.number} has no approved reply to read")
    due = policy.next_allowed(now, calendar)
    open_attempt = session.scalar(select(CallbackAttempt).where(CallbackAttempt.reply_id == reply.id,
                                                                CallbackAttempt.state != "done"))
    if open_attempt is not None and open_attempt.state == "calling":
        raise service.Conflict(f"ticket {ticket.number}: a callback call is in progress")
    if open_attempt is not None:
        moved = session.execute(update(CallbackAttempt).where(CallbackAttempt.id == open_attempt.id,
                                                              CallbackAttempt.state == "pending")
                                .values(due_at=min(due, open_attempt.due_at), requested_by=actor))
        if moved.rowcount != 1:
            raise service.Conflict(f"ticket {ticket.number}: a callback call is in progress")
        session.refresh(open_attempt)
        attempt = open_attempt
    else:
        last = session.scalar(select(func.max(CallbackAttempt.number)).where(CallbackAttempt.reply_id == reply.id))
        attempt = _add_attempt(session, ticket_id, reply.id, (last or 0) + 1, due, actor)
    service.record_event(session, ticket, actor, "callback_requested", ticket.status,
                         f"callback attempt {attempt.number} due {attempt.due_at.isoformat()}"
                         + (f": {note}" if note else ""), now)
    session.flush()
    return attempt


def attempts_of(session: Session, ticket_id: int) -> list[CallbackAttempt]:
    return list(session.scalars(select(CallbackAttempt).where(CallbackAttempt.ticket_id == ticket_id)
                                .order_by(CallbackAttempt.id)))


# --- claiming and finishing ----------------------------------------------------------------------------------

def claim_due(session_factory: sessionmaker[Session], node: str, *, policy: CallbackPolicy,
              calendar: WorkingCalendar, now: datetime, limit: int) -> list[CallbackCall]:
    """Claim up to `limit` due attempts for `node` (its free outbound capacity), oldest due first. Nothing
    during the quiet hours or on a holiday. Each claim is a conditional UPDATE pending -> calling, so two
    nodes never claim the same attempt; the lease bounds how long a node that died may hold it."""
    if limit <= 0 or not policy.allowed(now, calendar):
        return []
    due = (CallbackAttempt.state == "pending", CallbackAttempt.due_at <= now)
    candidates = select(CallbackAttempt.id).where(*due).order_by(CallbackAttempt.due_at,
                                                                 CallbackAttempt.id).limit(limit)

    def claim(attempt_id: int):
        return (update(CallbackAttempt).where(CallbackAttempt.id == attempt_id, *due)
                .values(state="calling", node=node, claimed_at=now, lease_until=now + policy.lease))

    def plan(session: Session, attempt_id: int) -> CallbackCall | None:
        attempt = session.get(CallbackAttempt, attempt_id, populate_existing=True)
        ticket = attempt.ticket
        if ticket.status != Status.REPLIED or not ticket.phone:  # settled meanwhile (an operator recorded it)
            attempt.state, attempt.ended_at, attempt.outcome = "done", now, "failed"
            attempt.note = "not called: " + ("no phone number" if ticket.status == Status.REPLIED
                                             else f"the ticket is {ticket.status}")
            return None
        attempt.called_number = ticket.phone
        return _call_of(attempt)

    return claim_each(session_factory, candidates, claim, plan)


def claim_for_caller(session_factory: sessionmaker[Session], phone: str, node: str, *, policy: CallbackPolicy,
                     now: datetime) -> CallbackCall | None:
    """The citizen called 12345 while their callback is pending: claim it for this (inbound) call, due or not
    and whatever the hour — they called us. None when they have no pending callback (or another node holds
    it). Finish it with their answer, or `release` it untouched when they did not answer."""
    pending = (CallbackAttempt.state == "pending",)
    candidates = (select(CallbackAttempt.id).join(Ticket, Ticket.id == CallbackAttempt.ticket_id)
                  .where(*pending, Ticket.phone == phone, Ticket.status == Status.REPLIED.value)
                  .order_by(CallbackAttempt.due_at, CallbackAttempt.id).limit(1))

    def claim(attempt_id: int):
        return (update(CallbackAttempt).where(CallbackAttempt.id == attempt_id, *pending)
                .values(state="calling", node=node, claimed_at=now, lease_until=now + policy.lease))

    def plan(session: Session, attempt_id: int) -> CallbackCall:
        attempt = session.get(CallbackAttempt, attempt_id, populate_existing=True)
        attempt.called_number = None  # nobody was dialled: the citizen called in
        return _call_of(attempt)

    claimed = claim_each(session_factory, candidates, claim, plan)
    return claimed[0] if claimed else None


def release(session: Session, attempt_id: int, *, node: str) -> bool:
    """Give a claimed attempt back unchanged (the citizen who called in did not answer the survey): it stays
    due as before and is not counted. False when `node` no longer held it."""
    released = session.execute(update(CallbackAttempt).where(CallbackAttempt.id == attempt_id,
                                                             CallbackAttempt.state == "calling",
                                                             CallbackAttempt.node == node)
                               .values(state="pending", node=None, claimed_at=None, lease_until=None))
    return released.rowcount == 1


def _call_of(attempt: CallbackAttempt) -> CallbackCall:
    ticket, reply = attempt.ticket, attempt.reply
    return CallbackCall(attempt.id, attempt.number, ticket.id, ticket.number, ticket.phone or "", ticket.language,
                        ticket.confidential, reply.handling_unit, reply.handled_at, reply.situation, reply.result)


def finish(session: Session, attempt_id: int, result: AttemptResult, *, node: str, policy: CallbackPolicy,
           calendar: WorkingCalendar, rules: service.TicketRules, now: datetime | None = None) -> CallbackAttempt:
    """Store how the claimed attempt went and apply it to the ticket. Conflict when `node` no longer holds
    the attempt (its lease ran out and it was counted as interrupted): the outcome is then logged, not
    applied twice."""
    now = now or utcnow()
    done = session.execute(update(CallbackAttempt).where(CallbackAttempt.id == attempt_id,
                                                         CallbackAttempt.state == "calling",
                                                         CallbackAttempt.node == node)
                           .values(state="done", ended_at=now, outcome=result.outcome,
                                   satisfaction=SATISFACTION.get(result.satisfaction_key or ""),
                                   reason_ref=result.reason_ref, reason_text=result.reason_text,
                                   recording_ref=result.recording_ref, call_id=result.call_id, note=result.note))
    if done.rowcount != 1:
        raise service.Conflict(f"callback attempt {attempt_id} is not held by {node}")
    attempt = session.get(CallbackAttempt, attempt_id, populate_existing=True)
    _apply(session, attempt, policy, calendar, rules, now)
    session.flush()
    return attempt


def expire_leases(session_factory: sessionmaker[Session], *, policy: CallbackPolicy, calendar: WorkingCalendar,
                  rules: service.TicketRules, now: datetime) -> list[int]:
    """Attempts whose node died mid-call (lease over): done as 'interrupted' — counted, never placed again,
    since the citizen may have been rung — and the next one scheduled. Returns their ids."""
    expired = (CallbackAttempt.state == "calling", CallbackAttempt.lease_until < now)
    candidates = select(CallbackAttempt.id).where(*expired).order_by(CallbackAttempt.id)

    def claim(attempt_id: int):
        return (update(CallbackAttempt).where(CallbackAttempt.id == attempt_id, *expired)
                .values(state="done", ended_at=now, outcome="interrupted",
                        note="the node holding the call stopped before it ended"))

    def follow_up(session: Session, attempt_id: int) -> int:
        _apply(session, session.get(CallbackAttempt, attempt_id, populate_existing=True), policy, calendar,
               rules, now)
        return attempt_id

    return claim_each(session_factory, candidates, claim, follow_up)


def _apply(session: Session, attempt: CallbackAttempt, policy: CallbackPolicy, calendar: WorkingCalendar,
           rules: service.TicketRules, now: datetime) -> None:
    """What a finished attempt does to the ticket: the answer recorded (closed, or reopened for the unit),
    or the next attempt, or after the last one 'unreachable' for an operator."""
    ticket = attempt.ticket
    if ticket.status != Status.REPLIED:  # an operator settled the callback meanwhile: keep the attempt only
        return
    if attempt.satisfaction is not None:
        _delivery(session, attempt, True, f"read on callback attempt {attempt.number}", now)
        service.transition(session, ticket.id, Action.CALLBACK, actor=ACTOR, rules=rules, now=now,
                           callback_result=attempt.satisfaction, note=_answer_note(attempt))
        if attempt.satisfaction == "不满意":  # 重办: the unit works again under a new reply deadline
            service.transition(session, ticket.id, Action.REOPEN, actor=ACTOR, rules=rules, now=now,
                               note=attempt.reason_text or "citizen not satisfied; reason recorded")
        else:
            service.transition(session, ticket.id, Action.CLOSE, actor=ACTOR, rules=rules, now=now,
                               note=f"callback {attempt.satisfaction}")
        return
    _delivery(session, attempt, False, f"callback attempt {attempt.number}: {attempt.outcome}", now)
    if attempt.number < policy.attempts:
        due = policy.next_allowed(now + policy.retry_interval, calendar)
        _add_attempt(session, ticket.id, attempt.reply_id, attempt.number + 1, due, ACTOR)
        return
    service.transition(session, ticket.id, Action.CALLBACK, actor=ACTOR, rules=rules, now=now,
                       callback_result="unreachable",
                       note=f"not reached in {attempt.number} attempts; an operator follows up")


def _delivery(session: Session, attempt: CallbackAttempt, delivered: bool, note: str, now: datetime) -> None:
    """The reply's delivery record, unless an operator already recorded it delivered (by another channel)."""
    if attempt.reply.delivered_at is None:
        replies.record_delivery(session, attempt.reply_id, delivered=delivered, actor=ACTOR, note=note, now=now)


def _answer_note(attempt: CallbackAttempt) -> str:
    note = f"callback attempt {attempt.number}: {attempt.satisfaction}"
    if attempt.reason_text:
        note += f"; reason: {attempt.reason_text}"
    elif attempt.reason_ref:
        note += "; reason recorded"
    return note

