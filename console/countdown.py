"""A ticket's deadline as the queue shows it: time left or overdue, and whether it is nearly due.

"Nearly due" is the domain's own reminder point (remind_at, 80 % of the time used, when 催办 fires), so the
page highlights exactly the tickets the centre is about to remind. The page's script keeps the text
ticking from the same data attributes (static/console.js, `tick`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tickets.models import Ticket
from tickets.service import SETTLED_STATUSES

from console.i18n import translate


@dataclass(frozen=True)
class Countdown:
    state: str                  # none | ok | near | overdue | settled | late (settled after the deadline)
    seconds_left: int | None    # negative when overdue
    text: str


def duration_text(seconds: int, lang: str) -> str:
    """Largest two units: '1天3小时' / '1 d 3 h', '5分' / '5 min'."""
    minutes = abs(seconds) // 60
    days, hours, minutes = minutes // 1440, minutes % 1440 // 60, minutes % 60
    parts = [(days, "unit.d"), (hours, "unit.h"), (minutes, "unit.m")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return ("" if lang == "zh" else " ").join(f"{value}{translate(unit, lang)}" for value, unit in parts[:2])


def countdown(ticket: Ticket, now: datetime, lang: str) -> Countdown:
    if ticket.status in SETTLED_STATUSES:
        if ticket.overdue:
            return Countdown("late", None, translate("deadline.late", lang))
        return Countdown("settled", None, translate("deadline.settled", lang))
    if ticket.response_due_at is None:
        return Countdown("none", None, translate("deadline.none", lang))
    left = int((ticket.response_due_at - now).total_seconds())
    if left < 0:
        return Countdown("overdue", left, translate("deadline.over", lang, time=duration_text(left, lang)))
    near = ticket.remind_at is not None and now >= ticket.remind_at
    return Countdown("near" if near else "ok", left, translate("deadline.left", lang, time=duration_text(left, lang)))
