"""Reminders, supervision and due callbacks on the real databases (SQLite and PostgreSQL), with the real
Redis for the multi-node lock: fired once, at the right time, surviving a restart."""
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import redis

from tickets import service
from tickets.classify import Classifier
from tickets.deadlines import DeadlineSettings
from tickets.lifecycle import Action
from tickets.locks import LocalJobLock, RedisJobLock
from tickets.models import Ticket
from tickets.scheduler import Fired, RoundReport, Scheduler

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)  # Monday 09:00 in Shanghai


@pytest.fixture
def rules():
    return service.TicketRules(Classifier.from_file(), DeadlineSettings())


def create(session_factory, rules, content, level):
    with session_factory.begin() as session:
        ticket, _ = service.create_ticket(session, {"content": content, "phone": "13800000000", "level": level},
                                          rules=rules, actor="op", now=T0)
        return ticket.id, ticket.number


def history(session_factory, ticket_id):
    with session_factory() as session:
        ticket = session.get(Ticket, ticket_id)
        return [(e.action, e.actor) for e in ticket.events], ticket


def test_remind_then_supervise_each_once(session_factory, rules):
    ticket_id, number = create(session_factory, rules, "楼道着火了", 1)  # level 1: due T0 + 2 h
    scheduler = Scheduler(session_factory)
    assert scheduler.run_once(T0 + timedelta(minutes=90)).reminded == []  # 75 % of 2 h: not yet
    round1 = scheduler.run_once(T0 + timedelta(minutes=97))  # past 80 % (96 min)
    assert (round1.reminded, round1.supervised) == ([Fired(number, "response")], [])
    assert scheduler.run_once(T0 + timedelta(minutes=100)).reminded == []  # nothing fires twice
    round3 = scheduler.run_once(T0 + timedelta(hours=2, seconds=1))
    assert (round3.reminded, round3.supervised) == ([], [Fired(number, "response")])
    events, ticket = history(session_factory, ticket_id)
    assert events == [("create", "op"), ("remind", "scheduler"), ("supervise", "scheduler")]
    [response] = ticket.deadlines
    assert response.reminded_at == T0 + timedelta(minutes=97)
    assert ticket.overdue is True and ticket.supervised_at == response.supervised_at == T0 + timedelta(hours=2, seconds=1)
    assert Scheduler(session_factory).run_once(T0 + timedelta(days=1)) == RoundReport()  # a "restart"


def test_overdue_ticket_found_late_is_supervised_not_reminded(session_factory, rules):
    _, number = create(session_factory, rules, "停水了", 2)
    report = Scheduler(session_factory).run_once(T0 + timedelta(days=3))
    assert (report.reminded, report.supervised) == ([], [Fired(number, "response")])


def test_settled_tickets_are_left_alone_and_the_callback_is_reminded_then_supervised(session_factory, rules):
    answered_id, _ = create(session_factory, rules, "请问护照怎么办理", 3)
    replied_id, replied_number = create(session_factory, rules, "路灯坏了", 3)
    with session_factory.begin() as session:
        service.transition(session, answered_id, Action.ANSWER_DIRECTLY, actor="op", rules=rules, now=T0)
        unit = service.create_unit(session, {"name": "市政局"})
        for action in (Action.DISPATCH, Action.SIGN, Action.START, Action.REPLY):
            service.transition(session, replied_id, action, actor="unit", rules=rules, unit_id=unit.id,
                               now=T0 + timedelta(hours=1))
    scheduler = Scheduler(session_factory)
    # callback rule: 2 working days after the reply on Monday 10:00 -> due Wednesday 23:59:59 Shanghai,
    # reminded at 80 % of those 61:59:59 (Wednesday 11:35:59 Shanghai)
    assert scheduler.run_once(datetime(2026, 3, 4, 3, 35, tzinfo=timezone.utc)) == RoundReport()
    early = scheduler.run_once(datetime(2026, 3, 4, 3, 36, tzinfo=timezone.utc))
    assert (early.reminded, early.supervised) == ([Fired(replied_number, "callback")], [])
    assert scheduler.run_once(datetime(2026, 3, 4, 15, 59, tzinfo=timezone.utc)).supervised == []
    late = scheduler.run_once(datetime(2026, 3, 4, 16, 0, tzinfo=timezone.utc))
    assert (late.reminded, late.supervised) == ([], [Fired(replied_number, "callback")])
    assert scheduler.run_once(datetime(2026, 3, 5, 16, 0, tzinfo=timezone.utc)) == RoundReport()
    events, _ = history(session_factory, answered_id)
    assert [action for action, _ in events] == ["create", "answer_directly"]


