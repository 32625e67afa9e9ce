"""催办 and 督办 notify someone: a notification per fired deadline for the unit handling the ticket, written
with the scheduler's claim (exactly once, also with schedulers racing), the supervisor's list, repeated 推诿
flagged; on SQLite and PostgreSQL. The HTTP side is in test_notifications_api.py, the webhooks in
test_webhooks.py."""
import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from ticket_steps import reply_and_approve, walk
from tickets import notifications, service
from tickets.lifecycle import Action
from tickets.locks import LocalJobLock
from tickets.models import Notification, Ticket
from tickets.scheduler import Fired, Scheduler

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)  # Monday 09:00 in Shanghai
UNIT_REPLY_DUE = datetime(2026, 3, 4, 15, 59, 59, tzinfo=timezone.utc)  # 2 working days: Wednesday 23:59:59 +08


def dispatched(session_factory, rules, content="路灯坏了", level=3, webhook_url=None):
    """A ticket received at T0 and dispatched at T0 to a new unit; (ticket id, number, unit id)."""
    with session_factory.begin() as session:
        unit = service.create_unit(session, {"name": f"unit {content}", "webhook_url": webhook_url})
        ticket, _ = service.create_ticket(session, {"content": content, "phone": "13800000000", "level": level},
                                          rules=rules, actor="op", now=T0)
        service.transition(session, ticket.id, Action.DISPATCH, actor="op", rules=rules, unit_id=unit.id, now=T0)
        return ticket.id, ticket.number, unit.id


def rows(session_factory, ticket_id):
    with session_factory() as session:
        return [(n.kind, n.deadline_kind, n.unit_id, n.webhook_status, n.created_at) for n in session.scalars(
            select(Notification).where(Notification.ticket_id == ticket_id).order_by(Notification.id))]


def test_each_remind_and_supervise_writes_one_notification_for_the_unit(session_factory, rules):
    ticket_id, number, unit_id = dispatched(session_factory, rules, webhook_url="http://127.0.0.1:9/hook")
    scheduler = Scheduler(session_factory)
    remind_at = datetime(2026, 3, 4, 3, 36, tzinfo=timezone.utc)  # 80 % of the unit's 2 working days
    assert scheduler.run_once(remind_at).reminded == [Fired(number, "unit_reply")]
    assert scheduler.run_once(remind_at + timedelta(minutes=5)).reminded == []
    overdue_at = UNIT_REPLY_DUE + timedelta(seconds=1)
    assert Fired(number, "unit_reply") in scheduler.run_once(overdue_at).supervised
    scheduler.run_once(overdue_at + timedelta(minutes=5))
    assert rows(session_factory, ticket_id) == [
        ("remind", "unit_reply", unit_id, "pending", remind_at),
        ("supervise", "unit_reply", unit_id, "pending", overdue_at)]
    centre_id, _ = create_at_centre(session_factory, rules)
    # a ticket nobody dispatched is the centre's: its notifications have no unit and no webhook
    assert [(kind, unit, hook) for kind, _, unit, hook, _ in rows(session_factory, centre_id)] == [
        ("remind", None, "none"), ("supervise", None, "none")]
    with session_factory() as session:
        supervised = notifications.supervised_tickets(session, service.SETTLED_STATUSES)
        assert [(t.id, t.supervised_at) for t in supervised] == [(ticket_id, overdue_at),
                                                                 (centre_id, T0 + timedelta(days=3))]
        note = session.get(Ticket, ticket_id).events[-1].note
        assert session.scalars(select(Notification.message).where(
            Notification.ticket_id == ticket_id, Notification.kind == "supervise")).one() == note


def create_at_centre(session_factory, rules):
    """A level-2 ticket (24 h) left at the centre; supervised from T0 + 24 h, found at T0 + 3 days."""
    with session_factory.begin() as session:
        ticket, _ = service.create_ticket(session, {"content": "停水了", "phone": "13800000001", "level": 2},
                                          rules=rules, actor="op", now=T0)
        ticket_id, number = ticket.id, ticket.number
    scheduler = Scheduler(session_factory)
    assert scheduler.run_once(T0 + timedelta(hours=20)).reminded == [Fired(number, "response")]
    assert scheduler.run_once(T0 + timedelta(days=3)).supervised == [Fired(number, "response")]
    return ticket_id, number


