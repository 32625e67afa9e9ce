"""Ticket numbers reserved ahead of time, so a caller hears a real number even while the database is away.

The ticket database hands this node a block of numbers of the day (it advances its own daily counter past
them, so no other node and no later ticket can get them); the journal keeps them. A submit while the
database is away takes one of them in the same commit that records the submit, and the replayer later
creates the ticket with exactly that number. A number never taken stays a gap in the sequence.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from journal.store import Journal

log = logging.getLogger(__name__)


class NumberSource(Protocol):
    """The ticket database, as the reservation needs it."""

    def reserve_numbers(self, count: int) -> tuple[str, list[str]]:
        """Reserve `count` new ticket numbers; returns (day label, numbers). Raises when unreachable."""
        ...


class ReservedNumbers:
    """Keeps `stock` unused numbers of the current day in the journal (`top_up`, run by the node's
    background thread while the database is reachable)."""

    def __init__(self, journal: Journal, source: NumberSource, *, stock: int, today: Callable[[], str]) -> None:
        if stock < 0:
            raise ValueError(f"stock: {stock} is negative")
        self.journal = journal
        self.source = source
        self.stock = stock
        self.today = today

    def top_up(self) -> int:
        """Reserve what is missing of today's stock; returns how many numbers were added."""
        missing = self.stock - len(self.journal.unused_reserved(self.today()))
        if missing <= 0:
            return 0
        day, numbers = self.source.reserve_numbers(missing)
        self.journal.add_reserved_numbers(day, numbers)
        if numbers:
            log.info("reserved ticket numbers %s..%s for use while the database is away",
                     numbers[0], numbers[-1])
        return len(numbers)
