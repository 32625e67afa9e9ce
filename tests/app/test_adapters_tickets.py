"""DatabaseTickets (the `Tickets` port) on the real databases: a SQLite file and the machine's PostgreSQL.

Each test gets a migrated, empty database (tickets.db.upgrade), built here rather than through
tests/tickets/conftest.py, whose fixtures are not visible from this folder.
"""
from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, make_url, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.adapters.tickets_adapter import DatabaseTickets
from callflows.ports import TicketNotFound
from tests.callflows.callflow_fakes import Harness, HangUp, Quiet, Say, ScriptedCall, write_flow
from tests.conftest import copy_sqlite
from tickets import db, service
from tickets.models import Ticket

POSTGRES_URL = os.environ.get("TICKETS_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
TICKET_NUMBER = re.compile(r"^\d{10}$")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def session_factory(request: pytest.FixtureRequest, tmp_path) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        copy_sqlite(request.getfixturevalue("migrated_sqlite_template"), tmp_path / "tickets.sqlite3")
        url = f"sqlite:///{tmp_path / 'tickets.sqlite3'}"
        engine = db.make_engine(url)
        yield db.make_session_factory(engine)
        engine.dispose()
        return
    server = make_url(POSTGRES_URL)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"adapters_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001 - no server here
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {error}")
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        db.upgrade(url)
        engine = db.make_engine(url)
        yield db.make_session_factory(engine)
        engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def tickets(session_factory: sessionmaker[Session]) -> DatabaseTickets:
    return DatabaseTickets(session_factory, service.TicketRules.default())


def stored(session_factory: sessionmaker[Session], call_id: str) -> Ticket:
    with session_factory() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.call_id == call_id)).one()
        session.expunge(ticket)
        return ticket


def test_korean_water_complaint_is_filed_with_level_2_and_a_24_hour_deadline(tickets, session_factory):
    content = "우리 집에 단수가 됐어요 민원 넣고 싶어요"
    proposal = tickets.propose(content)
    assert (proposal.level, proposal.request_type, proposal.topic) == (2, "投诉", "水电气热")

    tickets.save_draft("call-ko", "13900001111", {"content": content, "language": "ko"})
    tickets.save_draft("call-ko", "13900001111", {"request_type": proposal.request_type, "level": "2"})
    tickets.save_draft("call-ko", "13900001111", {"caller_name": "김철수", "address": "연길시 1번지"})
    info = tickets.submit("call-ko", "13900001111", {"phone": "13700002222"})

    assert TICKET_NUMBER.match(info.number)
    assert (info.status, info.request_type) == ("received", "投诉")
    ticket = stored(session_factory, "call-ko")
    assert (ticket.number, ticket.status, ticket.level, ticket.topic) == (info.number, "received", 2, "水电气热")
    assert (ticket.caller_name, ticket.address, ticket.phone, ticket.content, ticket.language) == (
        "김철수", "연길시 1번지", "13700002222", content, "ko")
    assert info.deadline == ticket.response_due_at
    assert info.deadline - ticket.received_at == timedelta(hours=24)


def test_chinese_fire_is_proposed_level_1_with_a_2_hour_deadline(tickets, session_factory):
    content = "我家楼下着火了，请求帮忙"
    info = tickets.submit("call-zh", "13900003333", {"content": content})

    ticket = stored(session_factory, "call-zh")
    assert (ticket.level, ticket.request_type, ticket.topic, ticket.phone) == (1, "求助", "紧急事件", "13900003333")
    assert info.deadline - ticket.received_at == timedelta(hours=2)


def test_saving_and_submitting_again_for_the_same_call_keeps_one_ticket(tickets, session_factory):
    tickets.save_draft("call-1", "13900001111", {"content": "停水三天了"})
    tickets.save_draft("call-1", "13900001111", {"content": "停水三天了"})
    first = tickets.submit("call-1", "13900001111", {})
    again = tickets.submit("call-1", "13900001111", {})

    assert again.number == first.number and again.status == "received"
    with session_factory() as session:
        assert session.scalar(select(text("count(*)")).select_from(Ticket)) == 1


