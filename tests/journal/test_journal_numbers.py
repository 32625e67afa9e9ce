"""journal.numbers: the node keeps a stock of today's reserved ticket numbers while the database is reachable."""
from __future__ import annotations

import pytest

from journal.numbers import ReservedNumbers
from journal.store import Journal


class CountingSource:
    """A database counter: each reservation continues where the last ended (unit tests of the stock logic;
    the real reservation is tested on SQLite and PostgreSQL in tests/tickets)."""

    def __init__(self, day: str = "2026-12-02", prefix: str = "26336") -> None:
        self.day, self.prefix, self.last, self.requests = day, prefix, 0, []
        self.away = False

    def reserve_numbers(self, count: int) -> tuple[str, list[str]]:
        if self.away:
            raise ConnectionError("database away")
        self.requests.append(count)
        numbers = [f"{self.prefix}{n:05d}" for n in range(self.last + 1, self.last + count + 1)]
        self.last += count
        return self.day, numbers


@pytest.fixture
def journal(tmp_path) -> Journal:
    with Journal(tmp_path / "node.sqlite3") as journal:
        yield journal


def test_top_up_reserves_what_is_missing_of_todays_stock(journal):
    source = CountingSource()
    numbers = ReservedNumbers(journal, source, stock=3, today=lambda: source.day)
    assert numbers.top_up() == 3 and numbers.top_up() == 0
    assert journal.unused_reserved() == ["2633600001", "2633600002", "2633600003"]
    from journal.records import Submitted
    from datetime import datetime, timezone
    journal.submit_with_reserved_number(Submitted("call-1", "1001", {}, datetime.now(timezone.utc)),
                                        source.day, "away")
    assert numbers.top_up() == 1 and source.requests == [3, 1]
    assert journal.unused_reserved(source.day) == ["2633600002", "2633600003", "2633600004"]


def test_a_new_day_gets_its_own_stock_and_keeps_yesterdays_numbers_as_a_fallback(journal):
    source = CountingSource()
    numbers = ReservedNumbers(journal, source, stock=2, today=lambda: source.day)
    numbers.top_up()
    source.day, source.prefix, source.last = "2026-12-03", "26337", 0
    assert numbers.top_up() == 2
    assert journal.unused_reserved("2026-12-03") == ["2633700001", "2633700002"]
    assert len(journal.unused_reserved()) == 4


def test_top_up_while_the_database_is_away_raises_and_keeps_the_stock(journal):
    source = CountingSource()
    numbers = ReservedNumbers(journal, source, stock=2, today=lambda: source.day)
    numbers.top_up()
    source.away = True
    assert numbers.top_up() == 0  # full: the database is not asked
    journal.add_reserved_numbers("2026-12-02", [])
    source.day = "2026-12-03"
    with pytest.raises(ConnectionError):
        numbers.top_up()
    assert len(journal.unused_reserved()) == 2


def test_a_zero_stock_reserves_nothing_and_a_negative_one_is_refused(journal):
    source = CountingSource()
    assert ReservedNumbers(journal, source, stock=0, today=lambda: source.day).top_up() == 0
    assert source.requests == []
    with pytest.raises(ValueError, match="stock: -1"):
        ReservedNumbers(journal, source, stock=-1, today=lambda: source.day)
