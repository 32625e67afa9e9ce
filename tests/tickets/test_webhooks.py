"""The units' webhooks, posted over real HTTP to a server on loopback (never the network): the body, retries
with backoff, failures recorded, the timeout bounding a server that never answers, one post per attempt
with two senders racing; on SQLite and PostgreSQL."""
import json
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tickets import notifications, service
from tickets.lifecycle import Action
from tickets.models import Notification, Ticket
from tickets.scheduler import Scheduler
from tickets.webhooks import WebhookSender, WebhookSettings

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)  # Monday 09:00 in Shanghai


class UnitServer:
    """A unit's webhook endpoint: records each POST and answers with the next scripted status ('hang': waits
    until the test ends without answering)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict]] = []
        self.answers: list[int | str] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.received.append((dict(self.headers), json.loads(body)))
                answer = server.answers.pop(0) if server.answers else 200
                if answer == "hang":
                    server.release.wait(30)
                    return
                self.send_response(answer)
                self.end_headers()
                self.wfile.write(b"unit says no" if answer >= 300 else b"ok")

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/12345/notify"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def unit_server():
    server = UnitServer()
    yield server
    server.close()


def queued(session_factory, rules, url, unit="市水务局"):
    """A ticket at a unit with a webhook, and one supervise notification queued for it at T0; its id."""
    with session_factory.begin() as session:
        unit = service.create_unit(session, {"name": unit, "webhook_url": url})
        ticket, _ = service.create_ticket(session, {"content": "停水了", "phone": "13800000000"}, rules=rules,
                                          actor="op", now=T0)
        service.transition(session, ticket.id, Action.DISPATCH, actor="op", rules=rules, unit_id=unit.id, now=T0)
        return notifications.notify(session, ticket, "supervise", "督办: response overdue", T0, unit_id=unit.id,
                                    deadline_kind="response").id


def state(session_factory, notification_id):
    with session_factory() as session:
        n = session.get(Notification, notification_id)
        return n.webhook_status, n.webhook_attempts, n.webhook_next_at, n.webhook_last_error


def test_the_scheduler_queues_and_the_sender_posts_once(session_factory, rules, unit_server):
    with session_factory.begin() as session:
        unit = service.create_unit(session, {"name": "市水务局", "webhook_url": unit_server.url})
        ticket, _ = service.create_ticket(session, {"content": "停水了", "phone": "13800000000", "level": 2},
                                          rules=rules, actor="op", now=T0)
        service.transition(session, ticket.id, Action.DISPATCH, actor="op", rules=rules, unit_id=unit.id, now=T0)
        ticket_id, number, unit_id = ticket.id, ticket.number, unit.id
    unit_server.answers = ["hang"]  # the unit's server is stuck: the scheduler does not care
    fired_at = T0 + timedelta(hours=25)
    assert [f.kind for f in Scheduler(session_factory).run_once(fired_at).supervised] == ["response"]
    assert unit_server.received == []
    unit_server.answers = []
    sender = WebhookSender(session_factory)
    try:
        [(notification_id, outcome)] = sender.run_once(fired_at).items()
        assert outcome == "sent" and sender.run_once(fired_at + timedelta(hours=1)) == {}
    finally:
        sender.stop()
    [(headers, body)] = unit_server.received
    with session_factory() as session:
        note = session.get(Ticket, ticket_id).events[-1].note
    assert body == {"id": notification_id, "kind": "supervise", "deadline_kind": "response", "ticket_id": ticket_id,
                    "ticket_number": number, "unit_id": unit_id, "message": note,
                    "created_at": "2026-03-03T02:00:00+00:00"}
    assert (headers["Content-Type"], headers["X-Hotline-Notification"]) == (
        "application/json; charset=utf-8", str(notification_id))
    assert state(session_factory, notification_id) == ("sent", 1, None, None)


def test_failures_are_retried_with_backoff_and_recorded(session_factory, rules, unit_server):
    notification_id = queued(session_factory, rules, unit_server.url)
    unit_server.answers = [500, 503]
    sender = WebhookSender(session_factory, WebhookSettings(first_backoff_seconds=30))
    try:
        assert sender.run_once(T0) == {notification_id: "pending"}
        assert state(session_factory, notification_id) == ("pending", 1, T0 + timedelta(seconds=30),
                                                           "HTTP 500: unit says no")
        assert sender.run_once(T0 + timedelta(seconds=29)) == {}  # backing off
        assert sender.run_once(T0 + timedelta(seconds=30)) == {notification_id: "pending"}
        assert state(session_factory, notification_id)[1:3] == (2, T0 + timedelta(seconds=90))  # then 60 s
        assert sender.run_once(T0 + timedelta(seconds=90)) == {notification_id: "sent"}
    finally:
        sender.stop()
    assert len(unit_server.received) == 3
    assert state(session_factory, notification_id) == ("sent", 3, None, "HTTP 503: unit says no")


def test_unreachable_servers_time_out_or_are_refused_and_fail_for_good(session_factory, rules, unit_server):
    hanging = queued(session_factory, rules, unit_server.url)
    with socket.socket() as closed:  # a port nothing listens on any more
        closed.bind(("127.0.0.1", 0))
        refused_url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    refused = queued(session_factory, rules, refused_url, unit="市住建局")
    unit_server.answers = ["hang", "hang"]
    sender = WebhookSender(session_factory, WebhookSettings(timeout_seconds=0.3, max_attempts=2))
    try:
        started = time.monotonic()
        assert sender.run_once(T0) == {hanging: "pending", refused: "pending"}
        assert time.monotonic() - started < 5  # the server would hold the request for 30 s
        assert state(session_factory, hanging)[3].startswith("ReadTimeout")
        assert state(session_factory, refused)[3].startswith("ConnectError")
        assert sender.run_once(T0 + timedelta(minutes=1)) == {hanging: "failed", refused: "failed"}
        assert sender.run_once(T0 + timedelta(days=1)) == {}
    finally:
        sender.stop()
    assert state(session_factory, hanging)[:3] == state(session_factory, refused)[:3] == ("failed", 2, None)


def test_two_senders_racing_post_once(session_factory, rules, unit_server):
    notification_id = queued(session_factory, rules, unit_server.url)
    senders = [WebhookSender(session_factory) for _ in range(3)]
    barrier = threading.Barrier(len(senders))
    outcomes = []

    def run(sender):
        barrier.wait()
        outcomes.append(sender.run_once(T0))

    threads = [threading.Thread(target=run, args=(sender,)) for sender in senders]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for sender in senders:
            sender.stop()
    assert sorted(outcomes, key=len) == [{}, {}, {notification_id: "sent"}]
    assert [headers["X-Hotline-Notification"] for headers, _ in unit_server.received] == [str(notification_id)]
