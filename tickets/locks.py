"""Locks that make one node run each scheduled job when several nodes share the database.

With Redis (several nodes), redis-py's own Lock: a key with an expiry, so a node that dies does not hold
the job forever. Without Redis (the embedded one-node default), an in-process lock per job name.
A job that finds its lock taken simply skips this round: another node is doing it.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import redis


class JobLock(Protocol):
    def hold(self, name: str) -> AbstractContextManager[bool]: ...


class RedisJobLock:
    def __init__(self, client: redis.Redis, *, ttl_seconds: float = 60.0, prefix: str = "hotline12345:job:"):
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.prefix = prefix

    @contextmanager
    def hold(self, name: str) -> Iterator[bool]:
        """Yields True when this node got the lock (and releases it after), False when another node has it."""
        lock = self.client.lock(self.prefix + name, timeout=self.ttl_seconds, blocking=False)
        acquired = lock.acquire()
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    lock.release()
                except redis.exceptions.LockNotOwnedError:
                    pass  # the job outlived its TTL; the key already expired


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
