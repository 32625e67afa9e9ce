"""Endpoints of the procedures' records beside the tickets' own (tickets.api mounts this router): replies
with their review and attachments, the delivery queue, and the configured 不予受理 reasons.

Who may do what: the responsible unit's staff (or an operator) reply; a reviewer approves or returns; an
operator (or whoever delivers, e.g. the callback call) records delivery. A ticket someone may not see does
not exist for them (404), as elsewhere in the API.
"""
from __future__ import annotations

import tempfile
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from tickets import attachments, knowledge_review, replies, routing, service
from tickets.api import AnyRole, Operator, RowId, RulesDep, SessionDep, require, visible_ticket
from tickets.auth import Principal
from tickets.models import Reply
from tickets.schemas import (ONE_LINE, AttachmentOut, DeliveryIn, KnowledgeOut, ReplyForDelivery, ReplyIn, ReplyOut,
                             ReviewIn, UnitProposalOut)

router = APIRouter()
Replier = Annotated[Principal, require("operator", "unit_staff", "admin")]
Reviewer = Annotated[Principal, require("reviewer", "admin")]
KnowledgeReaders = Annotated[Principal, require("operator", "admin", "unit_staff")]


def _visible_reply(session: Session, reply_id: int, principal: Principal) -> Reply:
    reply = replies.get_reply(session, reply_id)
    if not principal.may_see(reply.ticket):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no reply with id {reply_id}")
    return reply


# --- replies -----------------------------------------------------------------------------------------------

@router.post("/tickets/{ticket_id}/replies", response_model=ReplyOut, status_code=201, tags=["replies"])
def submit_reply(ticket_id: RowId, body: ReplyIn, session: SessionDep, principal: Replier, rules: RulesDep) -> Any:
    """Reply to the citizen (回复: 办理单位、办理时间、办理情况、办理结果). The ticket waits for review
    (reply_review); the reply counts as sent once a reviewer approves it."""
    visible_ticket(session, ticket_id, principal)
    parts = body.model_dump()
    parts["handled_at"] = service.as_utc(parts["handled_at"])
    reply = replies.submit_reply(session, ticket_id, parts, actor=principal.name, rules=rules)
    session.commit()
    return reply


@router.get("/tickets/{ticket_id}/replies", response_model=list[ReplyOut], tags=["replies"])
def list_replies(ticket_id: RowId, session: SessionDep, principal: AnyRole) -> Any:
    visible_ticket(session, ticket_id, principal)
    return replies.replies_of(session, ticket_id)


@router.get("/replies/pending-review", response_model=list[ReplyOut], tags=["replies"])
def pending_review(session: SessionDep, principal: Reviewer,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Any:
    """The reviewer's queue: replies waiting for 审核把关, oldest first (a unit's reviewer sees their unit's)."""
    waiting = session.query(Reply).filter(Reply.status == "pending_review").order_by(Reply.submitted_at, Reply.id)
    return [reply for reply in waiting.limit(limit) if principal.may_see(reply.ticket)]


@router.post("/replies/{reply_id}/review", response_model=ReplyOut, tags=["replies"])
def review_reply(reply_id: RowId, body: ReviewIn, session: SessionDep, principal: Reviewer, rules: RulesDep) -> Any:
    """Approve the reply (it counts as sent and is queued for delivery) or return it with the reason."""
    _visible_reply(session, reply_id, principal)
    reply = replies.review_reply(session, reply_id, approve=body.decision == "approve", actor=principal.name,
                                 rules=rules, note=body.note)
    session.commit()
    return reply


@router.get("/replies/awaiting-delivery", response_model=list[ReplyForDelivery], tags=["replies"])
def awaiting_delivery(session: SessionDep, principal: Operator, channel: str | None = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[ReplyForDelivery]:
    """Approved replies not yet delivered to the citizen, oldest approval first."""
    return [ReplyForDelivery.model_validate({**ReplyOut.model_validate(reply).model_dump(),
                                             "ticket_number": reply.ticket.number, "phone": reply.ticket.phone,
                                             "language": reply.ticket.language})
            for reply in replies.replies_awaiting_delivery(session, channel=channel, limit=limit)]


@router.post("/replies/{reply_id}/delivery", response_model=ReplyOut, tags=["replies"])
def record_delivery(reply_id: RowId, body: DeliveryIn, session: SessionDep, principal: Operator) -> Any:
    reply = replies.record_delivery(session, reply_id, delivered=body.delivered, actor=principal.name, note=body.note)
    session.commit()
    return reply


# --- attachments -------------------------------------------------------------------------------------------

@router.post("/replies/{reply_id}/attachments", response_model=AttachmentOut, status_code=201, tags=["replies"],
             openapi_extra={"requestBody": {"content": {"application/octet-stream": {}}, "required": True}},
             responses={413: {"description": "larger than the kind allows"},
                        415: {"description": "a media type the hotline does not accept"}})
async def upload_attachment(reply_id: RowId, request: Request, principal: Replier,
                            filename: Annotated[str, Query(min_length=1, max_length=200, pattern=ONE_LINE)]) -> Any:
    """Attach a file (text, audio, image or video) to a reply under review: the body is the file, its
    Content-Type says what it is. Sizes and types are the hotline's configuration."""
    settings = request.app.state.tickets.rules.procedures
    media_type = request.headers.get("content-type", "")
    try:
        kind = attachments.kind_of(media_type, settings)
    except attachments.UnsupportedMediaType as error:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail=str(error)) from error
    limit = settings.attachment_max_bytes[kind]
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:  # cut off at once: a huge upload is never buffered whole
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                                    detail=f"{kind} attachments are at most {limit} bytes")
            spool.write(chunk)
        spool.seek(0)
        return await run_in_threadpool(_store, request, reply_id, principal, filename, media_type, spool)


