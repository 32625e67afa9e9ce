"""A call's transcript as a reviewer sees it: the recogniser's words with their times and confidences (the
JSON file asr wrote beside the recording) with the reviewers' corrections laid over them (tickets.review).

The recogniser's file is never changed; the corrected text is computed, so both stay visible."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from asr import Transcript
from tickets.models import Ticket, TranscriptCorrection
from tickets.review import corrections


@dataclass(frozen=True)
class ReviewWord:
    index: int
    word: str
    start: float
    end: float
    conf: float
    utterance: int
    correction: TranscriptCorrection | None = None

    @property
    def text(self) -> str:
        """What the word reads now: the reviewer's correction, else the recogniser's word."""
        return self.correction.text if self.correction is not None else self.word

    def to_dict(self) -> dict[str, Any]:
        correction = None if self.correction is None else {
            "text": self.correction.text, "by": self.correction.actor, "at": self.correction.at.isoformat()}
        return {"index": self.index, "word": self.word, "start": self.start, "end": self.end, "conf": self.conf,
                "utterance": self.utterance, "correction": correction}


def read_transcript(ref: str | None) -> Transcript | None:
    """The transcript file `ref`, or None when there is none (not yet transcribed, or unreadable)."""
    if not ref:
        return None
    try:
        return Transcript.from_json(Path(ref).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def mean_confidence(transcript: Transcript) -> float | None:
    """The recogniser's average certainty over the call's words (None for a transcript without words)."""
    words = transcript.words
    return round(sum(w.conf for w in words) / len(words), 4) if words else None


def review_words(session: Session, ticket: Ticket, transcript: Transcript) -> list[ReviewWord]:
    corrected = corrections(session, ticket.id, ticket.transcript_ref or "")
    words = []
    for number, utterance in enumerate(transcript.utterances):
        for word in utterance.words:
            index = len(words)
            words.append(ReviewWord(index, word.word, word.start, word.end, word.conf, number,
                                    corrected.get(index)))
    return words


def corrected_text(words: list[ReviewWord]) -> str:
    return " ".join(word.text for word in words if word.text)


def transcript_document(session: Session, ticket: Ticket) -> dict[str, Any] | None:
    """GET /api/tickets/{id}/transcript: every word with start, end, confidence and any correction."""
    transcript = read_transcript(ticket.transcript_ref)
    if transcript is None:
        return None
    words = review_words(session, ticket, transcript)
    return {"ticket_id": ticket.id, "recording": "call", "language": transcript.language,
            "duration": transcript.duration, "confidence": mean_confidence(transcript),
            "text": transcript.text, "corrected_text": corrected_text(words),
            "words": [word.to_dict() for word in words]}