def test_two_nodes_race_on_one_ticket_fire_once(session_factory, rules):
    """Without a shared lock (each node its own LocalJobLock) the conditional claim still fires once."""
    ticket_id, number = create(session_factory, rules, "燃气泄漏", 1)
    nodes = [Scheduler(session_factory, LocalJobLock()) for _ in range(4)]
    barrier = threading.Barrier(len(nodes))
    reports = []

    def run(node):
        barrier.wait()
        reports.append(node.run_once(T0 + timedelta(hours=3)))

    threads = [threading.Thread(target=run, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [f for r in reports for f in r.supervised] == [Fired(number, "response")]
    events, _ = history(session_factory, ticket_id)
    assert [a for a, _ in events].count("supervise") == 1


@pytest.mark.redis
def test_redis_lock_lets_one_node_run_a_job():
    client = redis.Redis(host="127.0.0.1", port=6379)
    prefix = f"test-{datetime.now().timestamp()}:"
    first, second = RedisJobLock(client, prefix=prefix), RedisJobLock(client, prefix=prefix)
    with first.hold("remind") as got_first:
        with second.hold("remind") as got_second:
            assert (got_first, got_second) == (True, False)
        assert client.exists(prefix + "remind") == 1
    assert client.exists(prefix + "remind") == 0  # released
    with second.hold("remind") as got_again:
        assert got_again is True


@pytest.mark.redis
def test_redis_lock_expires_when_its_node_dies():
    client = redis.Redis(host="127.0.0.1", port=6379)
    prefix = f"test-ttl-{datetime.now().timestamp()}:"
    dead_node = client.lock(prefix + "supervise", timeout=0.2)
    assert dead_node.acquire(blocking=False)  # never released
    threading.Event().wait(0.4)
    with RedisJobLock(client, prefix=prefix).hold("supervise") as got:
        assert got is True


def test_local_lock_excludes_within_a_node():
    lock = LocalJobLock()
    with lock.hold("remind") as outer:
        with lock.hold("remind") as inner:
            assert (outer, inner) == (True, False)
        with lock.hold("supervise") as other:
            assert other is True


@pytest.mark.redis
def test_nodes_sharing_the_redis_lock_skip_a_job_another_node_holds(session_factory, rules):
    """Real Redis + real database: while node A holds the supervise job, node B's round supervises nothing
    (but still runs the other jobs); once A lets go, B's next round does it, exactly once."""
    client = redis.Redis(host="127.0.0.1", port=6379)
    prefix = f"test-sched-{uuid.uuid4().hex}:"
    _, number = create(session_factory, rules, "燃气泄漏", 1)  # due T0 + 2 h
    _, supply_number = create(session_factory, rules, "停水了", 2)  # due T0 + 24 h, reminder at T0 + 19.2 h
    node_a = RedisJobLock(client, prefix=prefix)
    node_b = Scheduler(session_factory, RedisJobLock(redis.Redis(host="127.0.0.1", port=6379), prefix=prefix))
    with node_a.hold("supervise") as a_runs:
        assert a_runs is True
        during = node_b.run_once(T0 + timedelta(hours=20))
    assert (during.supervised, during.reminded) == ([], [Fired(supply_number, "response")])
    after = node_b.run_once(T0 + timedelta(hours=20))
    assert (after.supervised, after.reminded) == ([Fired(number, "response")], [])
    assert node_b.run_once(T0 + timedelta(hours=21)) == RoundReport()
    assert list(client.scan_iter(prefix + "*")) == []  # every job released its lock