SPOOL_IN_MEMORY = 1024 * 1024


def _store(request: Request, reply_id: int, principal: Principal, filename: str, media_type: str,
           spool: BinaryIO) -> AttachmentOut:
    """The database part of an upload, in a worker thread (the session is synchronous)."""
    context = request.app.state.tickets
    with context.session_factory() as session:
        try:
            _visible_reply(session, reply_id, principal)
            attachment = attachments.store_attachment(
                session, reply_id, filename=filename, media_type=media_type,
                chunks=iter(lambda: spool.read(64 * 1024), b""), settings=context.rules.procedures)
            session.commit()
            return AttachmentOut.model_validate(attachment)
        except service.NotFound as error:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error)) from error
        except service.Conflict as error:
            raise HTTPException(status.HTTP_409_CONFLICT, detail={"message": str(error)}) from error
        except ValueError as error:
            field, _, message = str(error).partition(": ")
            raise HTTPException(422, detail=[{"loc": ["body", field], "msg": message, "type": "value_error"}]) \
                from error


@router.get("/replies/{reply_id}/attachments/{attachment_id}", tags=["replies"],
            response_class=FileResponse, responses={200: {"description": "the file"}})
def download_attachment(reply_id: RowId, attachment_id: RowId, session: SessionDep, principal: AnyRole) -> Any:
    _visible_reply(session, reply_id, principal)
    attachment = attachments.get_attachment(session, reply_id, attachment_id)
    return FileResponse(attachment.storage_ref, media_type=attachment.media_type, filename=attachment.filename,
                        headers={"Cache-Control": "private, no-store"})


# --- routing (按责转办) ----------------------------------------------------------------------------------------

@router.get("/tickets/{ticket_id}/routing", response_model=list[UnitProposalOut], tags=["tickets"],
            responses={404: {"description": "no such ticket"}})
def routing_proposal(ticket_id: RowId, session: SessionDep, principal: Operator) -> Any:
    """The member units proposed for the ticket, best first, each with the reason (its categories: the
    topic or a category in the content; its areas: the address or the content). The operator confirms by
    dispatching to one (transitions, action dispatch, unit_id); the unit's reply deadline starts then."""
    return routing.propose_units(session, service.get_ticket(session, ticket_id))


# --- units' knowledge entries under review (第七条(四)) --------------------------------------------------------

@router.get("/knowledge-review", response_model=list[KnowledgeOut], tags=["knowledge"])
def knowledge_review_queue(session: SessionDep, principal: KnowledgeReaders,
                           limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Any:
    """Units' new entries and edits waiting for an operator's review, oldest first (unit staff: their unit's)."""
    return knowledge_review.review_queue(session, unit_id=principal.unit_id if principal.unit_scoped else None,
                                         limit=limit)


@router.post("/knowledge/{entry_id}/review", response_model=KnowledgeOut, tags=["knowledge"],
             responses={409: {"description": "nothing of the entry waits for review"}})
def review_knowledge(entry_id: RowId, body: ReviewIn, session: SessionDep, principal: Operator) -> Any:
    """Approve what the unit submitted (the phone gives it from the next call on) or return it with the reason
    (a new entry stays unused; an edit is dropped and the approved text stays)."""
    entry = knowledge_review.review(session, entry_id, approve=body.decision == "approve", actor=principal.name,
                                    note=body.note)
    session.commit()
    return entry


# --- configuration the operators pick from -----------------------------------------------------------------

@router.get("/rejection-reasons", tags=["tickets"])
def rejection_reasons(principal: AnyRole, rules: RulesDep) -> dict[str, str]:
    """不予受理 reasons (code -> label); `other` is the only one with free text."""
    return rules.procedures.rejection_reasons
