"""Post-call linking: a call's whole recording attached to the call's ticket, then transcribed and the
transcript attached too."""
from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import asr
from console.transcripts import mean_confidence
from ivr.node import CallRecord
from tickets import service
from tickets.models import Ticket

log = logging.getLogger(__name__)


class TranscriptLinker:
    """After each call: the caller's whole recording is transcribed in the background (asr.TranscriptJobs,
    one at a time) and the transcript file is linked to the call's ticket, found by its call id. Calls
    without a ticket (status checks, transfers before the request) are not transcribed."""

    def __init__(self, session_factory: sessionmaker[Session], jobs: asr.TranscriptJobs) -> None:
        self.session_factory = session_factory
        self.jobs = jobs

    def on_record(self, record: CallRecord) -> None:
        log.info("call ended: %s", record.to_dict())
        if record.direction != "inbound" or not record.recording_path:
            return
        with self.session_factory() as session, session.begin():
            ticket = session.scalar(select(Ticket).where(Ticket.call_id == record.call_id))
            language = ticket.language if ticket is not None else None
            number = ticket.number if ticket is not None else None
            if ticket is not None:  # the whole call's audio, for review, with or without a transcript
                service.update_fields(session, ticket, {"call_recording_ref": record.recording_path}, actor="ivr")
        if number is None:
            return
        available = self.jobs.registry.available_languages()
        if language not in available:
            log.info("call %s (ticket %s): no transcript, no speech model for language %r (have: %s)",
                     record.call_id, number, language, ", ".join(available) or "none")
            return
        self.jobs.submit(record.recording_path, language=language,
                         on_done=lambda transcript, path: self._link(record.call_id, transcript, path))

    def _link(self, call_id: str, transcript: asr.Transcript, path: Path) -> None:
        """The transcript file and the recogniser's mean confidence (the review queue's low-confidence need)."""
        with self.session_factory() as session, session.begin():
            ticket = session.scalar(select(Ticket).where(Ticket.call_id == call_id))
            if ticket is not None:
                service.update_fields(session, ticket, {"transcript_ref": str(path),
                                                        "transcript_confidence": mean_confidence(transcript)},
                                      actor="asr")
                log.info("call %s: transcript %s linked to ticket %s", call_id, path, ticket.number)
