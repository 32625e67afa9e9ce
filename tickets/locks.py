"""Locks that make one node run each scheduled job when several nodes share the database.

With Redis (several nodes), redis-py's own Lock: a key with an expiry, so a node that dies does not hold
the job forever. Without Redis (the embedded one-node default), an in-process lock per job name.
A job that finds its lock taken simply skips this round: another node is doing it.

The lock only saves duplicate work: the scheduler's claims are conditional UPDATEs in the database, so a
ticket is fired once even when every node runs the job. Hence a Redis that cannot be reached is logged and
the job runs without the lock, instead of reminders and supervision stopping with Redis.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import redis

log = logging.getLogger(__name__)


class JobLock(Protocol):
    def hold(self, name: str) -> AbstractContextManager[bool]: ...


class RedisJobLock:
    def __init__(self, client: redis.Redis, *, ttl_seconds: float = 60.0, prefix: str = "hotline12345:job:"):
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.prefix = prefix
        self._unreachable = False  # log an outage once, and its end once, not every round

    @classmethod
    def from_url(cls, url: str, *, timeout_seconds: float = 2.0, **kwargs: float | str) -> RedisJobLock:
        """A lock on the Redis at `url` with short socket time-outs: a Redis that hangs delays a round by
        seconds, not for ever."""
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_seconds, socket_timeout=timeout_seconds)
        return cls(client, **kwargs)  # type: ignore[arg-type]

    @contextmanager
    def hold(self, name: str) -> Iterator[bool]:
        """Yields True when this node got the lock (and releases it after), False when another node has it.
        When Redis fails, yields True: the job runs on the database claims alone."""
        lock = self.client.lock(self.prefix + name, timeout=self.ttl_seconds, blocking=False)
        try:
            acquired = lock.acquire()
        except redis.exceptions.RedisError as error:
            self._report_outage(name, error)
            yield True
            return
        self._report_recovery()
        try:
            yield acquired
        finally:
            if acquired:
                self._release(lock)

    def _release(self, lock: redis.lock.Lock) -> None:
        try:
            lock.release()
        except redis.exceptions.LockNotOwnedError:
            pass  # the job outlived its TTL; the key already expired
        except redis.exceptions.RedisError as error:  # the key expires by itself after the TTL
            log.warning("could not release the job lock %s: %s", lock.name, error)

    def _report_outage(self, name: str, error: Exception) -> None:
        if not self._unreachable:
            log.warning("Redis job lock unavailable (%s): running %s and later jobs on the database claims "
                        "alone until Redis answers again", error, name)
        self._unreachable = True

    def _report_recovery(self) -> None:
        if self._unreachable:
            log.info("Redis job lock available again")
        self._unreachable = False


class LocalJobLock:
    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, name: str) -> Iterator[bool]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        acquired = lock.acquire(blocking=False)
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()
