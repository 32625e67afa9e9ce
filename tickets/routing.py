"""Which member unit should take a ticket (按责转办, 归口管理): proposed from the units' `categories` (the
ticket's topic, or a category named in its content) and `areas` (a place named in the address or the
content); an operator confirms by dispatching (POST /api/tickets/{id}/transitions, action dispatch, the unit's
id), which starts the unit's reply deadline. Nothing is dispatched here.

The ranking a hotline supervisor expects: a unit responsible for the matter in the caller's area first, then
one responsible for the matter anywhere, then one that only covers the area; ties by unit name.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.models import MemberUnit, Ticket


@dataclass(frozen=True)
class UnitProposal:
    unit_id: int
    unit_name: str
    reasons: list[str] = field(default_factory=list)  # why, one line per matched category or area
    by_category: bool = False
    by_area: bool = False

    @property
    def rank(self) -> tuple[int, int]:
        return (0 if self.by_category else 1, 0 if self.by_area else 1)


def propose_units(session: Session, ticket: Ticket) -> list[UnitProposal]:
    """The units that fit `ticket`, best first (empty when none fits: the operator chooses)."""
    proposals = []
    for unit in session.scalars(select(MemberUnit).order_by(MemberUnit.name)):
        proposal = _fit(unit, ticket)
        if proposal.reasons:
            proposals.append(proposal)
    return sorted(proposals, key=lambda proposal: proposal.rank)  # stable: names stay in order within a rank


def _fit(unit: MemberUnit, ticket: Ticket) -> UnitProposal:
    content, address = ticket.content or "", ticket.address or ""
    by_category = []
    for category in filter(None, unit.categories or []):
        if category == ticket.topic:
            by_category.append(f"topic {category} is among its categories")
        elif category in content:
            by_category.append(f"the content names its category {category}")
    by_area = []
    for area in filter(None, unit.areas or []):
        if area in address:
            by_area.append(f"the address is in its area {area}")
        elif area in content:
            by_area.append(f"the content names its area {area}")
    return UnitProposal(unit.id, unit.name, by_category + by_area, bool(by_category), bool(by_area))
