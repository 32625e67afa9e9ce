"""journal.store: durable appends, crash safety (a torn or damaged last record is ignored, not fatal),
calls to write, reserved numbers taken with the submit, transcription jobs, pruning."""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from journal.records import DraftSaved, LeftIncomplete, Submitted, Written
from journal.store import ATTACHED, JOB_FAILED, JOB_QUEUED, JOB_TRANSCRIBED, NO_TICKET, Journal

T0 = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def journal(tmp_path, clock) -> Journal:
    with Journal(tmp_path / "journal" / "node.sqlite3", clock=clock) as journal:
        yield journal


def draft(call_id: str, n: int) -> DraftSaved:
    return DraftSaved(call_id, "1001", {f"field{n}": f"answer {n}"}, T0 + timedelta(seconds=n))


def test_the_file_is_sqlite_in_wal_mode_with_full_synchronous_commits(journal):
    journal.append(draft("a", 1))
    assert journal.path.is_file() and Path(f"{journal.path}-wal").is_file()
    assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: fsync at every commit


def test_an_append_is_on_disk_when_it_returns_even_if_the_process_is_killed_next(tmp_path):
    path = tmp_path / "killed.sqlite3"
    script = (f"import os, signal, sys\nsys.path.insert(0, {str(ROOT)!r})\n"
              "from datetime import datetime, timezone\n"
              "from journal.store import Journal\nfrom journal.records import DraftSaved\n"
              f"j = Journal({str(path)!r})\n"
              "j.append(DraftSaved('call-1', '1001', {'content': '단수'}, datetime.now(timezone.utc)))\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == -signal.SIGKILL, result.stderr
    with Journal(path) as reopened:
        assert reopened.call("call-1").fields == {"content": "단수"}


def crash_copy(journal: Journal, target: Path) -> tuple[Path, Path]:
    """The files as a crash would leave them: database and WAL, no clean close, no checkpoint."""
    target.mkdir()
    database, wal = target / journal.path.name, target / f"{journal.path.name}-wal"
    shutil.copyfile(journal.path, database)
    shutil.copyfile(f"{journal.path}-wal", wal)
    return database, wal


def test_a_torn_last_record_is_dropped_and_the_journal_opens_and_appends(journal, tmp_path):
    for n in range(1, 6):
        journal.append(draft("call-1", n))
    database, wal = crash_copy(journal, tmp_path / "crash")
    with wal.open("r+b") as file:  # the last commit's last frame only half written
        file.truncate(wal.stat().st_size - 2000)
    with Journal(database) as recovered:
        fields = recovered.call("call-1").fields
        assert fields == {f"field{n}": f"answer {n}" for n in range(1, 5)}
        recovered.append(draft("call-1", 6))
        assert recovered.call("call-1").fields["field6"] == "answer 6"
        assert recovered.damaged_records == 0


def test_garbage_or_a_flipped_byte_at_the_end_of_the_wal_loses_only_the_last_record(journal, tmp_path):
    for n in range(1, 4):
        journal.append(draft("call-1", n))
    database, wal = crash_copy(journal, tmp_path / "garbage")
    with wal.open("ab") as file:
        file.write(os.urandom(5000))
    with Journal(database) as recovered:
        assert len(recovered.records("call-1")) == 3
    database, wal = crash_copy(journal, tmp_path / "flipped")
    data = bytearray(wal.read_bytes())
    data[-100] ^= 0xFF  # inside the last frame: its checksum no longer matches
    wal.write_bytes(bytes(data))
    with Journal(database) as recovered:
        assert [list(r.fields) for r in recovered.records("call-1")] == [["field1"], ["field2"]]


def test_a_damaged_record_inside_the_file_is_counted_and_skipped(journal, caplog):
    for n in range(1, 4):
        journal.append(draft("call-1", n))
    journal._db.execute("UPDATE entries SET body = replace(body, 'answer 2', 'answer X') WHERE seq = 2")
    journal._db.execute("UPDATE entries SET kind = 'telegram' WHERE seq = 3")
    assert journal.call("call-1").fields == {"field1": "answer 1"}
    assert journal.damaged_records == 2 and journal.status().damaged_records == 2
    assert "checksum mismatch" in caplog.text and "unknown record kind 'telegram'" in caplog.text


def test_concurrent_call_threads_lose_no_append(journal):
    def call_thread(call: int) -> None:
        for n in range(20):
            journal.append(draft(f"call-{call}", n))

    threads = [threading.Thread(target=call_thread, args=(call,)) for call in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [len(journal.call(f"call-{call}").fields) for call in range(8)] == [20] * 8


def test_a_second_process_reads_the_journal_while_the_node_writes(journal):
    journal.append(draft("call-1", 1))
    reader = sqlite3.connect(journal.path)
    assert reader.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 1
    journal.append(draft("call-1", 2))
    assert reader.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 2
    reader.close()


def test_calls_to_write_are_the_ended_unwritten_ones_oldest_first(journal, clock):
    journal.append(draft("in-flow", 1), draft("hung-up", 1), draft("submitted", 1), draft("written", 1))
    journal.append(Submitted("submitted", "1001", {"content": "x"}, T0 + timedelta(minutes=1), "2633600001"))
    journal.append(LeftIncomplete("hung-up", "caller hung up", T0))
    journal.append(LeftIncomplete("written", "caller hung up", T0))
    journal.written("written", "", "call")
    assert [c.call_id for c in journal.calls_to_write()] == ["hung-up", "submitted"]
    assert journal.calls_in_flow() == ["in-flow"]
    status = journal.status()
    assert (status.calls_in_flow, status.calls_to_write, status.calls_written) == (1, 2, 1)


def test_calls_a_stopped_node_left_in_the_flow_end_incomplete_at_start(journal):
    journal.append(draft("cut-off", 1), Submitted("done", "1001", {}, T0, "2633600001"))
    assert journal.end_calls_in_flow("the node stopped during the call") == ["cut-off"]
    call = journal.call("cut-off")
    assert (call.outcome, call.reason) == ("incomplete", "the node stopped during the call")
    assert journal.call("done").outcome == "submitted" and journal.end_calls_in_flow("again") == []


def test_a_submit_while_the_database_is_away_takes_a_reserved_number_in_the_same_commit(journal):
    journal.add_reserved_numbers("2026-12-01", ["2633500098", "2633500099"])
    journal.add_reserved_numbers("2026-12-02", ["2633600041", "2633600042"])
    journal.add_reserved_numbers("2026-12-02", ["2633600041"])  # again: ignored
    told = journal.submit_with_reserved_number(
        Submitted("call-1", "1001", {"content": "단수"}, T0), "2026-12-02", "OperationalError: away")
    assert (told.number, told.number_source) == ("2633600041", "reserved")
    call = journal.call("call-1")
    assert (call.outcome, call.number, call.database_missed) == ("submitted", "2633600041", True)
    # The same call asking again (a retried submit) keeps its number; others get the next ones.
    assert journal.submit_with_reserved_number(Submitted("call-1", "1001", {}, T0), "2026-12-02", "away"
                                               ).number == "2633600041"
    numbers = [journal.submit_with_reserved_number(Submitted(f"call-{n}", "1001", {}, T0), "2026-12-02",
                                                   "away").number for n in range(2, 6)]
    assert numbers == ["2633600042", "2633500098", "2633500099", ""]  # today's first, then the newest other day
    assert journal.call("call-5").number_source == "none"
    assert journal.unused_reserved() == []


def test_transcript_jobs_survive_a_reopen_and_move_through_their_states(tmp_path, clock):
    path = tmp_path / "jobs.sqlite3"
    with Journal(path, clock=clock) as journal:
        assert journal.queue_transcript("call-1", "/rec/call-1.wav", "ko")
        assert not journal.queue_transcript("call-1", "/rec/call-1.wav", "ko")  # one job per call
        journal.queue_transcript("call-2", "/rec/call-2.wav", "ko")
    with Journal(path, clock=clock) as journal:
        assert [job.call_id for job in journal.transcript_jobs(JOB_QUEUED)] == ["call-1", "call-2"]
        journal.transcript_done("call-1", "/rec/call-1.transcript.json")
        job = journal.transcript_job("call-1")
        assert (job.state, job.transcript, job.attempts) == (JOB_TRANSCRIBED, "/rec/call-1.transcript.json", 1)
        assert not journal.transcript_failed("call-2", "AudioFileError: truncated", give_up_after=2)
        assert journal.transcript_job("call-2").state == JOB_QUEUED
        assert journal.transcript_failed("call-2", "AudioFileError: truncated", give_up_after=2)
        assert (journal.transcript_job("call-2").state, journal.transcript_job("call-2").last_error) == (
            JOB_FAILED, "AudioFileError: truncated")
        assert journal.status().transcripts == {JOB_TRANSCRIBED: 1, JOB_FAILED: 1}


def test_attachments_wait_durably_until_done_and_a_damaged_one_is_skipped(tmp_path, clock):
    path = tmp_path / "attachments.sqlite3"
    with Journal(path, clock=clock) as journal:
        first = journal.attach("call-1", {"call_recording_ref": "/rec/call-1.wav"}, "ivr")
        journal.attach("call-1", {"transcript_ref": "/rec/call-1.transcript.json", "transcript_confidence": 0.82,
                                  "at": T0}, "asr")
        journal.attach("call-2", {"call_recording_ref": "/rec/call-2.wav"}, "ivr")
        assert journal.attach("call-1", {"call_recording_ref": "/rec/call-1.wav"}, "ivr") == first  # kept once
    with Journal(path, clock=clock) as journal:
        waiting = journal.attachments_to_write()
        assert [(a.call_id, a.actor, a.fields) for a in waiting] == [
            ("call-1", "ivr", {"call_recording_ref": "/rec/call-1.wav"}),
            ("call-1", "asr", {"transcript_ref": "/rec/call-1.transcript.json", "transcript_confidence": 0.82,
                               "at": T0}),
            ("call-2", "ivr", {"call_recording_ref": "/rec/call-2.wav"})]
        journal.attachment_done(first)
        journal.attachment_done(waiting[2].id, NO_TICKET)
        journal._db.execute("UPDATE attachments SET body = replace(body, '0.82', '0.99') WHERE call_id = 'call-1'")
        assert journal.attachments_to_write() == [] and journal.damaged_records == 1
        assert journal._db.execute("SELECT outcome FROM attachments ORDER BY id").fetchall() == [
            (ATTACHED,), (None,), (NO_TICKET,)]
        assert journal.status().attachments_to_write == 1


def test_prune_forgets_only_old_written_calls_with_finished_jobs(journal, clock):
    journal.add_reserved_numbers("2026-12-02", ["2633600001", "2633600002"])
    for call_id in ("old-written", "old-unwritten", "old-job-waiting"):
        journal.append(draft(call_id, 1), LeftIncomplete(call_id, "hung up", T0))
    for call_id in ("old-written", "old-job-waiting"):
        journal.append(Written(call_id, "", "call", T0))
    journal.queue_transcript("old-job-waiting", "/rec/x.wav", "ko")
    journal.append(draft("old-attachment-waiting", 1), LeftIncomplete("old-attachment-waiting", "hung up", T0),
                   Written("old-attachment-waiting", "2633600009", "call", T0))
    journal.attach("old-attachment-waiting", {"call_recording_ref": "/rec/y.wav"}, "ivr")
    journal.submit_with_reserved_number(Submitted("old-written", "1001", {}, T0), "2026-12-02", "away")
    clock.now = T0 + timedelta(days=31)
    journal.append(LeftIncomplete("new-written", "hung up", clock.now), Written("new-written", "", "call", clock.now))
    assert journal.prune(timedelta(days=30)) == 1
    assert journal.call("old-written") is None
    assert journal.call("old-unwritten") is not None and journal.call("old-job-waiting") is not None
    assert journal.call("old-attachment-waiting") is not None
    assert journal.call("new-written") is not None
    assert journal.unused_reserved() == []  # the unused old reservation is dropped too
