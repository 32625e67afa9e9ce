"""After a call: its recording and transcript kept in the node's journal, with real Vosk on an espeak-ng Korean
recording and a real ticket database: queued whatever the database does, set on the ticket by the replayer
when the ticket was not there yet, left queued by a prompt shutdown and resumed at the next start."""
from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

import asr
import pcm
from app.journal_sink import DatabaseSink
from ivr.node import CallRecord
from journal.records import DraftSaved, LeftIncomplete
from journal.replayer import Replayer
from journal.store import JOB_QUEUED, JOB_TRANSCRIBED, Journal
from recordings.wav_writer import WavRecording
from app.transcripts import TranscriptLinker
from tests.app.database_outage import SqliteOutage
from tickets import service
from tickets.models import Ticket

pytestmark = pytest.mark.vosk
T0 = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)
REQUEST = {"content": "도로에 구멍이 있어요", "language": "ko"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> asr.ModelRegistry:
    registry = asr.ModelRegistry(asr.AsrSettings(models_dir=tmp_path_factory.mktemp("models"),
                                                 cache_dir=tmp_path_factory.mktemp("asr-cache")))
    registry.model("ko")
    return registry


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> bytes:
    """A few seconds of espeak-ng Korean as 8 kHz 16-bit PCM."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is needed for speech tests (Debian package espeak-ng)")
    path = tmp_path_factory.mktemp("speech") / "request.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), "--", "도로에 구멍이 있어요 빨리 고쳐 주세요"], check=True)
    return pcm.read_wav(path)


@pytest.fixture
def database(tmp_path) -> Iterator[SqliteOutage]:
    database = SqliteOutage(tmp_path)
    yield database
    database.back()
    database.close()


def recorded_call(folder: Path, call_id: str, pcm: bytes, repeat: int = 1) -> CallRecord:
    recording = WavRecording(folder / f"{call_id}.wav")
    recording.write((b"\0" * 8000 + pcm) * repeat)
    recording.close()
    return CallRecord(call_id, "inbound", "1001", "12345", "PCMU", T0, recording_path=str(recording.path))


def journaled_submit(journal: Journal, call_id: str) -> None:
    journal.append(DraftSaved(call_id, "1001", REQUEST, T0), LeftIncomplete(call_id, "caller hung up", T0))


def wait_job(journal: Journal, call_id: str, state: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (job := journal.transcript_job(call_id)) is None or job.state != state:
        assert time.monotonic() < deadline, f"job of {call_id}: {job}"
        time.sleep(0.2)


def test_made_while_the_database_is_away_and_linked_by_the_replayer(tmp_path, registry, speech, database):
    sink = DatabaseSink(database.session_factory, service.TicketRules.default())
    with Journal(tmp_path / "node.sqlite3") as journal:
        journaled_submit(journal, "call-1")
        database.away()
        linker = TranscriptLinker(journal, asr.TranscriptJobs(registry), sink)
        try:
            record = recorded_call(tmp_path, "call-1", speech)
            linker.on_record(record)
            linker.on_record(record)  # a repeated end event queues nothing more
            wait_job(journal, "call-1", JOB_TRANSCRIBED)
        finally:
            linker.shutdown()
        job = journal.transcript_job("call-1")
        assert asr.Transcript.from_json(Path(job.transcript).read_text(encoding="utf-8")).words
        assert job.attempts == 1 and len(journal.attachments_to_write()) == 2  # recording, transcript
        database.back()
        report = Replayer(journal, sink).replay_once()
        assert report.written and report.attached == ["call-1", "call-1"]
        assert journal.attachments_to_write() == []
    with database.session_factory() as session:
        ticket = service.get_by_number(session, report.written[0][1])
        assert (ticket.transcript_ref, ticket.call_recording_ref) == (job.transcript, str(tmp_path / "call-1.wav"))
        assert 0 < ticket.transcript_confidence <= 1


def test_calls_without_a_request_or_a_model_are_not_transcribed_and_only_requests_keep_the_recording(tmp_path, registry, speech, database):
    sink = DatabaseSink(database.session_factory, service.TicketRules.default())
    with Journal(tmp_path / "node.sqlite3") as journal:
        journal.append(DraftSaved("language-only", "1001", {"language": "ko"}, T0))
        journal.append(DraftSaved("mandarin", "1001", {"content": "路灯坏了", "language": "zh"}, T0))
        linker = TranscriptLinker(journal, asr.TranscriptJobs(registry), sink)
        try:
            for call_id in ("language-only", "mandarin", "never-journaled"):
                linker.on_record(recorded_call(tmp_path, call_id, speech))
        finally:
            linker.shutdown()
        assert journal.status().transcripts == {}  # no request, or no model for zh: nothing to transcribe
        assert [(a.call_id, list(a.fields)) for a in journal.attachments_to_write()] == [
            ("mandarin", ["call_recording_ref"])]  # the recording is kept for review all the same


def test_a_prompt_shutdown_leaves_the_jobs_queued_and_the_next_start_resumes_them(tmp_path, registry, speech,
                                                                                 database):
    sink = DatabaseSink(database.session_factory, service.TicketRules.default())
    path = tmp_path / "node.sqlite3"
    with Journal(path) as journal:
        for call_id in ("long-1", "long-2"):
            journaled_submit(journal, call_id)
        linker = TranscriptLinker(journal, asr.TranscriptJobs(registry), sink)
        for call_id in ("long-1", "long-2"):
            linker.on_record(recorded_call(tmp_path, call_id, speech, repeat=3))  # seconds to decode, more than the 1 s below
        time.sleep(1.0)
        linker.shutdown()  # the node stops: it does not wait for the backlog
        assert [job.state for job in journal.transcript_jobs(JOB_QUEUED)] == [JOB_QUEUED, JOB_QUEUED]
        assert not Path(tmp_path / "long-1.transcript.json").exists()

    with Journal(path) as journal:  # the next start
        Replayer(journal, sink).replay_once()  # their tickets are written
        linker = TranscriptLinker(journal, asr.TranscriptJobs(registry), sink)
        try:
            assert linker.resume() == 2
            for call_id in ("long-1", "long-2"):
                wait_job(journal, call_id, JOB_TRANSCRIBED, timeout=600)
        finally:
            linker.shutdown()
        assert journal.attachments_to_write() == []  # the tickets were there: set at once
    with database.session_factory() as session:
        for call_id in ("long-1", "long-2"):
            ticket = session.scalar(select(Ticket).where(Ticket.call_id == call_id))
            assert ticket.transcript_ref == str(tmp_path / f"{call_id}.transcript.json")
