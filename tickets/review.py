"""Call review: the queue of calls that need a reviewer, reviewers' word corrections of transcripts, and the
mark that a call was reviewed.

The transcript itself (words with times and confidences) is a file the speech side wrote; this module knows
only word positions and text, so tickets still knows nothing of audio. Like the service, functions flush
but never commit.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from tickets.lifecycle import Status
from tickets.models import Ticket, TranscriptCorrection, utcnow
from tickets.service import record_event

# A transcript whose words the recogniser was on average less sure of than this is checked by a person.
LOW_CONFIDENCE = 0.6
MAX_WORD_LENGTH = 200


class ReviewReason(StrEnum):
    """Why a call is in the review queue, most pressing first."""

    INCOMPLETE_DRAFT = "incomplete_draft"      # the caller hung up before the ticket was submitted
    LOW_CONFIDENCE = "low_confidence"          # the recogniser was unsure of the transcript
    UNTYPED_RECORDING = "untyped_recording"    # a recorded answer (keypad-only call) nobody has typed yet


def _blank(column: Any) -> Any:
    return func.coalesce(column, "") == ""


def _reason_conditions(low_confidence: float) -> dict[ReviewReason, Any]:
    not_reviewed = Ticket.reviewed_at.is_(None)
    return {
        ReviewReason.INCOMPLETE_DRAFT: and_(Ticket.status == Status.DRAFT, Ticket.incomplete_reason.is_not(None)),
        ReviewReason.LOW_CONFIDENCE: and_(not_reviewed, Ticket.transcript_confidence < low_confidence),
        ReviewReason.UNTYPED_RECORDING: and_(not_reviewed, or_(
            and_(Ticket.recording_ref.is_not(None), _blank(Ticket.content)),
            and_(Ticket.name_recording_ref.is_not(None), _blank(Ticket.caller_name)),
            and_(Ticket.address_recording_ref.is_not(None), _blank(Ticket.address)))),
    }


@dataclass(frozen=True)
class ReviewItem:
    ticket: Ticket
    reason: ReviewReason


def review_queue(session: Session, *, low_confidence: float = LOW_CONFIDENCE, unit_id: int | None = None,
                 page: int = 1, page_size: int = 50) -> tuple[list[ReviewItem], int]:
    """Calls waiting for a reviewer, by need: incomplete drafts, then low-confidence transcripts, then
    recorded answers nobody typed; the longest waiting first within each. A draft leaves the queue when it
    is submitted (or no longer a draft); the others when a reviewer marks the call reviewed."""
    conditions = _reason_conditions(low_confidence)
    rank = case(*((condition, position) for position, condition in enumerate(conditions.values())))
    statement = select(Ticket, rank.label("rank")).where(or_(*conditions.values()),
                                                         Ticket.status != Status.ARCHIVED)
    if unit_id is not None:
        statement = statement.where(Ticket.unit_id == unit_id)
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = session.execute(statement.order_by(rank, Ticket.created_at, Ticket.id)
                           .limit(page_size).offset((page - 1) * page_size)).all()
    reasons = list(conditions)
    return [ReviewItem(ticket, reasons[position]) for ticket, position in rows], total


def mark_reviewed(session: Session, ticket: Ticket, *, actor: str, note: str | None = None,
                  now: datetime | None = None) -> Ticket:
    """A reviewer checked the call's audio and transcript (recorded in the history)."""
    now = now or utcnow()
    ticket.reviewed_at = now
    record_event(session, ticket, actor, "review", ticket.status, note or "call reviewed", now)
    session.flush()
    return ticket


def correct_word(session: Session, ticket: Ticket, transcript_ref: str, word_index: int, original: str,
                 text: str, *, actor: str, now: datetime | None = None) -> TranscriptCorrection:
    """Store a reviewer's correction of word `word_index` (what the recogniser wrote was `original`).
    `text` may hold several words (a missed one added) or be empty (a word struck out)."""
    text = " ".join(text.split())
    if word_index < 0:
        raise ValueError(f"word_index: {word_index} is not a word position")
    if len(text) > MAX_WORD_LENGTH:
        raise ValueError(f"text: longer than {MAX_WORD_LENGTH} characters")
    correction = TranscriptCorrection(ticket_id=ticket.id, transcript_ref=transcript_ref, word_index=word_index,
                                      original=original, text=text, actor=actor, at=now or utcnow())
    session.add(correction)
    session.flush()
    return correction


def corrections(session: Session, ticket_id: int, transcript_ref: str) -> dict[int, TranscriptCorrection]:
    """The correction in force for each corrected word of a transcript (the latest one)."""
    rows = session.scalars(select(TranscriptCorrection).where(
        TranscriptCorrection.ticket_id == ticket_id, TranscriptCorrection.transcript_ref == transcript_ref)
        .order_by(TranscriptCorrection.id))
    return {row.word_index: row for row in rows}
