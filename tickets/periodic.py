"""A job run in rounds by a daemon thread (the scheduler, the webhook sender, audio retention, the shared
live calls): one place for the loop, so a failed round (the database or Redis away for a while) is logged and
the next round still comes."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, job: Callable[[], Any], interval_seconds: float, *,
                 first_round_at_once: bool = False) -> None:
        self.name = name
        self.job = job
        self.interval_seconds = interval_seconds
        self.first_round_at_once = first_round_at_once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """A round every `interval_seconds`, the first after one interval (or at once), until `stop`."""
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=timeout)

    def _loop(self) -> None:
        if self.first_round_at_once:
            self._round()
        while not self._stop.wait(self.interval_seconds):
            self._round()

    def _round(self) -> None:
        try:
            self.job()
        except Exception:  # a database hiccup must not end the job for good
            log.exception("%s: round failed; retrying in %.0f s", self.name, self.interval_seconds)
