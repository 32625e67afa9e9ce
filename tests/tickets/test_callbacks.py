"""Satisfaction callbacks (回访) on the real databases (SQLite and PostgreSQL), the clock injected: the first
attempt scheduled once per approved reply, retries spaced as configured and never in the quiet hours or on a
statutory holiday, the answer applied to the ticket (closed, or reopened with a new unit deadline), the last
failure marked unreachable, and nodes racing or dying never losing, repeating or doubling an attempt."""
from __future__ import annotations

import threading
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from ticket_steps import reply_and_approve, walk
from tickets import callbacks, replies, service
from tickets.calendar import WorkingCalendar
from tickets.callbacks import AttemptResult, CallbackPolicy
from tickets.lifecycle import Action
from tickets.models import CallbackAttempt, Reply, Ticket

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday
POLICY = CallbackPolicy(attempts=3, retry_interval=timedelta(hours=2), quiet_start=time(21), quiet_end=time(8))
CALENDAR = WorkingCalendar()


def replied_ticket(session_factory, rules, approved_at: datetime, *, phone: str = "13800001234") -> int:
    """A water ticket whose reply was approved at `approved_at` (its callback is due)."""
    with session_factory.begin() as session:
        unit = service.create_unit(session, {"name": f"市水务局{approved_at.isoformat()}{phone}"})
        ticket, _ = service.create_ticket(session, {"content": "停水两天了", "phone": phone, "level": 2},
                                          rules=rules, actor="op", now=approved_at - timedelta(hours=4))
        walk(session, rules, ticket.id, approved_at - timedelta(hours=4), (Action.DISPATCH, 1, {"unit_id": unit.id}),
             (Action.SIGN, 2, {}), (Action.START, 3, {}))
        reply_and_approve(session, rules, ticket.id, approved_at)
        return ticket.id


def attempts(session_factory, ticket_id):
    with session_factory() as session:
        return [(a.number, a.state, a.outcome, a.due_at.astimezone(SHANGHAI))
                for a in callbacks.attempts_of(session, ticket_id)]


def place(session_factory, rules, now, result: AttemptResult, node="node-a"):
    """One dialler round at `now`: claim what is due and finish it with `result`."""
    [call] = callbacks.claim_due(session_factory, node, policy=POLICY, calendar=CALENDAR, now=now, limit=5)
    with session_factory.begin() as session:
        callbacks.finish(session, call.attempt_id, result, node=node, policy=POLICY, calendar=CALENDAR, rules=rules,
                         now=now + timedelta(minutes=1))
    return call


def test_policy_moves_calls_out_of_quiet_hours_and_holidays():
    assert POLICY.next_allowed(T0, CALENDAR) == T0
    late = datetime(2026, 3, 2, 21, 30, tzinfo=SHANGHAI)
    assert POLICY.next_allowed(late, CALENDAR) == datetime(2026, 3, 3, 8, 0, tzinfo=SHANGHAI)
    early = datetime(2026, 3, 3, 6, 0, tzinfo=SHANGHAI)
    assert POLICY.next_allowed(early, CALENDAR) == datetime(2026, 3, 3, 8, 0, tzinfo=SHANGHAI)
    # 国庆节 2026: 1-7 October are statutory holidays; the ordinary Saturday before them is not one
    assert POLICY.next_allowed(datetime(2026, 9, 30, 22, 0, tzinfo=SHANGHAI), CALENDAR) == \
        datetime(2026, 10, 8, 8, 0, tzinfo=SHANGHAI)
    saturday = datetime(2026, 3, 7, 10, 0, tzinfo=SHANGHAI)
    assert POLICY.next_allowed(saturday, CALENDAR) == saturday
    on_holidays = CallbackPolicy(call_on_holidays=True)
    assert on_holidays.next_allowed(datetime(2026, 10, 1, 10, 0, tzinfo=SHANGHAI), CALENDAR) == \
        datetime(2026, 10, 1, 10, 0, tzinfo=SHANGHAI)
    overridden = WorkingCalendar({datetime(2026, 3, 4).date(): False})  # an administrator's extra holiday
    assert POLICY.next_allowed(datetime(2026, 3, 4, 9, 0, tzinfo=SHANGHAI), overridden) == \
        datetime(2026, 3, 5, 8, 0, tzinfo=SHANGHAI)


