"""Ticket numbers reserved ahead of time and tickets created with them later (a journaled call replayed after
a database outage), on SQLite and PostgreSQL."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from tickets import db, service
from tickets.lifecycle import Status
from tickets.models import Ticket, TicketEvent

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)


def test_a_block_is_consecutive_and_later_numbers_continue_after_it(session_factory, rules):
    with session_factory.begin() as session:
        first = service.next_number(session, MONDAY_10)
        block = service.reserve_numbers(session, MONDAY_10, 3)
        after = service.next_number(session, MONDAY_10)
    assert (first, block, after) == ("2606100001", ["2606100002", "2606100003", "2606100004"], "2606100005")
    with session_factory.begin() as session:
        assert service.reserve_numbers(session, MONDAY_10 + timedelta(days=1), 2) == ["2606200001", "2606200002"]
        with pytest.raises(ValueError, match="count: 0"):
            service.reserve_numbers(session, MONDAY_10, 0)


def test_reservations_racing_from_several_nodes_never_share_a_number(session_factory):
    taken: list[list[str]] = []
    errors: list[BaseException] = []

    def node() -> None:
        try:
            for _ in range(5):
                with session_factory.begin() as session:
                    taken.append(service.reserve_numbers(session, MONDAY_10, 4))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=node) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    numbers = [number for block in taken for number in block]
    assert errors == [] and len(numbers) == 80 and len(set(numbers)) == 80
    assert sorted(numbers) == [f"26061{n:05d}" for n in range(1, 81)]


def test_the_daily_counter_refuses_a_block_past_99999(session_factory):
    with session_factory.begin() as session:
        service.reserve_numbers(session, MONDAY_10, 99998)
    with session_factory.begin() as session, pytest.raises(OverflowError, match="more than 99999"):
        service.reserve_numbers(session, MONDAY_10, 2)


def test_a_replayed_call_gets_the_reserved_number_and_the_times_of_the_call(session_factory, rules):
    with session_factory.begin() as session:
        [number] = service.reserve_numbers(session, MONDAY_10, 1)
    said = MONDAY_10 + timedelta(minutes=1)
    submitted = MONDAY_10 + timedelta(minutes=3)
    replayed = MONDAY_10 + timedelta(hours=5)
    with session_factory.begin() as session:
        service.save_draft(session, "call-1", {"content": "我家停水两天了", "language": "zh"}, rules=rules,
                           caller="13800000000", number=number, now=said)
        ticket = service.submit_draft(session, "call-1", {"caller_name": "王芳"}, rules=rules, number=number,
                                      now=submitted)
        assert replayed > submitted  # written hours later, dated as the call
    with session_factory() as session:
        stored = service.get_by_number(session, number)
        assert (stored.id, stored.status, stored.caller_name, stored.phone) == (ticket.id, Status.RECEIVED, "王芳",
                                                                                "13800000000")
        assert (stored.created_at, stored.received_at) == (said, submitted)
        assert stored.response_due_at == submitted + timedelta(hours=24)  # level 2 (停水) from the submit
        assert {event.at for event in stored.events} == {said, submitted}


def test_a_number_that_is_not_ten_digits_or_already_taken_is_refused(session_factory, rules):
    with session_factory.begin() as session:
        taken = service.next_number(session, MONDAY_10)
        service.create_ticket(session, {"content": "a"}, rules=rules, actor="ivr", number=taken)
    with session_factory.begin() as session, pytest.raises(ValueError, match="number: '26061' is not a 10-digit"):
        service.create_ticket(session, {"content": "b"}, rules=rules, actor="ivr", number="26061")
    with session_factory.begin() as session, pytest.raises(IntegrityError):
        service.create_ticket(session, {"content": "c"}, rules=rules, actor="ivr", number=taken)


def test_a_draft_committed_unseen_takes_the_number_the_caller_was_told(session_factory, rules):
    with session_factory.begin() as session:
        draft = service.save_draft(session, "call-2", {"content": "路灯不亮"}, rules=rules, caller="1001")
        unseen = draft.number
        [told] = service.reserve_numbers(session, MONDAY_10, 1)
    for _ in range(2):  # the replay repeated: the second time changes nothing
        with session_factory.begin() as session:
            service.submit_draft(session, "call-2", {"address": "建设街5号"}, rules=rules, number=told)
    with session_factory() as session:
        stored = session.scalar(select(Ticket).where(Ticket.call_id == "call-2"))
        assert (stored.number, stored.status, stored.address) == (told, Status.RECEIVED, "建设街5号")
        renumbered = [event.note for event in stored.events if event.action == "renumber"]
        assert renumbered == [f"number {unseen} -> {told} (the number the caller was told)"]
        assert session.scalar(select(func.count()).select_from(TicketEvent)) == 4  # create, renumber, edit, submit


def test_the_deadline_told_while_the_database_is_away_is_the_one_the_replay_stores(session_factory, rules):
    received = MONDAY_10 + timedelta(minutes=3)
    fields = {"content": "我家停水两天了", "caller_name": "王芳"}
    told = service.response_deadline(fields, received, rules=rules)
    assert told == received + timedelta(hours=24)  # 停水: level 2, proposed from the content
    assert service.response_deadline({**fields, "level": 1}, received, rules=rules) == received + timedelta(hours=2)
    with session_factory.begin() as session:
        ticket = service.submit_draft(session, "call-3", fields, rules=rules, now=received)
        assert ticket.response_due_at == told


def test_a_creation_takes_its_number_without_waiting_for_another_creators_transaction(engine, session_factory,
                                                                                     rules):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: the second would wait for the first's commit")
    checkouts: list[object] = []
    event.listen(db.counter_engine(engine).pool, "checkout", lambda *_: checkouts.append(1))
    with session_factory() as first:
        slow, _ = service.create_ticket(first, {"content": "路灯不亮"}, rules=rules, actor="op1", now=MONDAY_10)
        with session_factory.begin() as second:  # would wait on the counter row if `first` held it
            quick, _ = service.create_ticket(second, {"content": "噪音扰民"}, rules=rules, actor="op2", now=MONDAY_10)
        first.commit()
    assert (slow.number, quick.number, len(checkouts)) == ("2606100001", "2606100002", 2)
    with session_factory.begin() as session:  # holds the row it bumped: the next bump stays in its transaction
        [reserved] = service.reserve_numbers(session, MONDAY_10, 1)
        ticket, _ = service.create_ticket(session, {"content": "占道经营"}, rules=rules, actor="op1", now=MONDAY_10)
    assert (reserved, ticket.number, len(checkouts)) == ("2606100003", "2606100004", 2)