def test_a_caller_who_hangs_up_halfway_leaves_an_incomplete_draft(tickets, session_factory):
    tickets.save_draft("call-gone", "13900004444", {"content": "路灯坏了"})
    tickets.mark_incomplete("call-gone", "caller hung up at main:ask_name")

    ticket = stored(session_factory, "call-gone")
    assert (ticket.status, ticket.is_draft, ticket.incomplete_reason) == (
        "draft", True, "caller hung up at main:ask_name")
    assert (ticket.content, ticket.phone) == ("路灯坏了", "13900004444")
    assert ticket.response_due_at is None


def test_hang_up_through_the_interpreter_keeps_what_was_said(tickets, session_factory, tmp_path):
    """The real flow runner saving through the adapter: the request is stored before the caller leaves."""
    flow = write_flow(tmp_path, """
        start:
          kind: ask
          prompt: {zh: 请说出您的诉求}
          var: request
          next: name
        name:
          kind: ask
          prompt: {zh: 请说您的姓名}
          var: name
          next: bye
        bye:
          kind: hangup
    """)
    harness = Harness(tickets=tickets)
    result = harness.run(flow, ScriptedCall(Say("家里停水了"), Quiet(3), HangUp(), call_id="call-flow"))

    assert result.outcome == "caller_hung_up"
    ticket = stored(session_factory, "call-flow")
    assert (ticket.status, ticket.content, ticket.phone) == ("draft", "家里停水了", "13900001111")
    assert ticket.incomplete_reason == "caller hung up at main:name"


def test_find_update_and_open_tickets(tickets):
    info = tickets.submit("call-2", "13900005555", {"content": "噪音投诉"})

    assert tickets.find(info.number) == info
    assert tickets.find("0000000000") is None
    updated = tickets.update(info.number, {"address": "延吉市人民路"})
    assert (updated.number, updated.status) == (info.number, "received")
    with pytest.raises(TicketNotFound):
        tickets.update("0000000000", {"address": "x"})
    assert [t.number for t in tickets.open_tickets("13900005555")] == [info.number]
    assert tickets.open_tickets("13900009999") == []


def test_a_level_that_is_not_a_number_is_refused_naming_the_field(tickets):
    with pytest.raises(ValueError, match="level"):
        tickets.save_draft("call-3", "13900001111", {"level": "urgent"})


def test_knowledge_base_answer_in_the_callers_language(tickets, session_factory):
    with session_factory.begin() as session:
        service.create_knowledge(session, {"question": "怎么办理居住证", "answer": "请携带身份证到派出所办理。",
                                           "keywords": ["居住证"], "language": "zh"})
        service.create_knowledge(session, {"question": "거주증은 어떻게 신청해요", "answer": "신분증을 가지고 파출소에 가세요.",
                                           "keywords": ["거주증"], "language": "ko"})

    assert tickets.kb_search("我想问一下居住证怎么办", "zh") == "请携带身份证到派出所办理。"
    assert tickets.kb_search("거주증 신청 방법", "ko") == "신분증을 가지고 파출소에 가세요."
    assert tickets.kb_search("居住证", "ko") is None
    assert tickets.kb_search("天气怎么样", "zh") is None


def test_the_topics_unit_answers_or_takes_the_ticket_with_its_reply_deadline(tickets, session_factory):
    with session_factory.begin() as session:
        service.create_unit(session, {"name": "自来水公司", "categories": ["水电气热"], "seat_numbers": ["8101"]})
    assert tickets.unit_for("水电气热") == "自来水公司" and tickets.unit_for("教育") is None
    first = tickets.submit("call-a", "13900000001", {"content": "停水了", "handling_mode": "转办"})
    second = tickets.submit("call-b", "13900000002", {"content": "又停水了", "handling_mode": "转办"})
    answered = tickets.answer_by_unit(first.number, "自来水公司", "seat 8101")
    assert answered.status == "answered"
    moved = tickets.transfer_to_unit(second.number, "自来水公司", "三方通话: nobody_accepted")
    assert moved.status == "dispatched" and moved.deadline > second.deadline - timedelta(days=7)
    with session_factory() as session:
        ticket = service.get_by_number(session, second.number)
        assert moved.deadline == service.as_utc(
            next(d.due_at for d in ticket.deadlines if d.kind == "unit_reply"))  # 2 working days
        assert ticket.unit.name == "自来水公司" and ticket.handling_mode == "转办"
        assert service.get_by_number(session, first.number).answer == \
            "answered on the spot by 自来水公司 in a three-way call (seat 8101)"
    with pytest.raises(TicketNotFound):
        tickets.transfer_to_unit("0000000000", "自来水公司", "")
