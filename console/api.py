"""JSON endpoints of call review, shared by the console's page script and API clients (bearer token or the
console's session): a ticket's transcript with word timings and corrections, a word corrected, the review
queue. Visibility and roles are the ticket API's: another unit's ticket is 404, unit staff read but do not
edit."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from console.auth import ApiViewer
from console.catalog import hidden_from, visible_ticket
from console.transcripts import read_transcript, review_words, transcript_document
from tickets import review, service
from tickets.auth import Principal

router = APIRouter(tags=["call review"])


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, description="the word's position in the transcript (as GET .../transcript lists it)")
    text: str = Field(max_length=review.MAX_WORD_LENGTH,
                      description="what the caller said there: one or more words, or '' to strike the word out")


def _editor(principal: Principal) -> None:
    if principal.role not in ("operator", "admin"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"the {principal.role} role may not edit transcripts")


def _not_found(error: LookupError) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error))


@router.get("/tickets/{ticket_id}/transcript")
def get_transcript(ticket_id: int, request: Request, viewer: ApiViewer) -> dict[str, Any]:
    """The call's words with start and end (seconds into the call recording), the recogniser's confidence,
    and the correction in force (text, by, at), plus the recognised and the corrected text."""
    with request.app.state.tickets.session_factory() as session:
        try:
            ticket = visible_ticket(session, ticket_id, viewer)
        except service.NotFound as error:
            raise _not_found(error) from error
        document = None if "transcript_ref" in hidden_from(ticket, viewer) else transcript_document(session, ticket)
    if document is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this ticket has no transcript (yet)")
    return document


@router.post("/tickets/{ticket_id}/transcript/corrections", status_code=201)
def correct_word(ticket_id: int, body: CorrectionIn, request: Request, viewer: ApiViewer) -> dict[str, Any]:
    """Correct one word; the recogniser's word is kept, the correction is stored with who and when."""
    _editor(viewer)
    with request.app.state.tickets.session_factory.begin() as session:
        try:
            ticket = visible_ticket(session, ticket_id, viewer)
        except service.NotFound as error:
            raise _not_found(error) from error
        transcript = read_transcript(ticket.transcript_ref)
        if transcript is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this ticket has no transcript (yet)")
        words = review_words(session, ticket, transcript)
        if body.index >= len(words):
            raise HTTPException(422, detail=[{"loc": ["body", "index"], "type": "value_error",
                                              "msg": f"the transcript has {len(words)} words"}])
        review.correct_word(session, ticket, ticket.transcript_ref, body.index, words[body.index].word, body.text,
                            actor=viewer.name)
        return review_words(session, ticket, transcript)[body.index].to_dict()


@router.get("/review-queue")
def review_queue(request: Request, viewer: ApiViewer,
                 page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                 page_size: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """Calls waiting for a reviewer, by need (see tickets.review.review_queue)."""
    unit_id = viewer.unit_id if viewer.role == "unit_staff" else None
    with request.app.state.tickets.session_factory() as session:
        items, total = review.review_queue(session, low_confidence=request.app.state.console.settings.low_confidence,
                                           unit_id=unit_id, page=page, page_size=page_size)
        return {"total": total, "page": page, "page_size": page_size,
                "items": [{"id": item.ticket.id, "number": item.ticket.number, "reason": str(item.reason),
                           "status": item.ticket.status, "created_at": item.ticket.created_at.isoformat(),
                           "transcript_confidence": item.ticket.transcript_confidence} for item in items]}
