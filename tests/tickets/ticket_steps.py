"""Moving tickets through their lifecycle in tests, at given times, with the reply (回复) done the way the
procedures require: submitted with its four parts and approved by a reviewer before it counts as sent."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tickets import replies, service
from tickets.lifecycle import Action
from tickets.models import Reply


def reply_and_approve(session: Session, rules: service.TicketRules, ticket_id: int, at: datetime, *,
                      unit: str = "市水务局", actor: str = "unit staff") -> Reply:
    reply = replies.submit_reply(session, ticket_id, {"handling_unit": unit, "handled_at": at,
                                                      "situation": "已派人到现场处理", "result": "已修复"},
                                 actor=actor, rules=rules, now=at)
    return replies.review_reply(session, reply.id, approve=True, actor="reviewer", rules=rules, now=at)


def walk(session: Session, rules: service.TicketRules, ticket_id: int, start: datetime, *steps) -> None:
    """Apply (action, hours after `start`, extra arguments) steps; Action.REPLY replies and has it approved."""
    for action, hours, extra in steps:
        at = start + timedelta(hours=hours)
        if action == Action.REPLY:
            reply_and_approve(session, rules, ticket_id, at)
        else:
            service.transition(session, ticket_id, action, actor="op", rules=rules, now=at, **extra)
