"""The ticket service on the real databases (SQLite and PostgreSQL): creation, idempotency, lifecycle,
optimistic concurrency, level override, the call's drafts, search, units, knowledge base, holidays."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ticket_steps import reply_and_approve
from tickets import service
from tickets.lifecycle import Action, InvalidTransition, Status
from tickets.models import Ticket, TicketEvent

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)


def create(session, rules, content="小区门口路灯坏了", now=MONDAY_10, **fields):
    ticket, created = service.create_ticket(session, {"content": content, **fields}, rules=rules,
                                            actor="op1", now=now)
    assert created
    return ticket


def test_number_is_ten_digits_from_the_shanghai_day_and_a_daily_sequence(session_factory, rules):
    late_evening_utc = datetime(2026, 3, 1, 16, 30, tzinfo=timezone.utc)  # 00:30 on 2 March in Shanghai
    with session_factory.begin() as session:
        first = create(session, rules, now=late_evening_utc)
        second = create(session, rules, now=late_evening_utc)
        next_day = create(session, rules, now=late_evening_utc + timedelta(days=1))
    assert (first.number, second.number, next_day.number) == ("2606100001", "2606100002", "2606200001")


def test_create_proposes_level_and_sets_deadline_and_history(session_factory, rules):
    with session_factory.begin() as session:
        ticket = create(session, rules, content="我家停水两天了", phone="13800000000")
    with session_factory() as session:
        stored = service.get_by_number(session, ticket.number)
        assert stored.level == 2
        assert stored.status == Status.RECEIVED
        assert stored.received_at == MONDAY_10
        assert stored.response_due_at == MONDAY_10 + timedelta(hours=24)
        [response] = stored.deadlines
        assert (response.kind, response.due_at) == ("response", stored.response_due_at)
        assert MONDAY_10 < response.remind_at < stored.response_due_at
        assert stored.statutory_data_missing is False
        [event] = stored.events
        assert (event.actor, event.action, event.from_status, event.to_status) == ("op1", "create", None,
                                                                                   "received")
        assert "level=2" in event.note and "停水" in event.note


def test_given_level_and_type_are_kept(session_factory, rules):
    with session_factory.begin() as session:
        ticket = create(session, rules, content="我家停水两天了", level=4, request_type="投诉", topic="供水")
    assert (ticket.level, ticket.request_type, ticket.topic) == (4, "投诉", "供水")
    assert ticket.response_due_at == MONDAY_10 + timedelta(days=15)


def test_same_idempotency_key_returns_the_original_ticket(session_factory, rules):
    with session_factory.begin() as session:
        first, created = service.create_ticket(session, {"content": "噪音扰民"}, rules=rules, actor="op1",
                                               idempotency_key="req-1")
    with session_factory.begin() as session:
        again, created_again = service.create_ticket(session, {"content": "噪音扰民"}, rules=rules,
                                                     actor="op1", idempotency_key="req-1")
        with pytest.raises(service.KeyReused) as reused:
            service.create_ticket(session, {"content": "different text"}, rules=rules, actor="op1",
                                  idempotency_key="req-1")
        count = session.scalar(select(func.count()).select_from(Ticket))
    assert created and not created_again
    assert (again.id, again.number, again.content) == (first.id, first.number, "噪音扰民")
    assert reused.value.ticket.id == first.id
    assert count == 1


def race(session_factory, rules, first: dict, second: dict, first_commits: bool = True) -> tuple:
    """The create `second` (keyword arguments of create_ticket) made while the create `first` is written and
    not yet committed: what it answered (id, number, created, history actors, deadlines) or raised, and the
    first's (id, number). A create on a unique value another transaction wrote waits for that transaction."""
    outcome: dict = {}
    with session_factory() as holder:
        ticket, _ = service.create_ticket(holder, rules=rules, actor="op1", **first)
        held = (ticket.id, ticket.number)

        def create_second() -> None:
            with session_factory() as session:
                try:
                    ticket, created = service.create_ticket(session, rules=rules, actor="op2", **second)
                    session.commit()
                    outcome["answer"] = (ticket.id, ticket.number, created, [e.actor for e in ticket.events],
                                         len(ticket.deadlines))
                except Exception as error:  # noqa: BLE001 - the test looks at which one
                    outcome["answer"] = error

        racer = threading.Thread(target=create_second)
        racer.start()
        racer.join(0.5)
        assert racer.is_alive(), "the second create did not wait for the first transaction"
        holder.commit() if first_commits else holder.rollback()
        racer.join(10)
    return outcome["answer"], held


