"""Member units keep their own knowledge-base entries (第七条(四) 采编、审核、更新): unit staff write and update
their unit's entries, an operator reviews each change (approve or return) before the phone uses it.

- A unit's new entry is not `approved` until an operator approves it; the phone never speaks it before.
- A unit's edit of an approved entry waits in `pending` while the phone keeps giving the approved text; the
  approval applies it, a return discards it (the note says why).
- An entry waits for review while it has a pending edit, or is unapproved and not reviewed since it was
  last submitted (a returned entry the unit edits again waits again).
Operators' own entries and edits apply at once (tickets.service), as before.

Plain functions over a Session like tickets.service: they flush, the caller commits.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tickets import service
from tickets.models import KnowledgeEntry, utcnow

UNIT_EDITABLE = ("question", "answer", "keywords", "language")  # the unit is the staff's own, never chosen


def submit_new(session: Session, fields: Mapping[str, Any], *, unit_id: int, actor: str) -> KnowledgeEntry:
    """A unit's new entry, waiting for review."""
    values = _unit_fields(fields)
    entry = service.create_knowledge(session, {**values, "unit_id": unit_id})
    entry.approved, entry.submitted_by = False, actor
    session.flush()
    return entry


def submit_edit(session: Session, entry_id: int, fields: Mapping[str, Any], *, unit_id: int,
                actor: str) -> KnowledgeEntry:
    """A unit's change of its own entry (another unit's entry is NotFound, as if it did not exist): held in
    `pending` while an approved text is in use, else made to the unapproved entry; either way it waits."""
    entry = unit_entry(session, entry_id, unit_id)
    values = _unit_fields(fields)
    if entry.approved:
        entry.pending = {**(entry.pending or {}), **values}
    else:
        for name, value in values.items():
            setattr(entry, name, value)
        entry.reviewed_at = entry.reviewed_by = None
    entry.submitted_by = actor
    session.flush()
    return entry


def review(session: Session, entry_id: int, *, approve: bool, actor: str, note: str | None = None,
           now: datetime | None = None) -> KnowledgeEntry:
    """An operator's decision on what the unit submitted. A return needs the reason (`note`)."""
    entry = service.get_knowledge(session, entry_id)
    if not waits_for_review(entry):
        raise service.Conflict(f"knowledge entry {entry_id} has nothing waiting for review")
    if not approve and not (note or "").strip():
        raise ValueError("note: say why the entry is returned to the unit")
    if approve:
        for name, value in (entry.pending or {}).items():
            setattr(entry, name, value)
        entry.approved = True
    entry.pending = None
    entry.reviewed_by, entry.reviewed_at, entry.review_note = actor, now or utcnow(), note
    session.flush()
    return entry


def waits_for_review(entry: KnowledgeEntry) -> bool:
    return entry.pending is not None or (not entry.approved and entry.reviewed_at is None)


def review_queue(session: Session, *, unit_id: int | None = None, limit: int = 100) -> list[KnowledgeEntry]:
    """What operators have to review, oldest entry first (a unit's own view when `unit_id` is given)."""
    statement = select(KnowledgeEntry).where(or_(
        KnowledgeEntry.pending.is_not(None),
        KnowledgeEntry.approved.is_(False) & KnowledgeEntry.reviewed_at.is_(None)))
    if unit_id is not None:
        statement = statement.where(KnowledgeEntry.unit_id == unit_id)
    # `pending` cleared by a review is a JSON null, which SQL's IS NOT NULL still counts: checked here.
    return [entry for entry in session.scalars(statement.order_by(KnowledgeEntry.id))
            if waits_for_review(entry)][:limit]


def unit_entry(session: Session, entry_id: int, unit_id: int) -> KnowledgeEntry:
    entry = session.get(KnowledgeEntry, entry_id)
    if entry is None or entry.unit_id != unit_id:
        raise service.NotFound(f"no knowledge entry with id {entry_id}")
    return entry


def _unit_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(UNIT_EDITABLE))
    if unknown:
        raise ValueError(f"{unknown[0]}: unit staff edit only {', '.join(UNIT_EDITABLE)} of their unit's entries")
    return dict(fields)
