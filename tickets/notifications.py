"""Notifications: who must act on a 催办 (remind), a 督办 (supervise) or a 推诿 flag (evasion), as rows someone
lists and acknowledges.

The scheduler writes a notification in the same transaction as the claim of the deadline it fired for, so
there is exactly one per 催办/督办 whatever the number of nodes; the row goes to the unit handling the ticket
at that moment (`responsible_unit`; `unit_id` None: the ticket is at the centre, the operators act). When
that unit has a webhook, the row is also queued for it (`webhook_status` pending), and tickets.webhooks
posts it later: the scheduler never waits for a unit's server.

推诿 (shirking, 推诿扯皮 in the procedures) is counted per ticket from what is on record: each time a unit sent
the ticket back as misrouted (the history's return_misrouted) and each deadline supervised while a unit had
the ticket (its 督办 notification). The second such incident flags the ticket once (`evasion_flagged_at`) for
the supervisor (廉政监督员) and notifies the unit concerned.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.orm import Session

from tickets.auth import Principal
from tickets.deadlines import DeadlineKind
from tickets.lifecycle import Action, Status
from tickets.models import MemberUnit, Notification, Ticket, TicketEvent

REMIND, SUPERVISE, EVASION = "remind", "supervise", "evasion"
FLAGGER = "supervision"  # the history's actor of a 推诿 flag raised by a unit's return
# Incidents of 推诿 on one ticket that flag it.
EVASION_THRESHOLD = 2
# What a supervisor follows: supervision and shirking, not every reminder.
SUPERVISOR_KINDS = (SUPERVISE, EVASION)


# The ticket is in a unit's hands from dispatch until its reply is approved; then the callback (回访) is the
# centre's work again.
HELD_BY_UNIT = (Status.DISPATCHED, Status.SIGNED, Status.IN_PROGRESS, Status.REPLY_REVIEW)


def responsible_unit(ticket: Ticket, deadline_kind: str) -> int | None:
    """Whose deadline this is now: the unit's while it has the ticket, else the centre's (None). A unit
    only proposed for a ticket not yet dispatched is not responsible yet, and the callback never is."""
    if deadline_kind == DeadlineKind.CALLBACK or ticket.status not in HELD_BY_UNIT:
        return None
    return ticket.unit_id


def notify(session: Session, ticket: Ticket, kind: str, message: str, now: datetime, *,
           unit_id: int | None, deadline_kind: str | None = None) -> Notification:
    """Write one notification for `unit_id` (None: the centre), queued for the unit's webhook when it has one."""
    unit = session.get(MemberUnit, unit_id) if unit_id is not None else None
    url = unit.webhook_url if unit is not None else None
    notification = Notification(ticket=ticket, unit_id=unit_id, kind=kind, deadline_kind=deadline_kind,
                                message=message, created_at=now, webhook_url=url,
                                webhook_status="pending" if url else "none", webhook_next_at=now if url else None)
    session.add(notification)
    session.flush()
    return notification


def evasion_incidents(session: Session, ticket_id: int) -> int:
    """Returns as misrouted plus deadlines supervised while a unit had the ticket."""
    returns = session.scalar(select(func.count()).select_from(TicketEvent).where(
        TicketEvent.ticket_id == ticket_id, TicketEvent.action == Action.RETURN_MISROUTED.value))
    overdue_at_unit = session.scalar(select(func.count()).select_from(Notification).where(
        Notification.ticket_id == ticket_id, Notification.kind == SUPERVISE, Notification.unit_id.is_not(None)))
    return returns + overdue_at_unit


def flag_if_repeated(session: Session, ticket: Ticket, unit_id: int | None, now: datetime) -> str | None:
    """Flag the ticket at its second 推诿 incident (once; later incidents do not flag it again) and notify
    `unit_id`, the unit concerned. Returns the note for the caller's history line, None when not flagged."""
    if ticket.evasion_flagged_at is not None:
        return None
    session.flush()
    incidents = evasion_incidents(session, ticket.id)
    if incidents < EVASION_THRESHOLD:
        return None
    ticket.evasion_flagged_at = now
    note = f"推诿: returned or overdue at a unit {incidents} times; flagged for the supervisor"
    notify(session, ticket, EVASION, note, now, unit_id=unit_id)
    return note


@dataclass(frozen=True)
class Audience:
    """Whose notifications a reader sees: a unit's (unit staff), the supervisor's kinds, or all (the centre)."""

    unit_id: int | None = None
    kinds: tuple[str, ...] = ()

    @classmethod
    def of(cls, principal: Principal) -> Audience:
        """Unit staff: their unit's; the supervisor: 督办 and 推诿 of every unit; the centre: everything."""
        if principal.role == "unit_staff":
            return cls(unit_id=principal.unit_id)
        if principal.role == "supervisor":
            return cls(kinds=SUPERVISOR_KINDS)
        return cls()

    def condition(self) -> ColumnElement[bool]:
        condition: ColumnElement[bool] = true()
        if self.unit_id is not None:
            condition = Notification.unit_id == self.unit_id
        if self.kinds:
            condition = condition & Notification.kind.in_(self.kinds)
        return condition


def list_notifications(session: Session, audience: Audience, *, unread_only: bool = False,
                       kind: str | None = None, before_id: int | None = None,
                       limit: int = 50) -> list[Notification]:
    """Newest first; page on with `before_id` (the last id of the previous page)."""
    statement = select(Notification).where(audience.condition())
    if unread_only:
        statement = statement.where(Notification.acknowledged_at.is_(None))
    if kind is not None:
        statement = statement.where(Notification.kind == kind)
    if before_id is not None:
        statement = statement.where(Notification.id < before_id)
    return list(session.scalars(statement.order_by(Notification.id.desc()).limit(limit)))


def unread_count(session: Session, audience: Audience) -> int:
    return session.scalar(select(func.count()).select_from(Notification).where(
        audience.condition(), Notification.acknowledged_at.is_(None)))


def acknowledge(session: Session, audience: Audience, notification_id: int, actor: str,
                now: datetime) -> Notification | None:
    """Mark read (the first reader and time stay); None when there is none the audience may see."""
    notification = session.scalar(select(Notification).where(Notification.id == notification_id,
                                                             audience.condition()))
    if notification is not None and notification.acknowledged_at is None:
        notification.acknowledged_at, notification.acknowledged_by = now, actor
        session.flush()
    return notification


def supervised_tickets(session: Session, settled_statuses: tuple[str, ...], *, include_settled: bool = False,
                       limit: int = 100) -> list[Ticket]:
    """The supervisor's list: tickets under 督办 or flagged for 推诿, the longest supervised first; settled
    ones (replied, closed...) only when asked."""
    statement = select(Ticket).where(or_(Ticket.supervised_at.is_not(None), Ticket.evasion_flagged_at.is_not(None)))
    if not include_settled:
        statement = statement.where(Ticket.status.not_in(list(settled_statuses)))
    order = func.coalesce(Ticket.supervised_at, Ticket.evasion_flagged_at)
    return list(session.scalars(statement.order_by(order, Ticket.id).limit(limit)))
