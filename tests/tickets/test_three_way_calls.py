"""tickets.three_way_calls on SQLite and PostgreSQL: the unit for a topic, the directory's dialable numbers,
a ticket answered on the spot by the unit (答复, unit, seat, time) or transferred to it with the unit's
2-working-day reply deadline on the statutory calendar, and the stored record of a three-way call."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from tickets import service, three_way_calls
from tickets.lifecycle import InvalidTransition

SHANGHAI = ZoneInfo("Asia/Shanghai")


def make_units(session) -> tuple:
    water = service.create_unit(session, {"name": "自来水公司", "categories": ["水电气热"],
                                          "seat_numbers": ["1002", "1003"], "seat_languages": {"1003": "ko"}})
    power = service.create_unit(session, {"name": "供电局", "categories": ["水电气热", "紧急事件"],
                                          "seat_numbers": ["1004"]})
    service.create_unit(session, {"name": "城管局", "categories": ["市容"]})
    return water, power


def new_ticket(session, rules, at: datetime):
    ticket, _ = service.create_ticket(session, {"content": "停水三天了", "phone": "13800000000"}, rules=rules,
                                      actor="ivr", now=at)
    return ticket


def test_topic_to_unit_and_the_dialable_numbers(session_factory):
    with session_factory.begin() as session:
        make_units(session)
        assert three_way_calls.unit_for_topic(session, "水电气热").name == "自来水公司"  # the first one listing it
        assert three_way_calls.unit_for_topic(session, "紧急事件").name == "供电局"
        assert three_way_calls.unit_for_topic(session, "教育") is None
        assert three_way_calls.unit_for_topic(session, None) is None
        assert three_way_calls.directory_numbers(session) == {"1002", "1003", "1004"}
        assert three_way_calls.unit_by_name(session, "供电局").seat_numbers == ["1004"]
        assert three_way_calls.unit_by_name(session, "自来水公司").seat_languages == {"1003": "ko"}
        with pytest.raises(service.NotFound, match="no member unit named '税务局'"):
            three_way_calls.unit_by_name(session, "税务局")


def test_answered_on_the_spot_by_the_unit(session_factory, rules):
    at = datetime(2026, 9, 29, 10, 0, tzinfo=SHANGHAI)
    with session_factory.begin() as session:
        water, _ = make_units(session)
        ticket = new_ticket(session, rules, at)
        three_way_calls.answer_on_the_spot(session, ticket, water, note="seat 1003", actor="ivr", rules=rules,
                                           now=at.replace(minute=7))
    with session_factory() as session:
        ticket = service.get_by_number(session, ticket.number)
        assert (ticket.status, ticket.handling_mode, ticket.unit.name) == ("answered", "答复", "自来水公司")
        assert ticket.closed_at == datetime(2026, 9, 29, 2, 7, tzinfo=timezone.utc)
        last = ticket.events[-1]
        assert (last.action, last.actor) == ("answer_directly", "ivr")
        assert last.note == "answered on the spot by 自来水公司 in a three-way call (seat 1003)"
        assert ticket.answer == last.note


def test_transferred_to_the_unit_with_its_reply_deadline_across_national_day(session_factory, rules):
    at = datetime(2026, 9, 30, 17, 0, tzinfo=SHANGHAI)  # the eve of the golden week
    with session_factory.begin() as session:
        water, _ = make_units(session)
        ticket = new_ticket(session, rules, at)
        due = three_way_calls.transfer_to_unit(session, ticket, water, actor="ivr", rules=rules,
                                               note="nobody took the three-way call", now=at)
    assert due == datetime(2026, 10, 9, 23, 59, 59, tzinfo=SHANGHAI)  # 2 working days: 8 and 9 October
    with session_factory() as session:
        ticket = service.get_by_number(session, ticket.number)
        assert (ticket.status, ticket.handling_mode, ticket.unit.name) == ("dispatched", "转办", "自来水公司")
        assert ticket.events[-1].note == "nobody took the three-way call"
        with pytest.raises(InvalidTransition):  # already transferred: cannot be answered at intake any more
            three_way_calls.answer_on_the_spot(session, ticket, ticket.unit, note="", actor="ivr", rules=rules)


def test_a_three_way_call_is_stored_and_noted_in_the_tickets_history(session_factory, rules):
    at = datetime(2026, 9, 29, 10, 0, tzinfo=SHANGHAI)
    legs = [{"leg_id": "citizen", "role": "citizen", "number": "13800000000", "state": "left"},
            {"leg_id": "seat", "role": "seat", "number": "1003", "state": "left", "reason": "hung_up"}]
    with session_factory.begin() as session:
        make_units(session)
        ticket = new_ticket(session, rules, at)
        three_way_calls.record_call(
            session, conference_id="c" * 32, ticket_number=ticket.number, unit_name="自来水公司",
            started_by="flow", started_at=at, ended_at=at.replace(minute=5), outcome="joined",
            seat_number="1003", legs=legs, events=[{"kind": "joined", "leg_id": "seat"}],
            recordings={"mixed": "/r/mixed.wav", "seat": "/r/seat.wav"}, actor="ivr")
        three_way_calls.record_call(
            session, conference_id="d" * 32, ticket_number=None, unit_name="不存在的单位", started_by="ann",
            started_at=at, ended_at=None, outcome="no_seats", seat_number=None, legs=[], events=[],
            recordings={}, actor="ann")
    with session_factory.begin() as session:
        three_way_calls.link_transcript(session, "c" * 32, "/r/transcript.json")
    with session_factory() as session:
        call = three_way_calls.get_call(session, "c" * 32)
        assert (call.unit_name, call.outcome, call.seat_number, call.transcript_ref) == \
            ("自来水公司", "joined", "1003", "/r/transcript.json")
        assert call.legs == legs and call.recordings["seat"] == "/r/seat.wav"
        assert call.started_at == at and call.unit_id is not None
        ticket = service.get_by_number(session, ticket.number)
        assert [c.id for c in three_way_calls.calls_of_ticket(session, ticket.id)] == ["c" * 32]
        assert ticket.events[-1].action == "three_way"
        assert ticket.events[-1].note == f"three-way call {'c' * 32} with 自来水公司, seat 1003: joined"
        assert three_way_calls.get_call(session, "d" * 32).unit_id is None
        assert three_way_calls.is_stored(session, "d" * 32) and not three_way_calls.is_stored(session, "e" * 32)
        with pytest.raises(service.NotFound):
            three_way_calls.get_call(session, "e" * 32)
