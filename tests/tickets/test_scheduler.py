"""Reminders, supervision and due callbacks on the real databases (SQLite and PostgreSQL), with the real
Redis for the multi-node lock: fired once, at the right time, surviving a restart."""
import logging
import socket
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import redis

from ticket_steps import reply_and_approve, walk
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
        service.transition(session, replied_id, Action.DISPATCH, actor="op", rules=rules, unit_id=unit.id,
                           now=T0 + timedelta(hours=1))
        walk(session, rules, replied_id, T0 + timedelta(hours=1), (Action.SIGN, 0, {}), (Action.START, 0, {}),
             (Action.REPLY, 0, {}))
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


def closed_port() -> int:
    """A loopback TCP port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unreachable_redis_lock() -> RedisJobLock:
    return RedisJobLock(redis.Redis.from_url(f"redis://127.0.0.1:{closed_port()}/0", socket_connect_timeout=2))


def race_rounds(schedulers: list[Scheduler], now: datetime) -> list:
    """Every scheduler runs one round at the same moment; their reports."""
    barrier = threading.Barrier(len(schedulers))
    reports = []

    def run(node: Scheduler) -> None:
        barrier.wait(timeout=30)
        reports.append(node.run_once(now))

    threads = [threading.Thread(target=run, args=(node,)) for node in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(reports) == len(schedulers)
    return reports


def test_redis_down_the_scheduler_still_fires_from_the_database_claims(session_factory, rules, caplog):
    """Finding 8.11: with Redis unreachable a round used to raise and fire nothing."""
    _, urgent = create(session_factory, rules, "燃气泄漏", 1)  # due T0 + 2 h
    _, supply = create(session_factory, rules, "停水了", 2)  # reminder at T0 + 19.2 h
    scheduler = Scheduler(session_factory, unreachable_redis_lock())
    with caplog.at_level(logging.WARNING, logger="tickets.locks"):
        report = scheduler.run_once(T0 + timedelta(hours=20))
        assert scheduler.run_once(T0 + timedelta(hours=21)) == type(report)()  # nothing twice
    assert (report.reminded, report.supervised) == ([Fired(supply, "response")], [Fired(urgent, "response")])
    outage = [r for r in caplog.records if "Redis job lock unavailable" in r.getMessage()]
    assert len(outage) == 1  # once per outage, not per job and round


def test_two_schedulers_without_redis_race_and_fire_each_ticket_once(session_factory, rules):
    ticket_id, number = create(session_factory, rules, "燃气泄漏", 1)
    reports = race_rounds([Scheduler(session_factory, unreachable_redis_lock()) for _ in range(2)],
                          T0 + timedelta(hours=3))
    assert [f.number for r in reports for f in r.supervised] == [number]
    events, _ = history(session_factory, ticket_id)
    assert [a for a, _ in events].count("supervise") == 1


@pytest.mark.redis
def test_two_schedulers_on_the_real_redis_race_and_fire_each_ticket_once(session_factory, rules):
    prefix = f"test-sched-race-{uuid.uuid4().hex}:"
    _, urgent = create(session_factory, rules, "燃气泄漏", 1)
    _, supply = create(session_factory, rules, "停水了", 2)
    nodes = [Scheduler(session_factory, RedisJobLock.from_url("redis://127.0.0.1:6379/0", prefix=prefix))
             for _ in range(2)]
    reports = race_rounds(nodes, T0 + timedelta(hours=20))
    assert [f.number for r in reports for f in r.supervised] == [urgent]
    assert [f.number for r in reports for f in r.reminded] == [supply]
    assert list(nodes[0].lock.client.scan_iter(prefix + "*")) == []


class ReplyBeforeTheClaim:
    """A session factory that lets the unit reply to a ticket after the scheduler has read its candidates
    and before it claims them: the moment a reply races a reminder."""

    def __init__(self, session_factory, reply) -> None:
        self.session_factory = session_factory
        self.reply = reply
        self.replied = False

    def __call__(self):
        return self.session_factory()

    def begin(self):
        if not self.replied:
            self.replied = True
            self.reply()
        return self.session_factory.begin()


@pytest.mark.parametrize("hours, job", [(1.7, "reminded"), (3, "supervised")])
def test_a_ticket_replied_after_the_candidate_query_is_not_flagged(session_factory, rules, hours, job):
    """Finding 8.11: the 催办/督办 claim checked only its marker, so a reply in between was still flagged."""
    ticket_id, _ = create(session_factory, rules, "燃气泄漏", 1)  # due T0 + 2 h, reminder at T0 + 96 min
    with session_factory.begin() as session:
        unit = service.create_unit(session, {"name": "燃气公司"})
        for action in (Action.DISPATCH, Action.SIGN, Action.START):
            service.transition(session, ticket_id, action, actor="unit", rules=rules, unit_id=unit.id, now=T0)

    def reply() -> None:
        with session_factory.begin() as session:
            reply_and_approve(session, rules, ticket_id, T0 + timedelta(hours=1))

    racing = ReplyBeforeTheClaim(session_factory, reply)
    report = Scheduler(racing).run_once(T0 + timedelta(hours=hours))
    assert racing.replied and getattr(report, job) == []
    events, ticket = history(session_factory, ticket_id)
    assert [a for a, _ in events][-2:] == ["reply", "approve_reply"]
    assert (ticket.status, ticket.supervised_at, ticket.overdue) == ("replied", None, False)
    assert [(d.kind, d.reminded_at, d.supervised_at) for d in ticket.deadlines if d.kind != "callback"] == [
        ("response", None, None), ("unit_reply", None, None)]
