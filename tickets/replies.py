"""Replies (回复) to the citizen, their review (审核把关) and their delivery, per the procedures:

    回复内容一般包括办理单位、办理时间、办理情况、办理结果 … 回复方式可采用文字、语音、图片、视频等。
    公司对回复内容要审核把关。

A reply is submitted with all four parts (the ticket goes in_progress -> reply_review) and may carry
attachments (tickets.attachments). A reviewer approves it — only then does it count as sent: the ticket is
replied, the deadlines it meets are met at that moment and the callback's starts — or returns it with a
reason (back to in_progress, the unit replies again). An approved reply is queued for delivery to the citizen
by the configured channel; whoever delivers it (the callback call, an operator) records the outcome with
`record_delivery`. Functions flush but never commit, as in tickets.service.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets import service
from tickets.lifecycle import Action
from tickets.models import Reply, Ticket, utcnow

REPLY_PARTS = {"handling_unit": "办理单位", "handled_at": "办理时间", "situation": "办理情况", "result": "办理结果"}
CLOCK_SKEW = timedelta(minutes=5)  # a 办理时间 slightly ahead of the server's clock is a clock, not a lie


def submit_reply(session: Session, ticket_id: int, parts: Mapping[str, Any], *, actor: str,
                 rules: service.TicketRules, now: datetime | None = None) -> Reply:
    """The responsible side's reply, with all four parts, for review. ValueError names a missing or wrong part;
    InvalidTransition when the ticket is not being worked on."""
    ticket = service.get_ticket(session, ticket_id)
    service.ensure_editable(ticket)
    now = now or utcnow()
    values = _checked_parts(parts, ticket, now)
    service.transition(session, ticket.id, Action.REPLY, actor=actor, rules=rules, now=now, with_reply=True,
                       note=f"{values['handling_unit']}: {values['result']}")
    reply = Reply(ticket_id=ticket.id, author=actor, submitted_at=now, status="pending_review", **values)
    session.add(reply)
    session.flush()
    return reply


def _checked_parts(parts: Mapping[str, Any], ticket: Ticket, now: datetime) -> dict[str, Any]:
    unknown = sorted(set(parts) - set(REPLY_PARTS))
    if unknown:
        raise ValueError(f"{unknown[0]}: not a part of a reply; a reply has {', '.join(REPLY_PARTS)}")
    values = {}
    for name, label in REPLY_PARTS.items():
        value = parts.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError(f"{name}: a reply states {label}")
        values[name] = value.strip() if isinstance(value, str) else value
    handled_at = values["handled_at"]
    if not isinstance(handled_at, datetime) or handled_at.tzinfo is None:
        raise ValueError("handled_at: a time with its time zone is required")
    if handled_at > now + CLOCK_SKEW:
        raise ValueError("handled_at: the work cannot have been done in the future")
    if ticket.received_at is not None and handled_at < ticket.received_at:
        raise ValueError("handled_at: the work cannot predate the citizen's request")
    return values


def get_reply(session: Session, reply_id: int) -> Reply:
    reply = session.get(Reply, reply_id)
    if reply is None:
        raise service.NotFound(f"no reply with id {reply_id}")
    return reply


def replies_of(session: Session, ticket_id: int) -> list[Reply]:
    return list(session.scalars(select(Reply).where(Reply.ticket_id == ticket_id).order_by(Reply.id)))


def review_reply(session: Session, reply_id: int, *, approve: bool, actor: str, rules: service.TicketRules,
                 note: str | None = None, now: datetime | None = None) -> Reply:
    """审核把关: approve (the reply counts as sent, queued for delivery by the configured channel) or return it
    with the reason (the unit works on and replies again). Conflict when it was already reviewed."""
    reply = get_reply(session, reply_id)
    if reply.status != "pending_review":
        raise service.Conflict(f"reply {reply_id} was already {reply.status}")
    if not approve and not (note or "").strip():
        raise ValueError("note: say why the reply goes back")
    now = now or utcnow()
    action = Action.APPROVE_REPLY if approve else Action.RETURN_REPLY
    service.transition(session, reply.ticket_id, action, actor=actor, rules=rules, now=now, with_reply=True,
                       note=note)
    reply.status = "approved" if approve else "returned"
    reply.reviewer, reply.reviewed_at, reply.review_note = actor, now, note
    if approve:
        reply.channel = rules.procedures.reply_channel
    session.flush()
    return reply


def replies_awaiting_delivery(session: Session, *, channel: str | None = None, limit: int = 100) -> list[Reply]:
    """Approved replies not yet delivered to the citizen, oldest approval first: the callback call's work
    queue (channel 'phone'), or an operator's for other channels."""
    statement = select(Reply).where(Reply.status == "approved", Reply.delivered_at.is_(None))
    if channel is not None:
        statement = statement.where(Reply.channel == channel)
    return list(session.scalars(statement.order_by(Reply.reviewed_at, Reply.id).limit(limit)))


def record_delivery(session: Session, reply_id: int, *, delivered: bool, actor: str, note: str | None = None,
                    now: datetime | None = None) -> Reply:
    """The outcome of one attempt to give an approved reply to the citizen (read on the phone, sent by SMS,
    or the citizen could not be reached). A delivered reply leaves the queue; a failed attempt stays in it
    and is counted. Both are in the ticket's history."""
    reply = get_reply(session, reply_id)
    if reply.status != "approved":
        raise service.Conflict(f"reply {reply_id} is {reply.status}: only an approved reply is delivered")
    if reply.delivered_at is not None:
        raise service.Conflict(f"reply {reply_id} was delivered at {reply.delivered_at.isoformat()}")
    now = now or utcnow()
    reply.delivery_attempts += 1
    reply.delivery_note = note
    if delivered:
        reply.delivered_at = now
    ticket = reply.ticket
    text = f"reply {reply.id} by {reply.channel}" + (f": {note}" if note else "")
    service.record_event(session, ticket, actor, "reply_delivered" if delivered else "reply_not_delivered",
                         ticket.status, text, now)
    session.flush()
    return reply
