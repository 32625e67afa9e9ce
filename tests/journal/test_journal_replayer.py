"""journal.replayer: the logic of writing journaled calls exactly once, against a recording fake sink.

The real sink over the ticket service, on SQLite and PostgreSQL, is tested in tests/app (the database's
unique call id is what makes a repeated write add nothing; here the fake only counts)."""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

import pytest

from journal.records import DraftSaved, JournaledCall, LeftIncomplete, Submitted
from journal.replayer import BackgroundTasks, Replayer
from journal.store import Journal

T0 = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)


class FakeSink:
    def __init__(self) -> None:
        self.calls: list[JournaledCall] = []
        self.tickets: dict[str, str] = {}
        self.links: dict[str, dict] = {}
        self.away = False

    def write_call(self, call: JournaledCall) -> str:
        if self.away:
            raise ConnectionError("database away")
        self.calls.append(call)
        if "content" not in call.fields:
            return ""
        self.tickets.setdefault(call.call_id, call.number or f"26336{len(self.tickets) + 1:05d}")
        return self.tickets[call.call_id]

    def available(self) -> bool:
        return not self.away

    def attach(self, call_id: str, fields: dict, actor: str) -> bool:
        if self.away:
            raise ConnectionError("database away")
        if call_id not in self.tickets:
            return False
        self.links.setdefault(call_id, {}).update(fields)
        return True


@pytest.fixture
def journal(tmp_path) -> Journal:
    with Journal(tmp_path / "node.sqlite3") as journal:
        yield journal


def ended_calls(journal: Journal) -> None:
    journal.append(DraftSaved("submitted", "1001", {"content": "단수"}, T0),
                   Submitted("submitted", "1001", {"caller_name": "김철수"}, T0, "2633600041", "reserved"))
    journal.append(DraftSaved("language-only", "1002", {"language": "ko"}, T0),
                   LeftIncomplete("language-only", "transferred to 110", T0))
    journal.append(DraftSaved("in-flow", "1003", {"content": "아직 통화 중"}, T0))


def test_a_round_writes_each_ended_call_once_with_its_told_number(journal):
    ended_calls(journal)
    sink = FakeSink()
    report = Replayer(journal, sink).replay_once()
    assert report.written == [("submitted", "2633600041")] and report.nothing_to_write == ["language-only"]
    assert report.error == "" and "2633600041 (call submitted)" in str(report)
    written = {call.call_id: call for call in sink.calls}
    assert written["submitted"].fields == {"content": "단수", "caller_name": "김철수"}
    assert journal.call("submitted").written_by == "replay" and journal.call("in-flow").written_at is None
    second = Replayer(journal, sink).replay_once()
    assert (second.written, second.nothing_to_write, len(sink.calls)) == ([], [], 2)


def test_the_database_away_stops_the_round_and_keeps_every_call_for_the_next(journal):
    ended_calls(journal)
    sink = FakeSink()
    sink.away = True
    report = Replayer(journal, sink).replay_once()
    assert report.written == [] and report.error == "ConnectionError: database away"
    assert {call.call_id for call in journal.calls_to_write()} == {"submitted", "language-only"}
    sink.away = False
    assert Replayer(journal, sink).replay_once().written == [("submitted", "2633600041")]


def test_a_call_the_reachable_database_refuses_is_reported_and_does_not_hold_back_the_others(journal):
    journal.append(Submitted("refused", "1004", {"content": "x"}, T0, "2633600040", "reserved"))
    ended_calls(journal)
    sink = FakeSink()
    write = sink.write_call

    def refuse_one(call: JournaledCall) -> str:
        if call.call_id == "refused":
            raise ValueError("level: 9 is not one of 1, 2, 3, 4")
        return write(call)

    sink.write_call = refuse_one
    report = Replayer(journal, sink).replay_once()
    assert report.failed == {"refused": "ValueError: level: 9 is not one of 1, 2, 3, 4"}
    assert report.written == [("submitted", "2633600041")] and report.error == ""
    assert "call refused failed: ValueError" in str(report)
    assert [call.call_id for call in journal.calls_to_write()] == ["refused"]  # tried again next round