def test_first_attempt_once_per_reply_and_after_the_quiet_hours(session_factory, rules):
    evening = datetime(2026, 3, 2, 21, 40, tzinfo=SHANGHAI)
    ticket_id = replied_ticket(session_factory, rules, evening)
    assert len(callbacks.schedule_new(session_factory, POLICY, CALENDAR, evening)) == 1
    assert callbacks.schedule_new(session_factory, POLICY, CALENDAR, evening) == []  # a second node, a restart
    morning = datetime(2026, 3, 3, 8, 0, tzinfo=SHANGHAI)
    assert attempts(session_factory, ticket_id) == [(1, "pending", None, morning)]
    # nothing is claimed at night, even when due
    assert callbacks.claim_due(session_factory, "n", policy=POLICY, calendar=CALENDAR,
                               now=morning - timedelta(minutes=1), limit=5) == []


def test_not_reached_retried_as_configured_then_unreachable(session_factory, rules):
    ticket_id = replied_ticket(session_factory, rules, T0)
    callbacks.schedule_new(session_factory, POLICY, CALENDAR, T0)
    first = place(session_factory, rules, T0, AttemptResult("no_answer"))
    assert (first.phone, first.handling_unit, first.result) == ("13800001234", "市水务局", "已修复")
    assert callbacks.claim_due(session_factory, "node-a", policy=POLICY, calendar=CALENDAR,
                               now=T0 + timedelta(hours=2), limit=5) == []  # 2 h after the end, not the start
    place(session_factory, rules, T0 + timedelta(hours=2, minutes=1), AttemptResult("busy"))
    at_eight_pm = T0 + timedelta(hours=4, minutes=2)
    place(session_factory, rules, at_eight_pm, AttemptResult("silence"))
    assert [row[:3] for row in attempts(session_factory, ticket_id)] == [
        (1, "done", "no_answer"), (2, "done", "busy"), (3, "done", "silence")]
    assert [row[3] for row in attempts(session_factory, ticket_id)] == [
        T0, T0 + timedelta(hours=2, minutes=1), T0 + timedelta(hours=4, minutes=2)]
    with session_factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert (ticket.status, ticket.callback_result) == ("callback_done", "unreachable")
        reply = session.query(Reply).filter_by(ticket_id=ticket_id).one()
        assert (reply.delivery_attempts, reply.delivered_at) == (3, None)
        assert [e.action for e in ticket.events][-4:] == [
            "reply_not_delivered", "reply_not_delivered", "reply_not_delivered", "callback"]


def test_a_retry_that_would_fall_in_the_quiet_hours_waits_for_the_morning(session_factory, rules):
    evening = datetime(2026, 3, 2, 19, 30, tzinfo=SHANGHAI)
    ticket_id = replied_ticket(session_factory, rules, evening)
    callbacks.schedule_new(session_factory, POLICY, CALENDAR, evening)
    place(session_factory, rules, evening, AttemptResult("hung_up"))
    assert attempts(session_factory, ticket_id)[1] == (2, "pending", None, datetime(2026, 3, 3, 8, 0, tzinfo=SHANGHAI))


def test_not_satisfied_reopens_for_the_unit_with_a_new_deadline(session_factory, rules):
    ticket_id = replied_ticket(session_factory, rules, T0)
    callbacks.schedule_new(session_factory, POLICY, CALENDAR, T0)
    place(session_factory, rules, T0, AttemptResult("answered", "3", reason_ref="r/reason.wav", reason_text="还是没有水",
                                                    recording_ref="r/call.wav", call_id="c" * 32))
    with session_factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert (ticket.status, ticket.callback_result, ticket.replied_at) == ("dispatched", "不满意", None)
        unit_reply = [d for d in ticket.deadlines if d.kind == "unit_reply" and d.is_open]
        [fresh] = unit_reply
        assert fresh.started_at == T0 + timedelta(minutes=1)
        assert fresh.due_at == datetime(2026, 3, 4, 23, 59, 59, tzinfo=SHANGHAI)  # 2 working days
        [attempt] = callbacks.attempts_of(session, ticket_id)
        assert (attempt.outcome, attempt.satisfaction, attempt.reason_ref, attempt.recording_ref) == (
            "answered", "不满意", "r/reason.wav", "r/call.wav")
        assert [(e.action, e.note) for e in ticket.events][-2:] == [
            ("callback", "callback attempt 1: 不满意; reason: 还是没有水"), ("reopen", "还是没有水")]


