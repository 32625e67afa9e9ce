"""Every deadline kind stored on real tickets (SQLite and PostgreSQL), with real dates across the 2026
National Day holiday (Oct 1-7 off, Saturday Oct 10 a make-up working day) and Spring Festival (Feb 15-23 off,
Saturday Feb 14 and Feb 28 working days); which event meets or cancels which deadline; and the scheduler
firing 催办 and 督办 once per deadline of every kind."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ticket_steps import reply_and_approve, walk
from tickets import service
from tickets.lifecycle import Action
from tickets.models import Ticket
from tickets.scheduler import Scheduler

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def deadlines(ticket: Ticket) -> dict[str, tuple[datetime, datetime | None, datetime | None]]:
    """kind -> (due, met, cancelled) of the latest deadline of each kind."""
    return {d.kind: (d.due_at, d.met_at, d.cancelled_at) for d in ticket.deadlines}


def create(session, rules, when, **fields):
    ticket, _ = service.create_ticket(session, {"content": "路灯不亮", "phone": "13800000000", **fields},
                                      rules=rules, actor="op", now=when)
    return ticket


def act(session, rules, ticket, action, when, **extra):
    return service.transition(session, ticket.id, action, actor="op", rules=rules, now=when, **extra)


@pytest.fixture
def unit_id(session_factory):
    with session_factory.begin() as session:
        return service.create_unit(session, {"name": "市住建局"}).id


def test_appeal_received_before_national_day(session_factory, rules):
    """申诉 on 2026-09-30 09:00: review in 24 h, investigation by the 3rd working day (Oct 8, 9 and the
    make-up Saturday Oct 10), resolution by the 7th (Oct 15); no level response deadline; the governing
    deadline (read back, mirrored) is the resolution."""
    with session_factory.begin() as session:
        ticket = create(session, rules, at("2026-09-30T09:00"), request_type="申诉", level=3)
    with session_factory() as session:
        ticket = session.get(Ticket, ticket.id)
        assert deadlines(ticket) == {
            "appeal_review": (at("2026-10-01T09:00"), None, None),
            "appeal_investigation": (at("2026-10-10T23:59:59"), None, None),
            "appeal_resolution": (at("2026-10-15T23:59:59"), None, None),
        }
        assert ticket.response_due_at == at("2026-10-15T23:59:59")
        assert all(d.started_at == at("2026-09-30T09:00") for d in ticket.deadlines)
        assert not any(d.statutory_data_missing for d in ticket.deadlines)


def test_complaint_dispatched_before_national_day_and_replied_after(session_factory, rules, unit_id):
    """投诉 at level 3 received 2026-09-30 10:00 and dispatched at 17:00: the complaint's 24 h review is met
    by the dispatch, the unit's 2 working days start at dispatch (due 2026-10-09 23:59:59), the reply approved
    on Oct 9 meets the unit reply and the response (due Oct 7 10:00: met late), and the callback is due two
    working days after it (Saturday Oct 10 is one: Oct 12 23:59:59)."""
    received, dispatched, replied = at("2026-09-30T10:00"), at("2026-09-30T17:00"), at("2026-10-09T15:00")
    with session_factory.begin() as session:
        ticket = create(session, rules, received, request_type="投诉", level=3)
        act(session, rules, ticket, Action.DISPATCH, dispatched, unit_id=unit_id)
        assert deadlines(ticket) == {
            "response": (at("2026-10-07T10:00"), None, None),
            "complaint_review": (at("2026-10-01T10:00"), dispatched, None),
            "unit_reply": (at("2026-10-09T23:59:59"), None, None),
        }
        act(session, rules, ticket, Action.SIGN, dispatched)
        act(session, rules, ticket, Action.START, dispatched)
        reply_and_approve(session, rules, ticket.id, replied)
    with session_factory() as session:
        ticket = session.get(Ticket, ticket.id)
        assert deadlines(ticket) == {
            "response": (at("2026-10-07T10:00"), replied, None),
            "complaint_review": (at("2026-10-01T10:00"), dispatched, None),
            "unit_reply": (at("2026-10-09T23:59:59"), replied, None),
            "callback": (at("2026-10-12T23:59:59"), None, None),
        }
        assert next(d for d in ticket.deadlines if d.kind == "unit_reply").started_at == dispatched
        assert (ticket.response_due_at, ticket.callback_due_at) == (at("2026-10-07T10:00"), at("2026-10-12T23:59:59"))
        assert ticket.overdue is True  # the response was met after it was due


def test_unit_reply_across_spring_festival_and_return_then_redispatch(session_factory, rules, unit_id):
    """Dispatched Friday 2026-02-13: Saturday Feb 14 is a make-up working day, Feb 15-23 are off, so the
    unit's reply is due Tuesday Feb 24. Sent back as misrouted, that deadline is cancelled (not met); the
    next dispatch starts a fresh one."""
    with session_factory.begin() as session:
        other = service.create_unit(session, {"name": "市水务局"})
        ticket = create(session, rules, at("2026-02-13T09:00"), level=3)
        act(session, rules, ticket, Action.DISPATCH, at("2026-02-13T16:00"), unit_id=unit_id)
        assert deadlines(ticket)["unit_reply"] == (at("2026-02-24T23:59:59"), None, None)
        act(session, rules, ticket, Action.RETURN_MISROUTED, at("2026-02-14T10:00"), note="不属本单位职责")
        act(session, rules, ticket, Action.DISPATCH, at("2026-02-24T09:00"), unit_id=other.id)
        units = [(d.started_at, d.due_at, d.met_at, d.cancelled_at) for d in ticket.deadlines if d.kind == "unit_reply"]
    assert units == [(at("2026-02-13T16:00"), at("2026-02-24T23:59:59"), None, at("2026-02-14T10:00")),
                     (at("2026-02-24T09:00"), at("2026-02-26T23:59:59"), None, None)]


def test_settled_at_intake_meets_everything_but_the_callback(session_factory, rules):
    with session_factory.begin() as session:
        appeal = create(session, rules, at("2026-03-02T10:00"), request_type="申诉")
        act(session, rules, appeal, Action.REJECT, at("2026-03-02T11:00"), rejection_reason="legal_proceedings")
        answered = create(session, rules, at("2026-03-02T10:00"), request_type="咨询")
        act(session, rules, answered, Action.ANSWER_DIRECTLY, at("2026-03-02T10:05"))
        assert {kind: met for kind, (_, met, _) in deadlines(appeal).items()} == dict.fromkeys(
            ("appeal_review", "appeal_investigation", "appeal_resolution"), at("2026-03-02T11:00"))
        assert deadlines(answered) == {"response": (at("2026-03-09T10:00"), at("2026-03-02T10:05"), None)}


def test_investigation_milestone_reopen_and_level_override(session_factory, rules, unit_id):
    with session_factory.begin() as session:
        appeal = create(session, rules, at("2026-03-02T10:00"), request_type="申诉")
        act(session, rules, appeal, Action.DISPATCH, at("2026-03-02T11:00"), unit_id=unit_id)
        with pytest.raises(ValueError, match="note"):
            service.record_investigation(session, appeal.id, actor="unit", note="", rules=rules)
        service.record_investigation(session, appeal.id, actor="unit", note="已调查核实", rules=rules,
                                     now=at("2026-03-04T16:00"))
        assert deadlines(appeal)["appeal_investigation"][1] == at("2026-03-04T16:00")
        with pytest.raises(service.Conflict, match="no open appeal_investigation"):
            service.record_investigation(session, appeal.id, actor="unit", note="again", rules=rules)
        walk(session, rules, appeal.id, at("2026-03-05T10:00"), (Action.SIGN, 0, {}), (Action.START, 0, {}),
             (Action.REPLY, 0, {}))
        act(session, rules, appeal, Action.REOPEN, at("2026-03-06T10:00"), note="市民不满意")
        kinds = [(d.kind, d.met_at, d.cancelled_at) for d in appeal.deadlines]
        assert kinds[-3:] == [("callback", None, at("2026-03-06T10:00")),
                              ("unit_reply", None, None), ("appeal_resolution", None, None)]
        assert appeal.response_due_at == at("2026-03-17T23:59:59")  # 7 working days from Friday the 6th
        assert appeal.callback_due_at is None

        urgent = create(session, rules, at("2026-03-02T10:00"), content="停水了")  # level 2: 24 h
        service.override_level(session, urgent.id, 1, actor="op", rules=rules, now=at("2026-03-02T10:30"))
        assert deadlines(urgent)["response"][0] == at("2026-03-02T12:00") == urgent.response_due_at


def test_correcting_the_type_brings_that_types_deadlines_from_receipt(session_factory, rules):
    with session_factory.begin() as session:
        ticket = create(session, rules, at("2026-03-02T10:00"), request_type="咨询")
        service.update_fields(session, ticket, {"request_type": "申诉"}, actor="op", rules=rules,
                              now=at("2026-03-02T12:00"))
        assert [(d.kind, d.started_at, d.cancelled_at) for d in ticket.deadlines] == [
            ("response", at("2026-03-02T10:00"), at("2026-03-02T12:00")),
            ("appeal_review", at("2026-03-02T10:00"), None),
            ("appeal_investigation", at("2026-03-02T10:00"), None),
            ("appeal_resolution", at("2026-03-02T10:00"), None)]
        assert ticket.response_due_at == at("2026-03-11T23:59:59")


def test_drafts_have_no_deadlines_until_submitted(session_factory, rules):
    with session_factory.begin() as session:
        draft, _ = service.create_ticket(session, {"content": "暖气不热"}, rules=rules, actor="ivr", draft=True,
                                         now=at("2026-03-02T10:00"))
        assert draft.deadlines == [] and draft.response_due_at is None
        act(session, rules, draft, Action.SUBMIT, at("2026-03-02T10:03"))
        assert deadlines(draft) == {"response": (at("2026-03-03T10:03"), None, None)}


def test_scheduler_reminds_and_supervises_every_kind_exactly_once(session_factory, rules, unit_id):
    """Tickets under all seven kinds left unattended from 2026-09-30 to 2026-10-20; rounds every 3 hours on
    two scheduler instances (a restart, or a second node): each deadline is reminded once, at the first round
    after its reminder time, and supervised once, at the first round after it was due."""
    start = at("2026-09-30T09:00")
    with session_factory.begin() as session:
        appeal = create(session, rules, start, request_type="申诉")
        complaint = create(session, rules, start, request_type="投诉", level=3)
        act(session, rules, complaint, Action.DISPATCH, start, unit_id=unit_id)  # unit_reply starts
        replied = create(session, rules, start - timedelta(days=1), level=2)
        walk(session, rules, replied.id, start, (Action.DISPATCH, 0, {"unit_id": unit_id}), (Action.SIGN, 0, {}),
             (Action.START, 0, {}), (Action.REPLY, 0, {}))  # the callback starts
        complaint_review = next(d for d in complaint.deadlines if d.kind == "complaint_review")
        complaint_review.met_at = None  # left unreviewed, so it too is reminded and supervised
        expected = {(t.number, d.kind): (d.remind_at, d.due_at)
                    for t in (appeal, complaint, replied) for d in t.deadlines if d.is_open}
    assert sorted(kind for _, kind in expected) == sorted(
        ["appeal_review", "appeal_investigation", "appeal_resolution", "response", "complaint_review",
         "unit_reply", "callback"])
    nodes = [Scheduler(session_factory), Scheduler(session_factory)]
    reminded, supervised = Counter(), Counter()
    first_remind, first_supervise = {}, {}
    now = start
    while now < at("2026-10-20T00:00"):
        for node in nodes:
            report = node.run_once(now)
            for fired in report.reminded:
                reminded[fired.number, fired.kind] += 1
                first_remind.setdefault((fired.number, fired.kind), now)
            for fired in report.supervised:
                supervised[fired.number, fired.kind] += 1
                first_supervise.setdefault((fired.number, fired.kind), now)
        now += timedelta(hours=3)
    assert reminded == Counter(dict.fromkeys(expected, 1))
    assert supervised == Counter(dict.fromkeys(expected, 1))
    for key, (remind_at, due_at) in expected.items():
        assert remind_at <= first_remind[key] < remind_at + timedelta(hours=3), key
        assert due_at <= first_supervise[key] < due_at + timedelta(hours=3), key
    with session_factory() as session:
        ticket = session.get(Ticket, appeal.id)
        notes = [e.note for e in ticket.events if e.action in ("remind", "supervise")]
        assert len(notes) == 6 and any(n.startswith("催办: appeal_resolution due 2026-10-15T15:59:59") for n in notes)
        assert ticket.overdue is True and ticket.supervised_at == first_supervise[appeal.number, "appeal_review"]


def test_a_met_deadline_is_neither_reminded_nor_supervised(session_factory, rules, unit_id):
    with session_factory.begin() as session:
        ticket = create(session, rules, at("2026-03-02T10:00"), content="停水了")
        act(session, rules, ticket, Action.ANSWER_DIRECTLY, at("2026-03-02T10:05"))
    report = Scheduler(session_factory).run_once(at("2026-03-20T10:00"))
    assert (report.reminded, report.supervised) == ([], [])