def test_a_crash_between_the_write_and_its_acknowledgement_writes_again_and_the_sink_decides(journal, monkeypatch):
    ended_calls(journal)
    sink = FakeSink()

    record_written = journal.written

    def crash(call_id: str, *args) -> None:
        if call_id == "submitted":
            raise OSError("node killed before the journal recorded the write")
        record_written(call_id, *args)

    monkeypatch.setattr(journal, "written", crash)
    assert Replayer(journal, sink).replay_once().error.startswith("OSError")
    monkeypatch.undo()
    report = Replayer(journal, sink).replay_once()
    assert report.written == [("submitted", "2633600041")] and list(sink.tickets) == ["submitted"]
    assert [call.call_id for call in sink.calls].count("submitted") == 2  # asked twice, one ticket


def test_references_made_after_the_call_are_set_once_its_ticket_is_written(journal):
    ended_calls(journal)
    journal.attach("submitted", {"call_recording_ref": "/rec/submitted.wav"}, "ivr")
    journal.attach("in-flow", {"call_recording_ref": "/rec/in-flow.wav"}, "ivr")
    journal.attach("submitted", {"transcript_ref": "/rec/submitted.transcript.json"}, "asr")
    sink = FakeSink()
    report = Replayer(journal, sink).replay_once()
    assert report.attached == ["submitted", "submitted"]
    assert sink.links == {"submitted": {"call_recording_ref": "/rec/submitted.wav",
                                        "transcript_ref": "/rec/submitted.transcript.json"}}
    assert [a.call_id for a in journal.attachments_to_write()] == ["in-flow"]  # its call has not ended yet
    assert Replayer(journal, sink).replay_once().attached == []


def test_a_reference_for_a_call_that_left_no_ticket_is_dropped_with_an_error(journal, caplog):
    ended_calls(journal)
    journal.attach("language-only", {"call_recording_ref": "/rec/l.wav"}, "ivr")
    Replayer(journal, FakeSink()).replay_once()
    assert journal.attachments_to_write() == []
    assert "call language-only has no ticket for ['call_recording_ref']" in caplog.text


def test_background_tasks_run_in_rounds_survive_a_failing_task_and_stop_promptly(caplog):
    ran: list[str] = []
    second_round = threading.Event()

    def failing() -> None:
        ran.append("failing")
        raise RuntimeError("database away")

    def counting() -> None:
        ran.append("counting")
        if ran.count("counting") == 2:
            second_round.set()

    tasks = BackgroundTasks([failing, counting], interval=0.05)
    tasks.start()
    assert second_round.wait(10)
    started = time.monotonic()
    tasks.stop()
    assert time.monotonic() - started < 5 and not tasks._thread.is_alive()
    assert ran[:4] == ["failing", "counting", "failing", "counting"]
    assert sum("journal task" in record.getMessage() for record in caplog.records) == 1  # once, not each round


def test_stop_does_not_wait_for_the_interval():
    tasks = BackgroundTasks([lambda: None], interval=3600)
    tasks.start()
    started = time.monotonic()
    tasks.stop()
    assert time.monotonic() - started < 5


def test_an_outage_is_logged_once_and_its_end_once(journal, caplog):
    caplog.set_level(logging.INFO, logger="journal.replayer")
    ended_calls(journal)
    sink = FakeSink()
    sink.away = True
    replayer = Replayer(journal, sink)
    for _ in range(3):
        replayer.replay_once()
    sink.away = False
    replayer.replay_once()
    messages = [record.getMessage() for record in caplog.records]
    assert sum("journal replay stopped" in m for m in messages) == 1
    assert sum("journal replay works again" in m for m in messages) == 1