def test_racing_schedulers_write_each_notification_once(session_factory, rules):
    ticket_id, number, unit_id = dispatched(session_factory, rules, content="燃气泄漏", level=1)
    nodes = [Scheduler(session_factory, LocalJobLock()) for _ in range(4)]
    barrier = threading.Barrier(len(nodes))
    reports = []

    def run(node, when):
        barrier.wait()
        reports.append(node.run_once(when))

    for when in (T0 + timedelta(minutes=100), T0 + timedelta(hours=3)):  # 催办 of response, then 督办
        reports.clear()
        threads = [threading.Thread(target=run, args=(node, when)) for node in nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [f for r in reports for f in r.supervised] == [Fired(number, "response")]
    assert [(kind, deadline, unit) for kind, deadline, unit, _, _ in rows(session_factory, ticket_id)] == [
        ("remind", "response", unit_id), ("supervise", "response", unit_id)]


def test_returned_twice_is_flagged_once_for_the_supervisor(session_factory, rules):
    ticket_id, _, first_unit = dispatched(session_factory, rules)
    with session_factory.begin() as session:
        second_unit = service.create_unit(session, {"name": "市住建局"}).id
    steps = [(Action.RETURN_MISROUTED, {}), (Action.DISPATCH, {"unit_id": second_unit}),
             (Action.RETURN_MISROUTED, {}), (Action.DISPATCH, {"unit_id": first_unit}),
             (Action.RETURN_MISROUTED, {})]
    flagged_at = T0 + timedelta(hours=3)
    for hours, (action, extra) in enumerate(steps, start=1):
        with session_factory.begin() as session:
            service.transition(session, ticket_id, action, actor="unit staff", rules=rules,
                               now=T0 + timedelta(hours=hours), **extra)
    with session_factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket.evasion_flagged_at == flagged_at  # the second return, not the third
        assert [(e.action, e.actor, e.at) for e in ticket.events if e.action == "evasion"] == [
            ("evasion", "supervision", flagged_at)]
        assert [t.id for t in notifications.supervised_tickets(session, service.SETTLED_STATUSES)] == [ticket_id]
    assert [(kind, unit) for kind, _, unit, _, _ in rows(session_factory, ticket_id)] == [("evasion", second_unit)]


def test_overdue_twice_at_a_unit_is_flagged(session_factory, rules):
    ticket_id, number, unit_id = dispatched(session_factory, rules)
    scheduler = Scheduler(session_factory)
    assert scheduler.run_once(UNIT_REPLY_DUE + timedelta(seconds=1)).supervised == [Fired(number, "unit_reply")]
    with session_factory() as session:
        assert session.get(Ticket, ticket_id).evasion_flagged_at is None  # once is not yet 推诿
    late = T0 + timedelta(days=8)
    assert scheduler.run_once(late).supervised == [Fired(number, "response")]
    with session_factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket.evasion_flagged_at == late
        assert [e.action for e in ticket.events][-3:] == ["supervise", "supervise", "evasion"]
    assert [(kind, deadline) for kind, deadline, _, _, _ in rows(session_factory, ticket_id)] == [
        ("supervise", "unit_reply"), ("supervise", "response"), ("evasion", None)]


def test_the_callback_and_a_merely_proposed_unit_are_the_centres(session_factory, rules):
    """回访 is the centre's work, and a unit proposed for a ticket nobody dispatched is not responsible yet:
    their 督办 notify the centre and count as no 推诿 of a unit."""
    ticket_id, number, unit_id = dispatched(session_factory, rules, level=2)
    with session_factory.begin() as session:
        walk(session, rules, ticket_id, T0, (Action.SIGN, 1, {}), (Action.START, 2, {}))
        reply_and_approve(session, rules, ticket_id, T0 + timedelta(hours=3))
        proposed, _ = service.create_ticket(session, {"content": "停水了", "phone": "13800000002", "level": 2,
                                                      "unit_id": unit_id}, rules=rules, actor="op", now=T0)
        proposed_id, proposed_number = proposed.id, proposed.number
    report = Scheduler(session_factory).run_once(T0 + timedelta(days=10))
    assert sorted((f.number, f.kind) for f in report.supervised) == sorted([(number, "callback"),
                                                                             (proposed_number, "response")])
    assert [(kind, deadline, unit) for kind, deadline, unit, _, _ in rows(session_factory, ticket_id)] == [
        ("supervise", "callback", None)]  # the approved reply met the unit's deadlines
    assert [(kind, unit) for kind, _, unit, _, _ in rows(session_factory, proposed_id)] == [("supervise", None)]
    with session_factory() as session:
        assert session.get(Ticket, ticket_id).evasion_flagged_at is None