@pytest.mark.parametrize("key, result", [("1", "满意"), ("2", "基本满意")])
def test_satisfied_closes_the_ticket_for_the_archive(session_factory, rules, key, result):
    ticket_id = replied_ticket(session_factory, rules, T0)
    callbacks.schedule_new(session_factory, POLICY, CALENDAR, T0)
    place(session_factory, rules, T0, AttemptResult("answered", key))
    with session_factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert (ticket.status, ticket.callback_result) == ("closed", result)
        assert ticket.closed_at == T0 + timedelta(minutes=1)
        assert session.query(Reply).filter_by(ticket_id=ticket_id).one().delivered_at == T0 + timedelta(minutes=1)
        assert not any(d.is_open for d in ticket.deadlines)


def test_two_nodes_racing_claim_each_attempt_once(session_factory, rules):
    ids = [replied_ticket(session_factory, rules, T0, phone=f"1380000{n:04d}") for n in range(6)]
    barrier = threading.Barrier(2)
    made: dict[str, list[int]] = {}
    claimed: dict[str, list[int]] = {}

    def node(name: str) -> None:
        barrier.wait()
        made[name] = callbacks.schedule_new(session_factory, POLICY, CALENDAR, T0)
        barrier.wait()
        claimed[name] = [c.attempt_id for c in callbacks.claim_due(session_factory, name, policy=POLICY,
                                                                   calendar=CALENDAR, now=T0, limit=10)]

    threads = [threading.Thread(target=node, args=(name,)) for name in ("node-a", "node-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(made["node-a"] + made["node-b"]) == sorted(set(made["node-a"] + made["node-b"]))
    assert len(made["node-a"] + made["node-b"]) == len(ids)
    assert sorted(claimed["node-a"] + claimed["node-b"]) == sorted(made["node-a"] + made["node-b"])
    with session_factory() as session:
        assert session.query(CallbackAttempt).count() == len(ids)


def test_a_node_that_died_mid_call_neither_loses_nor_repeats_the_attempt(session_factory, rules):
    ticket_id = replied_ticket(session_factory, rules, T0)
    callbacks.schedule_new(session_factory, POLICY, CALENDAR, T0)
    [call] = callbacks.claim_due(session_factory, "node-a", policy=POLICY, calendar=CALENDAR, now=T0, limit=1)
    # node-a dies; node-b restarts within the lease: nothing to claim, nothing to expire
    assert callbacks.claim_due(session_factory, "node-b", policy=POLICY, calendar=CALENDAR,
                               now=T0 + timedelta(minutes=5), limit=5) == []
    assert callbacks.expire_leases(session_factory, policy=POLICY, calendar=CALENDAR, rules=rules,
                                   now=T0 + timedelta(minutes=5)) == []
    later = T0 + POLICY.lease + timedelta(seconds=1)
    assert callbacks.expire_leases(session_factory, policy=POLICY, calendar=CALENDAR, rules=rules,
                                   now=later) == [call.attempt_id]
    assert callbacks.expire_leases(session_factory, policy=POLICY, calendar=CALENDAR, rules=rules, now=later) == []
    assert [row[:3] for row in attempts(session_factory, ticket_id)] == [(1, "done", "interrupted"),
                                                                        (2, "pending", None)]
    with session_factory.begin() as session, pytest.raises(service.Conflict, match="not held by node-a"):
        callbacks.finish(session, call.attempt_id, AttemptResult("answered", "1"), node="node-a", policy=POLICY,
                         calendar=CALENDAR, rules=rules, now=later)


def test_an_operator_brings_the_callback_forward(session_factory, rules):
    ticket_id = replied_ticket(session_factory, rules, T0)
    callbacks.schedule_new(session_factory, POLICY, CALENDAR, T0)
    place(session_factory, rules, T0, AttemptResult("no_answer"))
    asked = T0 + timedelta(minutes=30)
    with session_factory.begin() as session:
        attempt = callbacks.request_now(session, ticket_id, actor="operator 1", policy=POLICY, calendar=CALENDAR,
                                        now=asked)
        assert (attempt.number, attempt.due_at, attempt.requested_by) == (2, asked, "operator 1")
    [call] = callbacks.claim_due(session_factory, "n", policy=POLICY, calendar=CALENDAR, now=asked, limit=5)
    with session_factory.begin() as session, pytest.raises(service.Conflict, match="in progress"):
        callbacks.request_now(session, ticket_id, actor="operator 1", policy=POLICY, calendar=CALENDAR, now=asked)
    night = datetime(2026, 3, 2, 23, 0, tzinfo=SHANGHAI)
    with session_factory.begin() as session:
        callbacks.finish(session, call.attempt_id, AttemptResult("busy"), node="n", policy=POLICY, calendar=CALENDAR,
                         rules=rules, now=asked)
        attempt = callbacks.request_now(session, ticket_id, actor="operator 1", policy=POLICY, calendar=CALENDAR,
                                        now=night)
        assert (attempt.number, attempt.due_at) == (3, asked + timedelta(hours=2))  # already due: kept
    assert callbacks.claim_due(session_factory, "n", policy=POLICY, calendar=CALENDAR, now=night, limit=5) == []
    morning = datetime(2026, 3, 3, 8, 0, tzinfo=SHANGHAI)  # not at night, even when asked
    assert [c.attempt_number for c in callbacks.claim_due(session_factory, "n", policy=POLICY, calendar=CALENDAR,
                                                          now=morning, limit=5)] == [3]


def test_bad_results_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="^outcome: "):
        AttemptResult("maybe")
    with pytest.raises(ValueError, match="^satisfaction_key: "):
        AttemptResult("answered", "4")
    with pytest.raises(ValueError, match="^satisfaction_key: only an answered call"):
        AttemptResult("busy", "1")


def test_a_citizen_who_calls_in_takes_the_pending_callback_at_any_hour(session_factory, rules):
    ticket_id = replied_ticket(session_factory, rules, T0)
    callbacks.schedule_new(session_factory, POLICY, CALENDAR, T0)
    place(session_factory, rules, T0, AttemptResult("no_answer"))
    night = datetime(2026, 3, 2, 22, 30, tzinfo=SHANGHAI)
    call = callbacks.claim_for_caller(session_factory, "13800001234", "node-a", policy=POLICY, now=night)
    assert (call.attempt_number, call.ticket_id, call.result) == (2, ticket_id, "已修复")
    assert callbacks.claim_for_caller(session_factory, "13800001234", "node-b", policy=POLICY, now=night) is None
    assert callbacks.claim_for_caller(session_factory, "13900000000", "node-a", policy=POLICY, now=night) is None
    with session_factory.begin() as session:  # they pressed 2 (another matter): given back as it was
        assert callbacks.release(session, call.attempt_id, node="node-a") is True
        assert callbacks.release(session, call.attempt_id, node="node-a") is False
    assert attempts(session_factory, ticket_id)[1] == (2, "pending", None, T0 + timedelta(hours=2, minutes=1))
    call = callbacks.claim_for_caller(session_factory, "13800001234", "node-a", policy=POLICY, now=night)
    with session_factory.begin() as session:
        callbacks.finish(session, call.attempt_id, AttemptResult("answered", "2"), node="node-a", policy=POLICY,
                         calendar=CALENDAR, rules=rules, now=night)
    with session_factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert (ticket.status, ticket.callback_result) == ("closed", "基本满意")
        assert [a.called_number for a in callbacks.attempts_of(session, ticket_id)] == ["13800001234", None]


def test_a_reply_an_operator_delivered_otherwise_still_gets_its_callback(session_factory, rules):
    ticket_id = replied_ticket(session_factory, rules, T0)
    callbacks.schedule_new(session_factory, POLICY, CALENDAR, T0)
    with session_factory.begin() as session:
        reply = session.query(Reply).filter_by(ticket_id=ticket_id).one()
        replies.record_delivery(session, reply.id, delivered=True, actor="operator", note="by SMS", now=T0)
    place(session_factory, rules, T0, AttemptResult("no_answer"))
    place(session_factory, rules, T0 + timedelta(hours=3), AttemptResult("answered", "1"))
    with session_factory() as session:
        assert session.get(Ticket, ticket_id).status == "closed"
        reply = session.query(Reply).filter_by(ticket_id=ticket_id).one()
        assert (reply.delivered_at, reply.delivery_note, reply.delivery_attempts) == (T0, "by SMS", 1)
