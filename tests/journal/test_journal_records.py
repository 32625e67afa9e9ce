"""journal.records: typed records round-trip through their JSON body, and `fold` gives a call's state."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from journal.records import (DatabaseMissed, DatabaseNumbered, DraftSaved, LeftIncomplete, RecordError, Submitted,
                             Written, decode, encode, fold)

T0 = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)
CALL = "4f1c0a7e2b8d4c6e9a0b1c2d3e4f5a6b"


@pytest.mark.parametrize("record", [
    DraftSaved(CALL, "1001", {"content": "수도 단수", "level": 2, "confidential": False, "phone": None}, T0),
    Submitted(CALL, "1001", {"caller_name": "김철수", "call_time": T0}, T0, "2633600007", "reserved",
              T0 + timedelta(hours=24)),
    LeftIncomplete(CALL, "caller hung up at hotline12345:ask_name", T0),
    DatabaseNumbered(CALL, "2633600001", T0),
    DatabaseMissed(CALL, "OperationalError: database is not accepting connections", T0),
    Written(CALL, "2633600007", "replay", T0),
])
def test_every_record_kind_comes_back_equal(record):
    assert decode(record.kind, CALL, encode(record)) == record


def test_datetimes_in_fields_come_back_as_tz_aware_datetimes():
    shanghai = timezone(timedelta(hours=8))
    record = DraftSaved(CALL, "1001", {"call_time": T0.astimezone(shanghai)}, T0)
    value = decode("draft", CALL, encode(record)).fields["call_time"]
    assert value == T0 and value.utcoffset() == timedelta(hours=8)


def test_a_naive_datetime_or_an_object_is_refused_when_journaling():
    with pytest.raises(ValueError, match="naive datetime"):
        encode(DraftSaved(CALL, "1001", {"call_time": datetime(2026, 12, 2, 9, 0)}, T0))
    with pytest.raises(TypeError, match="object value"):
        encode(DraftSaved(CALL, "1001", {"content": object()}, T0))


@pytest.mark.parametrize("kind, body, message", [
    ("telegram", "{}", "unknown record kind 'telegram'"),
    ("draft", '{"caller": "1001"}', "draft record of call"),
    ("draft", '{"caller": "1001", "fields": {}, "at": {"$datetime": "yesterday"}, "extra": 1}', "draft record"),
    ("incomplete", "not json", "incomplete record of call"),
])
def test_a_record_that_cannot_be_decoded_is_a_record_error(kind, body, message):
    with pytest.raises(RecordError, match=message):
        decode(kind, CALL, body)


def test_fold_merges_answers_in_order_and_keeps_the_told_number():
    call = fold(CALL, [
        DraftSaved(CALL, "1001", {"language": "ko"}, T0),
        DraftSaved(CALL, "1001", {"content": "단수", "recording_ref": "/r/request.wav"}, T0),
        DatabaseMissed(CALL, "away", T0),
        DraftSaved(CALL, "1001", {"content": "단수입니다"}, T0),
        Submitted(CALL, "1001", {"phone": "1001"}, T0 + timedelta(minutes=2), "2633600007", "reserved"),
    ])
    assert call.fields == {"language": "ko", "content": "단수입니다", "recording_ref": "/r/request.wav",
                           "phone": "1001"}
    assert (call.outcome, call.number, call.number_source, call.database_missed) == (
        "submitted", "2633600007", "reserved", True)
    assert (call.started_at, call.ended_at) == (T0, T0 + timedelta(minutes=2)) and call.needs_writing


def test_fold_a_live_draft_number_then_a_hang_up():
    call = fold(CALL, [DraftSaved(CALL, "1002", {"content": "x"}, T0), DatabaseNumbered(CALL, "2633600001", T0),
                       LeftIncomplete(CALL, "caller hung up", T0)])
    assert (call.outcome, call.reason, call.number, call.number_source) == (
        "incomplete", "caller hung up", "2633600001", "database")


def test_a_submitted_call_stays_submitted_when_an_end_record_follows():
    call = fold(CALL, [Submitted(CALL, "1001", {}, T0, "2633600001"), LeftIncomplete(CALL, "node restarted", T0)])
    assert call.outcome == "submitted" and call.reason == ""


def test_written_ends_the_need_to_write():
    call = fold(CALL, [LeftIncomplete(CALL, "hung up", T0), Written(CALL, "", "replay", T0)])
    assert not call.needs_writing and call.written_by == "replay"
    assert not fold(CALL, [DraftSaved(CALL, "1", {}, T0)]).needs_writing  # still in the flow