@pytest.mark.postgres
def test_a_create_racing_on_a_unique_value_waits_and_answers_for_it(session_factory, rules, engine):
    """Two creates at once with one Idempotency-Key: the later one waits for the first's transaction and
    answers with its ticket; with one call id it is refused; when the first rolls back, the later one
    creates its own ticket with its deadline and history. A reserved number used twice is refused by the
    database. Nothing is written twice."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: there is no race to lose")
    same_key = {"fields": {"content": "噪音扰民"}, "idempotency_key": "k1"}
    answer, held = race(session_factory, rules, same_key, same_key)
    assert answer == (*held, False, ["op1"], 1)
    answer, held = race(session_factory, rules, {"fields": {"content": "停水", "call_id": "c" * 32}},
                        {"fields": {"content": "停电", "call_id": "c" * 32}})
    assert isinstance(answer, service.DuplicateCallId)
    with session_factory() as session, pytest.raises(IntegrityError, match="number"):
        service.create_ticket(session, {"content": "z"}, rules=rules, actor="ivr", number=held[1])
    answer, held = race(session_factory, rules, {"fields": {"content": "路灯"}, "idempotency_key": "k2"},
                        {"fields": {"content": "路灯"}, "idempotency_key": "k2"}, first_commits=False)
    assert answer[0] != held[0] and answer[2:] == (True, ["op2"], 1)
    with session_factory() as session:
        stored = session.execute(select(Ticket.idempotency_key, Ticket.call_id).order_by(Ticket.id)).all()
        events = session.scalar(select(func.count()).select_from(TicketEvent))
    assert stored == [("k1", None), (None, "c" * 32), ("k2", None)] and events == 3


def test_bad_values_name_the_field(session_factory, rules):
    with session_factory() as session:
        with pytest.raises(ValueError, match="^request_type: "):
            create(session, rules, request_type="complaint")
        with pytest.raises(ValueError, match="^level: "):
            create(session, rules, level=5)
        with pytest.raises(ValueError, match="^status: not a ticket field"):
            create(session, rules, status="closed")
        with pytest.raises(ValueError, match="^unit_id: no member unit"):
            create(session, rules, unit_id=999)


def test_full_lifecycle_records_every_step(session_factory, rules):
    with session_factory.begin() as session:
        unit = service.create_unit(session, {"name": "市水务局"})
        ticket = create(session, rules, content="我家停水两天了")
    steps = [(Action.DISPATCH, {"unit_id": unit.id}), (Action.SIGN, {}), (Action.START, {}), (Action.REPLY, {}),
             (Action.CALLBACK, {"callback_result": "满意"}), (Action.CLOSE, {}), (Action.ARCHIVE, {})]
    for offset, (action, extra) in enumerate(steps, start=1):
        with session_factory.begin() as session:
            at = MONDAY_10 + timedelta(hours=offset)
            if action == Action.REPLY:
                reply_and_approve(session, rules, ticket.id, at)
            else:
                service.transition(session, ticket.id, action, actor="op1", rules=rules, note=f"step {offset}",
                                   now=at, **extra)
    with session_factory() as session:
        done = service.get_ticket(session, ticket.id)
        assert done.status == Status.ARCHIVED
        assert (done.unit_id, done.handling_mode, done.callback_result) == (unit.id, "转办", "满意")
        assert done.replied_at == MONDAY_10 + timedelta(hours=4)
        assert done.callback_due_at is not None and done.callback_due_at > done.replied_at
        assert done.closed_at == MONDAY_10 + timedelta(hours=6)
        assert done.version == 2 + len(steps)  # the reply is two steps: submitted, approved
        assert [(e.action, e.from_status, e.to_status) for e in done.events] == [
            ("create", None, "received"), ("dispatch", "received", "dispatched"), ("sign", "dispatched", "signed"),
            ("start", "signed", "in_progress"), ("reply", "in_progress", "reply_review"),
            ("approve_reply", "reply_review", "replied"),
            ("callback", "replied", "callback_done"), ("close", "callback_done", "closed"),
            ("archive", "closed", "archived")]
        assert [e.result for e in done.events if e.action == "callback"] == ["满意"]


def test_invalid_transition_says_what_is_allowed_and_changes_nothing(session_factory, rules):
    with session_factory.begin() as session:
        ticket = create(session, rules)
    with session_factory() as session:
        with pytest.raises(InvalidTransition) as refused:
            service.transition(session, ticket.id, Action.ARCHIVE, actor="op1", rules=rules)
        session.rollback()
        assert Action.DISPATCH in refused.value.allowed and Action.ARCHIVE not in refused.value.allowed
        assert service.get_ticket(session, ticket.id).status == Status.RECEIVED


def test_reject_needs_a_reason_and_dispatch_a_unit(session_factory, rules):
    with session_factory.begin() as session:
        ticket = create(session, rules)
    with session_factory() as session:
        with pytest.raises(ValueError, match="^rejection_reason: "):
            service.transition(session, ticket.id, Action.REJECT, actor="op1", rules=rules, note="不归我们管")
        session.rollback()
        with pytest.raises(ValueError, match="^note: free text goes with the reason 'other' only"):
            service.transition(session, ticket.id, Action.REJECT, actor="op1", rules=rules,
                               rejection_reason="out_of_jurisdiction", note="外省")
        session.rollback()
        with pytest.raises(ValueError, match="^note: the reason 'other' needs the reason in words"):
            service.transition(session, ticket.id, Action.REJECT, actor="op1", rules=rules, rejection_reason="other")
        session.rollback()
        with pytest.raises(ValueError, match="^action: reply goes with the reply itself"):
            service.transition(session, ticket.id, Action.REPLY, actor="op1", rules=rules)
        session.rollback()
        with pytest.raises(ValueError, match="^unit_id: "):
            service.transition(session, ticket.id, Action.DISPATCH, actor="op1", rules=rules)


def test_concurrent_transitions_one_wins_the_other_gets_a_conflict(session_factory, rules):
    with session_factory.begin() as session:
        unit = service.create_unit(session, {"name": "市交通局"})
        ticket = create(session, rules, unit_id=unit.id)
    first, second = session_factory(), session_factory()
    try:
        seen_by_first = service.get_ticket(first, ticket.id)
        seen_by_second = service.get_ticket(second, ticket.id)  # both hold version 1
        assert seen_by_first.version == seen_by_second.version == 1
        service.transition(first, ticket.id, Action.DISPATCH, actor="a", rules=rules)
        first.commit()
        with pytest.raises(service.ConcurrentUpdate):
            service.transition(second, ticket.id, Action.ESCALATE, actor="b", rules=rules)
        second.rollback()
    finally:
        first.close()
        second.close()
    with session_factory() as session:
        stored = service.get_ticket(session, ticket.id)
        assert (stored.status, stored.version) == (Status.DISPATCHED, 2)
        assert [e.actor for e in stored.events] == ["op1", "a"]


def test_expected_version_guards_a_stale_client(session_factory, rules):
    with session_factory.begin() as session:
        ticket = create(session, rules)
    with session_factory() as session:
        with pytest.raises(service.ConcurrentUpdate):
            service.transition(session, ticket.id, Action.ESCALATE, actor="op1", rules=rules, expected_version=7)


def test_override_level_recomputes_deadline_and_is_in_history(session_factory, rules):
    with session_factory.begin() as session:
        ticket = create(session, rules, content="小区门口路灯坏了")
        assert ticket.level == 3
    with session_factory.begin() as session:
        service.override_level(session, ticket.id, 1, actor="op2", rules=rules, note="电线裸露")
    with session_factory() as session:
        stored = service.get_ticket(session, ticket.id)
        assert stored.level == 1
        assert stored.response_due_at == MONDAY_10 + timedelta(hours=2)
        assert (stored.events[-1].action, stored.events[-1].actor, stored.events[-1].note) == (
            "override_level", "op2", "level 3 -> 1: 电线裸露")


def test_history_is_append_only(session_factory, rules):
    with session_factory.begin() as session:
        create(session, rules)
    with session_factory() as session:
        event = session.scalars(select(TicketEvent)).one()
        event.note = "rewritten"
        with pytest.raises(ValueError, match="append-only"):
            session.flush()
        session.rollback()
        session.delete(session.scalars(select(TicketEvent)).one())
        with pytest.raises(ValueError, match="append-only"):
            session.flush()


def test_call_draft_keeps_what_was_said_then_submits_once(session_factory, rules):
    with session_factory.begin() as session:
        service.save_draft(session, "call-7", {"content": "暖气不热"}, rules=rules, caller="13900000000")
    with session_factory.begin() as session:
        service.mark_incomplete(session, "call-7", "caller hung up")
    with session_factory() as session:
        draft = session.scalars(select(Ticket).where(Ticket.call_id == "call-7")).one()
        assert (draft.status, draft.is_draft, draft.incomplete_reason) == (Status.DRAFT, True, "caller hung up")
        assert draft.response_due_at is None and draft.content == "暖气不热"
    with session_factory.begin() as session:
        submitted = service.submit_draft(session, "call-7", {"caller_name": "王女士"}, rules=rules)
    with session_factory.begin() as session:
        again = service.submit_draft(session, "call-7", {}, rules=rules)
        assert again.id == submitted.id
    with session_factory() as session:
        ticket = service.get_ticket(session, submitted.id)
        assert (ticket.status, ticket.is_draft, ticket.caller_name, ticket.level) == (
            Status.RECEIVED, False, "王女士", 2)
        assert ticket.response_due_at == ticket.received_at + timedelta(hours=24)
        assert [e.action for e in ticket.events] == ["create", "incomplete", "edit", "submit"]
        assert [t.id for t in service.open_tickets_for_phone(session, "13900000000")] == [ticket.id]
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_a_call_never_merges_into_a_ticket_its_intake_did_not_open(session_factory, rules):
    """The API may set a ticket's call_id (e.g. an operator linking a ticket to a call): that call's answers
    must not overwrite it, nor may its hang-up flag it."""
    with session_factory.begin() as session:
        linked = create(session, rules, content="路灯不亮", call_id="c0ffee", caller_name="李先生")
    with session_factory.begin() as session:
        with pytest.raises(service.CallIdTaken, match=f"call_id: c0ffee belongs to ticket {linked.number}"):
            service.save_draft(session, "c0ffee", {"content": "暖气不热", "caller_name": "王女士"}, rules=rules)
        with pytest.raises(service.CallIdTaken):
            service.submit_draft(session, "c0ffee", {"content": "暖气不热"}, rules=rules)
        with pytest.raises(service.CallIdTaken):
            service.mark_incomplete(session, "c0ffee", "caller hung up")
    with session_factory() as session:
        ticket = service.get_ticket(session, linked.id)
        assert (ticket.content, ticket.caller_name, ticket.incomplete_reason) == ("路灯不亮", "李先生", None)
        assert [e.action for e in ticket.events] == ["create"]
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_list_filters_sort_paginate_and_search(session_factory, rules):
    with session_factory.begin() as session:
        water = service.create_unit(session, {"name": "市水务局"})
        roads = service.create_unit(session, {"name": "市住建局"})
        for day in range(6):
            create(session, rules, content=f"停水 第{day}天", unit_id=water.id, request_type="求助",
                   now=MONDAY_10 + timedelta(days=day))
        create(session, rules, content="道路坑洼 100%危险", unit_id=roads.id, request_type="投诉",
               phone="13700000001", now=MONDAY_10 + timedelta(days=1))
    with session_factory() as session:
        page, total, _ = service.list_tickets(session, service.TicketQuery(
            unit_id=water.id, sort="created_at", page=2, page_size=4, now=MONDAY_10))
        assert total == 6 and [t.content for t in page] == ["停水 第4天", "停水 第5天"]
        found, total, _ = service.list_tickets(session, service.TicketQuery(text="100%", now=MONDAY_10))
        assert total == 1 and found[0].unit_id == roads.id
        _, percent_only, _ = service.list_tickets(session, service.TicketQuery(text="%", now=MONDAY_10))
        assert percent_only == 1
        by_number, _, _ = service.list_tickets(session, service.TicketQuery(text=found[0].number))
        assert [t.id for t in by_number] == [found[0].id]
        _, same_day, _ = service.list_tickets(session, service.TicketQuery(text=found[0].number[:5]))
        assert same_day == 2  # the day prefix: the roads ticket and the water ticket of day 1
        by_phone, _, _ = service.list_tickets(session, service.TicketQuery(text="13700000001"))
        assert [t.id for t in by_phone] == [found[0].id]
        typed, total, _ = service.list_tickets(session, service.TicketQuery(request_type="投诉", level=3))
        assert total == 1
        window, total, _ = service.list_tickets(session, service.TicketQuery(
            created_from=MONDAY_10 + timedelta(days=1), created_to=MONDAY_10 + timedelta(days=2)))
        assert total == 2
        _, level2, _ = service.list_tickets(session, service.TicketQuery(level=2))
        assert level2 == 6
        late = MONDAY_10 + timedelta(days=3)  # level-2 tickets of days 0-1 are past 24 h; the roads one is not
        overdue, total, _ = service.list_tickets(session, service.TicketQuery(overdue=True, now=late, sort="number"))
        assert [t.content for t in overdue] == ["停水 第0天", "停水 第1天"]
        _, not_overdue, _ = service.list_tickets(session, service.TicketQuery(overdue=False, now=late))
        assert not_overdue == 5
        with pytest.raises(ValueError, match="^sort: "):
            service.list_tickets(session, service.TicketQuery(sort="content"))


def test_units_crud_and_delete_refused_while_referenced(session_factory, rules):
    with session_factory.begin() as session:
        unit = service.create_unit(session, {"name": "市燃气公司", "areas": ["东城区"], "categories": ["燃气"],
                                             "seat_numbers": ["2001", "2002"]})
        create(session, rules, unit_id=unit.id)
        other = service.create_unit(session, {"name": "临时单位"})
    with session_factory.begin() as session:
        service.update_unit(session, unit.id, {"seat_numbers": ["2002", "2001"]})
        assert {u.name for u in service.list_units(session)} == {"市燃气公司", "临时单位"}
        with pytest.raises(ValueError, match="still referred to"):
            service.delete_unit(session, unit.id)
        service.delete_unit(session, other.id)
        with pytest.raises(ValueError, match="^name: a member unit named '市燃气公司' already exists"):
            service.create_unit(session, {"name": "市燃气公司"})
    with session_factory() as session:
        assert service.get_unit(session, unit.id).seat_numbers == ["2002", "2001"]
        with pytest.raises(service.NotFound):
            service.get_unit(session, other.id)


def test_knowledge_search_ranks_by_matched_keywords(session_factory):
    with session_factory.begin() as session:
        service.create_knowledge(session, {"question": "社保卡丢了怎么办", "answer": "携带身份证到社保服务网点补办",
                                           "keywords": ["社保卡", "补办", "丢失"]})
        service.create_knowledge(session, {"question": "身份证补办", "answer": "到户籍派出所办理",
                                           "keywords": ["身份证", "补办"]})
        service.create_knowledge(session, {"question": "사회보장카드 분실", "answer": "신분증을 가지고 방문하세요",
                                           "keywords": ["사회보장카드"], "language": "ko"})
    with session_factory() as session:
        found = service.search_knowledge(session, "我的社保卡丢失了，想补办", language="zh")
        assert [e.question for e in found] == ["社保卡丢了怎么办", "身份证补办"]  # 3 keywords, then 1
        both = service.search_knowledge(session, "补办身份证")
        assert [e.question for e in both] == ["身份证补办", "社保卡丢了怎么办"]
        assert [e.answer for e in service.search_knowledge(session, "사회보장카드 잃어버렸어요", language="ko")] == [
            "신분증을 가지고 방문하세요"]
        assert service.search_knowledge(session, "天气怎么样") == []


def test_holiday_overrides_feed_the_working_day_calendar(session_factory, rules):
    friday = datetime(2026, 3, 6, 9, 0, tzinfo=SHANGHAI)
    with session_factory() as session:
        assert rules.policy(session).working_days(friday, 1).due == datetime(2026, 3, 9, 23, 59, 59,
                                                                             tzinfo=SHANGHAI)
    with session_factory.begin() as session:
        service.set_holiday_override(session, date(2026, 3, 9), False, "city holiday")
        service.set_holiday_override(session, date(2026, 3, 9), False, "city holiday (moved)")
    with session_factory() as session:
        assert [(o.day, o.note) for o in service.list_holiday_overrides(session)] == [
            (date(2026, 3, 9), "city holiday (moved)")]
        assert rules.policy(session).working_days(friday, 1).due == datetime(2026, 3, 10, 23, 59, 59,
                                                                             tzinfo=SHANGHAI)
    with session_factory.begin() as session:
        service.delete_holiday_override(session, date(2026, 3, 9))
        with pytest.raises(service.NotFound):
            service.delete_holiday_override(session, date(2026, 3, 9))
