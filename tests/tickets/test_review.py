"""Call review on the real databases (SQLite and PostgreSQL): the review queue's membership and order,
word corrections (append-only, the latest wins) and the reviewed mark in the history."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tickets import review, service
from tickets.lifecycle import Action
from tickets.models import TranscriptCorrection
from tickets.review import ReviewReason

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)


def draft(session, rules, call_id: str, minutes: int, **fields):
    ticket = service.save_draft(session, call_id, {"content": "", **fields}, rules=rules, caller="1001")
    ticket.created_at = MONDAY_10 + timedelta(minutes=minutes)
    return ticket


def queue(session_factory, **kwargs):
    with session_factory() as session:
        items, total = review.review_queue(session, **kwargs)
        return [(item.ticket.call_id, item.reason) for item in items], total


def test_the_queue_lists_calls_by_need_then_by_waiting_time(session_factory, rules):
    with session_factory.begin() as session:
        # Incomplete drafts come first, oldest first.
        draft(session, rules, "late-draft", 30, content="停水")
        service.mark_incomplete(session, "late-draft", "caller hung up at main:ask_name")
        draft(session, rules, "early-draft", 20, content="停水")
        service.mark_incomplete(session, "early-draft", "caller hung up at main:ask_request")
        # A submitted call the recogniser was unsure of.
        draft(session, rules, "unsure", 10, content="수도 단수")
        service.submit_draft(session, "unsure", {"transcript_confidence": 0.41}, rules=rules)
        # A keypad-only call: the request was recorded, its text is empty.
        draft(session, rules, "keypad", 0, recording_ref="/rec/keypad-request.wav", language="zh")
        service.submit_draft(session, "keypad", {}, rules=rules)
        # Not in the queue: a confident transcript, a typed recording, a draft still in its call.
        draft(session, rules, "confident", 1, content="路灯坏了", transcript_confidence=0.93)
        service.submit_draft(session, "confident", {}, rules=rules)
        draft(session, rules, "typed", 2, content="路灯坏了", recording_ref="/rec/typed.wav",
              name_recording_ref="/rec/typed-name.wav", caller_name="王")
        draft(session, rules, "in-call", 3, content="")
    assert queue(session_factory) == ([
        ("early-draft", ReviewReason.INCOMPLETE_DRAFT), ("late-draft", ReviewReason.INCOMPLETE_DRAFT),
        ("unsure", ReviewReason.LOW_CONFIDENCE), ("keypad", ReviewReason.UNTYPED_RECORDING)], 4)
    assert queue(session_factory, page=2, page_size=3) == ([("keypad", ReviewReason.UNTYPED_RECORDING)], 4)
    assert queue(session_factory, low_confidence=0.4)[1] == 3


def test_an_untyped_name_or_address_recording_also_needs_a_reviewer(session_factory, rules):
    with session_factory.begin() as session:
        draft(session, rules, "name", 0, content="路灯坏了", name_recording_ref="/rec/name.wav")
        draft(session, rules, "address", 1, content="路灯坏了", address_recording_ref="/rec/address.wav",
              address="  ")
        draft(session, rules, "both-typed", 2, content="路灯坏了", name_recording_ref="/rec/n.wav", caller_name="金",
              address_recording_ref="/rec/a.wav", address="延吉")
    assert queue(session_factory)[0] == [("name", ReviewReason.UNTYPED_RECORDING)]  # "  " is typed text


def test_submitting_typing_or_marking_reviewed_takes_a_call_out_of_the_queue(session_factory, rules):
    with session_factory.begin() as session:
        incomplete = draft(session, rules, "incomplete", 0, content="停水")
        service.mark_incomplete(session, "incomplete", "caller hung up")
        keypad = draft(session, rules, "keypad", 1, recording_ref="/rec/k.wav")
        unsure = draft(session, rules, "unsure", 2, content="수도", transcript_confidence=0.2)
    assert queue(session_factory)[1] == 3
    with session_factory.begin() as session:
        service.transition(session, incomplete.id, Action.SUBMIT, actor="reviewer", rules=rules)
        service.update_fields(session, service.get_ticket(session, keypad.id), {"content": "家里停水"},
                              actor="reviewer")
        review.mark_reviewed(session, service.get_ticket(session, unsure.id), actor="reviewer",
                             now=MONDAY_10 + timedelta(hours=1))
    assert queue(session_factory) == ([], 0)
    with session_factory() as session:
        ticket = service.get_ticket(session, unsure.id)
        assert ticket.reviewed_at == MONDAY_10 + timedelta(hours=1)
        assert (ticket.events[-1].actor, ticket.events[-1].action) == ("reviewer", "review")


def test_unit_filter_keeps_to_one_units_calls(session_factory, rules):
    with session_factory.begin() as session:
        unit = service.create_unit(session, {"name": "供水公司"})
        draft(session, rules, "theirs", 0, recording_ref="/rec/1.wav", unit_id=unit.id)
        draft(session, rules, "other", 1, recording_ref="/rec/2.wav")
    assert queue(session_factory, unit_id=unit.id)[0] == [("theirs", ReviewReason.UNTYPED_RECORDING)]


def test_word_corrections_keep_the_original_and_the_latest_wins(session_factory, rules):
    ref = "/rec/call.transcript.json"
    with session_factory.begin() as session:
        ticket = draft(session, rules, "call", 0, content="수도 단수")
        review.correct_word(session, ticket, ref, 3, "단수", "단 수", actor="reviewer-a",
                            now=MONDAY_10)
        review.correct_word(session, ticket, ref, 3, "단수", "  단수입니다 ", actor="reviewer-b",
                            now=MONDAY_10 + timedelta(minutes=5))
        review.correct_word(session, ticket, ref, 0, "음", "", actor="reviewer-a")   # struck out
        review.correct_word(session, ticket, "/rec/other.transcript.json", 3, "x", "y", actor="reviewer-a")
    with session_factory() as session:
        found = review.corrections(session, ticket.id, ref)
        assert sorted(found) == [0, 3]
        assert (found[3].original, found[3].text, found[3].actor) == ("단수", "단수입니다", "reviewer-b")
        assert found[3].at == MONDAY_10 + timedelta(minutes=5)
        assert found[0].text == ""
        assert session.query(TranscriptCorrection).count() == 4  # every correction stays as evidence


def test_corrections_cannot_be_rewritten_and_bad_ones_are_refused(session_factory, rules):
    with session_factory.begin() as session:
        ticket = draft(session, rules, "call", 0, content="x")
        correction = review.correct_word(session, ticket, "/t.json", 1, "a", "b", actor="r")
    with pytest.raises(ValueError, match="word_index"):
        with session_factory.begin() as session:
            review.correct_word(session, service.get_ticket(session, ticket.id), "/t.json", -1, "a", "b", actor="r")
    with pytest.raises(ValueError, match="text"):
        with session_factory.begin() as session:
            review.correct_word(session, service.get_ticket(session, ticket.id), "/t.json", 1, "a", "b" * 201,
                                actor="r")
    with pytest.raises(ValueError, match="append-only"):
        with session_factory.begin() as session:
            session.get(TranscriptCorrection, correction.id).text = "changed"
    with pytest.raises(ValueError, match="append-only"):
        with session_factory.begin() as session:
            session.delete(session.get(TranscriptCorrection, correction.id))
