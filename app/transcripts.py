"""Post-call transcripts: a call's whole recording transcribed in the background and linked to its ticket,
with the jobs kept in the node's journal so a restart or a database outage loses none."""
from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

import asr
from app.journal_sink import DatabaseSink
from app.journaled_tickets import has_request
from ivr.node import CallRecord
from journal.store import JOB_QUEUED, Journal

log = logging.getLogger(__name__)


class TranscriptLinker:
    """After each call with a request: the caller's whole recording is transcribed (asr.TranscriptJobs, one
    at a time) and the transcript linked to the call's ticket. Calls without a request (status checks,
    transfers before the request) are not transcribed.

    The jobs live in the node's journal: queued when the call ends (whether or not the database is up),
    resumed at the next start (`resume`), left there by a prompt shutdown. A transcript whose ticket is not
    in the database yet (the call waits for the replayer) is linked by the replayer."""

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
        self.jobs.submit(recording, language=language, on_done=lambda transcript, path: self._done(call_id, path),
                         on_error=lambda path, error: self._failed(call_id, error))

    def _done(self, call_id: str, transcript: Path) -> None:
        self.journal.transcript_done(call_id, str(transcript))
        try:
            linked = self.sink.link_transcript(call_id, str(transcript))
        except SQLAlchemyError as error:
            log.warning("call %s: transcript %s waits for the database (%s)", call_id, transcript,
                        type(error).__name__)
            return
        if linked:
            self.journal.transcript_linked(call_id)
            log.info("call %s: transcript %s linked to its ticket", call_id, transcript)

    def _failed(self, call_id: str, error: Exception) -> None:
        if self.journal.transcript_failed(call_id, f"{type(error).__name__}: {error}",
                                          give_up_after=self.GIVE_UP_AFTER):
            log.error("call %s: transcription given up after %d attempts", call_id, self.GIVE_UP_AFTER)

    def shutdown(self) -> None:
        """Prompt: the running job stops within a second of audio; unfinished jobs stay queued."""
        self.jobs.shutdown()
