"""Post-call linking: a call's whole recording attached to the call's ticket, then transcribed in the
background and the transcript attached too; both kept in the node's journal first, so a restart or a
database outage loses neither."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

import asr
from app.journal_sink import DatabaseSink
from app.journaled_tickets import has_request
from console.transcripts import mean_confidence
from ivr.node import CallRecord
from journal.store import JOB_QUEUED, Journal

log = logging.getLogger(__name__)
RECORDING_ACTOR, TRANSCRIPT_ACTOR = "ivr", "asr"


class TranscriptLinker:
    """After each call with a request: the whole recording's reference is set on the call's ticket (for
    review, with or without a transcript), and the recording is transcribed (asr.TranscriptJobs, one at a
    time) and the transcript's reference and mean confidence set too. Calls without a request (status
    checks, transfers before the request) have no ticket: nothing is attached or transcribed.

    Both go to the journal first (journal.store attachments) and then to the ticket when it is in the
    database; when it is not yet (the database is away, or the call waits for the replayer) the replayer
    sets them later. Transcription jobs live in the journal too: queued when the call ends, resumed at the
    next start (`resume`), left there by a prompt shutdown."""

    GIVE_UP_AFTER = 3  # failed attempts (unreadable audio, say) before a job is left as failed

    def __init__(self, journal: Journal, jobs: asr.TranscriptJobs, sink: DatabaseSink) -> None:
        self.journal = journal
        self.jobs = jobs
        self.sink = sink

    def on_record(self, record: CallRecord) -> None:
        log.info("call ended: %s", record.to_dict())
        if record.direction != "inbound" or not record.recording_path:
            return
        call = self.journal.call(record.call_id)
        if call is None or not has_request(call.fields):
            return
        self._attach(record.call_id, {"call_recording_ref": record.recording_path}, RECORDING_ACTOR)
        language = call.fields.get("language")
        available = self.jobs.registry.available_languages()
        if language not in available:
            log.info("call %s: no transcript, no speech model for language %r (have: %s)",
                     record.call_id, language, ", ".join(available) or "none")
            return
        if self.journal.queue_transcript(record.call_id, record.recording_path, language):
            self._submit(record.call_id, record.recording_path, language)

    def resume(self) -> int:
        """Submit the jobs a previous run left queued; returns how many."""
        queued = self.journal.transcript_jobs(JOB_QUEUED)
        for job in queued:
            self._submit(job.call_id, job.recording, job.language)
        if queued:
            log.info("%d transcription job(s) from before the restart resumed", len(queued))
        return len(queued)

    def _submit(self, call_id: str, recording: str, language: str) -> None:
        self.jobs.submit(recording, language=language,
                         on_done=lambda transcript, path: self._done(call_id, transcript, path),
                         on_error=lambda path, error: self._failed(call_id, error))

    def _done(self, call_id: str, transcript: asr.Transcript, path: Path) -> None:
        self.journal.transcript_done(call_id, str(path))
        self._attach(call_id, {"transcript_ref": str(path), "transcript_confidence": mean_confidence(transcript)},
                     TRANSCRIPT_ACTOR)

    def _attach(self, call_id: str, fields: Mapping[str, Any], actor: str) -> None:
        """Journal first; then straight onto the ticket when the database holds the call, else the replayer."""
        attachment = self.journal.attach(call_id, fields, actor)
        call = self.journal.call(call_id)
        if call is None or call.written_at is None or not call.number:
            return
        try:
            attached = self.sink.attach(call_id, fields, actor)
        except SQLAlchemyError as error:
            log.warning("call %s: %s wait for the database (%s)", call_id, sorted(fields), type(error).__name__)
            return
        if attached:
            self.journal.attachment_done(attachment)
            log.info("call %s: %s set on its ticket %s", call_id, sorted(fields), call.number)

    def _failed(self, call_id: str, error: Exception) -> None:
        if self.journal.transcript_failed(call_id, f"{type(error).__name__}: {error}",
                                          give_up_after=self.GIVE_UP_AFTER):
            log.error("call %s: transcription given up after %d attempts", call_id, self.GIVE_UP_AFTER)

    def shutdown(self) -> None:
        """Prompt: the running job stops within a second of audio; unfinished jobs stay queued."""
        self.jobs.shutdown()
