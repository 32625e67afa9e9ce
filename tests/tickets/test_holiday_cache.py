"""The holiday overrides kept for the deadline rules (tickets.holiday_cache), on SQLite and PostgreSQL: a change
committed in this process is seen at once, its own transaction sees it before the commit, a rollback keeps the
copy, and a change written by another node is seen once the copy is max_age_seconds old."""
from __future__ import annotations

from datetime import date

from sqlalchemy import insert

from tickets import service
from tickets.holiday_cache import HolidayOverridesCache
from tickets.models import HolidayOverride

CITY_HOLIDAY = date(2026, 3, 9)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting_cache(clock: Clock) -> tuple[HolidayOverridesCache, list[dict[date, bool]]]:
    loads: list[dict[date, bool]] = []

    def load(session):
        loads.append(service.load_holiday_overrides(session))
        return loads[-1]
    return HolidayOverridesCache(load, max_age_seconds=10, clock=clock), loads


def test_another_nodes_change_is_seen_once_the_copy_is_ten_seconds_old(engine, session_factory):
    clock = Clock()
    cache, loads = counting_cache(clock)
    with session_factory() as session:
        assert dict(cache.get(session)) == {}
    with engine.begin() as connection:  # another node: no commit of this process to learn from
        connection.execute(insert(HolidayOverride), [{"day": CITY_HOLIDAY, "is_working_day": False, "note": ""}])
    clock.now += 9.9
    with session_factory() as session:
        assert dict(cache.get(session)) == {}
    clock.now += 0.1
    with session_factory() as session:
        assert dict(cache.get(session)) == {CITY_HOLIDAY: False}
        assert dict(cache.get(session)) == {CITY_HOLIDAY: False}
    assert len(loads) == 2


def test_a_change_is_its_own_transactions_at_once_everyones_at_its_commit_and_nobodys_after_a_rollback(
        session_factory):
    clock = Clock()
    cache, loads = counting_cache(clock)
    with session_factory() as session:
        assert dict(cache.get(session)) == {}
    with session_factory() as writer:
        writer.add(HolidayOverride(day=CITY_HOLIDAY, is_working_day=False, note="city holiday"))
        writer.flush()
        cache.changed(writer)
        assert dict(cache.get(writer)) == {CITY_HOLIDAY: False}  # its own, not yet committed
        writer.rollback()
        assert dict(cache.get(writer)) == {}
    assert len(loads) == 2  # the rolled-back change left the kept copy valid
    with session_factory() as writer:
        writer.add(HolidayOverride(day=CITY_HOLIDAY, is_working_day=True, note="make-up working day"))
        writer.flush()
        cache.changed(writer)
        with session_factory() as reader:
            assert dict(cache.get(reader)) == {}  # not committed: others keep the copy
        writer.commit()
    with session_factory() as reader:
        assert dict(cache.get(reader)) == {CITY_HOLIDAY: True}
    assert len(loads) == 3
