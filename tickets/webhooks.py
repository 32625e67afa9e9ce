"""Delivery of notifications to the units' webhooks: a worker of its own, so that a slow or dead unit server
never delays the scheduler's 催办/督办 (which only queue the row, tickets.notifications).

Each round takes the notifications whose `webhook_next_at` has come, claims each with a conditional UPDATE
that moves `webhook_next_at` a lease ahead and counts the attempt (two nodes never post the same attempt),
POSTs it outside any transaction with a bounded timeout, then records the outcome: a 2xx answer is `sent`;
anything else (refused connection, timeout, another status) is recorded in `webhook_last_error` and retried
after an exponential backoff until `max_attempts`, then `failed`. A node dying between the POST and the
record lets the lease expire and the notification is posted again: delivery is at least once, and the
`X-Hotline-Notification` header (the notification's id) lets the unit drop a repeat.

A round posts one notification after the other: a unit whose server hangs costs each of its notifications one
timeout per round, and the others wait that long (the work of other units is not lost, only later).

The body (JSON, UTF-8) names the notification, its kind, the ticket's number and the deadline; never the
citizen's identity or the content (a webhook leaves the hotline's network).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tickets.models import Notification, utcnow
from tickets.periodic import Periodic

log = logging.getLogger(__name__)
ERROR_MAX_LENGTH = 500


@dataclass(frozen=True)
class WebhookSettings:
    timeout_seconds: float = 5.0  # connect, write, each read and the pool wait, each at most this
    max_attempts: int = 6
    first_backoff_seconds: float = 30.0  # then doubling: 30 s, 1 min, 2 min, 4 min, 8 min
    lease_seconds: float = 60.0  # longer than an attempt can take
    batch: int = 50


class Failed(Exception):
    """The unit's server did not take the notification (the message says why)."""


def payload(notification: Notification) -> dict[str, object]:
    """What a unit's server receives."""
    return {"id": notification.id, "kind": notification.kind, "deadline_kind": notification.deadline_kind,
            "ticket_id": notification.ticket_id, "ticket_number": notification.ticket.number,
            "unit_id": notification.unit_id, "message": notification.message,
            "created_at": notification.created_at.isoformat()}


Post = Callable[[str, bytes, dict[str, str]], None]


def http_post(client: httpx.Client) -> Post:
    """POST with the client's timeouts; raises Failed unless the answer is 2xx. Redirects are not followed
    (the configured URL is the one trusted)."""
    def post(url: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            with client.stream("POST", url, content=body, headers=headers) as response:
                if 200 <= response.status_code < 300:
                    return
                start = next(response.iter_bytes(200), b"")  # what the server said, not a whole page
        except httpx.HTTPError as error:
            raise Failed(f"{type(error).__name__}: {error}") from error
        raise Failed(f"HTTP {response.status_code}: {start[:200].decode('utf-8', 'replace')}")
    return post


class WebhookSender:
    def __init__(self, session_factory: sessionmaker[Session], settings: WebhookSettings | None = None, *,
                 interval_seconds: float = 10.0):
        self.session_factory = session_factory
        self.settings = settings or WebhookSettings()
        self._client = httpx.Client(timeout=self.settings.timeout_seconds, follow_redirects=False)
        self._post = http_post(self._client)
        self._rounds = Periodic("webhook-sender", self.run_once, interval_seconds)

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=self.settings.first_backoff_seconds * 2 ** (attempts - 1))

    def run_once(self, now: datetime | None = None) -> dict[int, str]:
        """One round; the outcome per notification id (`sent`, `pending` to retry, `failed`)."""
        now = now or utcnow()
        due = (Notification.webhook_status == "pending", Notification.webhook_next_at <= now)
        with self.session_factory() as session:
            ids = session.scalars(select(Notification.id).where(*due).order_by(
                Notification.webhook_next_at, Notification.id).limit(self.settings.batch)).all()
        return {notification_id: outcome for notification_id in ids
                if (outcome := self._deliver(notification_id, due, now)) is not None}

    def _deliver(self, notification_id: int, due: tuple, now: datetime) -> str | None:
        lease = now + timedelta(seconds=self.settings.lease_seconds)
        with self.session_factory.begin() as session:
            claim = (update(Notification).where(Notification.id == notification_id, *due)
                     .values(webhook_next_at=lease, webhook_attempts=Notification.webhook_attempts + 1))
            if session.execute(claim).rowcount != 1:
                return None  # another node's
            notification = session.get(Notification, notification_id, populate_existing=True)
            url, attempts = notification.webhook_url, notification.webhook_attempts
            body = json.dumps(payload(notification), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Hotline-Notification": str(notification_id)}
        try:
            self._post(url, body, headers)
            error = None
        except Failed as failure:
            error = str(failure)[:ERROR_MAX_LENGTH]
        with self.session_factory.begin() as session:
            notification = session.get(Notification, notification_id)
            if error is None:
                notification.webhook_status, notification.webhook_sent_at = "sent", now
                notification.webhook_next_at = None
                return "sent"
            notification.webhook_last_error = error
            if attempts >= self.settings.max_attempts:
                notification.webhook_status, notification.webhook_next_at = "failed", None
                log.warning("webhook of notification %d failed for good after %d attempts: %s",
                            notification_id, attempts, error)
            else:
                notification.webhook_next_at = now + self.backoff(attempts)
            return notification.webhook_status

    def start(self) -> None:
        """Run rounds in a daemon thread until `stop` (server.py's job)."""
        self._rounds.start()

    def stop(self) -> None:
        self._rounds.stop(timeout=self.settings.timeout_seconds * 4 + 5)
        self._client.close()
