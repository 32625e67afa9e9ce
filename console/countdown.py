"""A ticket's deadline as the queue shows it: the nearest deadline it is still under (the response, a unit's
reply, an appeal's step, the callback: tickets.deadline_tracking), time left or overdue, and whether it is
nearly due.

"Nearly due" is the deadline's own reminder point (its remind_at, when 催办 fires), so the page highlights
exactly the tickets the centre is about to remind. The page's script keeps the text ticking from the same
data attributes (static/console.js, `tick`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tickets.models import Ticket
from tickets.service import SETTLED_STATUSES

from console.i18n import translate


@dataclass(frozen=True)
class Countdown:
    state: str                  # none | ok | near | overdue | settled | late (nothing open, a deadline was missed)
    seconds_left: int | None    # negative when overdue
    text: str
    due: datetime | None = None
    remind: datetime | None = None
    kind: str | None = None     # which deadline (response, unit_reply, callback, ...)


def duration_text(seconds: int, lang: str) -> str:
    """Largest two units: '1天3小时' / '1 d 3 h', '5分' / '5 min'."""
    minutes = abs(seconds) // 60
    days, hours, minutes = minutes // 1440, minutes % 1440 // 60, minutes % 60
    parts = [(days, "unit.d"), (hours, "unit.h"), (minutes, "unit.m")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return ("" if lang == "zh" else " ").join(f"{value}{translate(unit, lang)}" for value, unit in parts[:2])


def countdown(ticket: Ticket, now: datetime, lang: str) -> Countdown:
    pending = [deadline for deadline in ticket.deadlines if deadline.is_open]
    if not pending:
        if ticket.overdue:
            return Countdown("late", None, translate("deadline.late", lang))
        state = "settled" if ticket.status in SETTLED_STATUSES and ticket.status != "draft" else "none"
        return Countdown(state, None, translate(f"deadline.{state}", lang))
    deadline = min(pending, key=lambda d: d.due_at)
    left = int((deadline.due_at - now).total_seconds())
    if left < 0:
        text, state = translate("deadline.over", lang, time=duration_text(left, lang)), "overdue"
    else:
        text = translate("deadline.left", lang, time=duration_text(left, lang))
        state = "near" if now >= deadline.remind_at else "ok"
    return Countdown(state, left, text, deadline.due_at, deadline.remind_at, deadline.kind)
