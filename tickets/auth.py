"""Bearer-token authentication with three roles: operator (every ticket), unit_staff (their unit's tickets
only) and admin (operator rights plus units, holidays and tokens). Tokens are random, shown once, and stored
as SHA-256 so a copy of the database does not leak working credentials."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.models import ROLES, ApiToken, MemberUnit, Ticket


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    unit_id: int | None = None
    token_id: int | None = None  # which token this is (a console session refers to it, never to the token)

    def may_see(self, ticket: Ticket) -> bool:
        return self.role != "unit_staff" or ticket.unit_id == self.unit_id


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, name: str, role: str, unit_id: int | None = None,
                token: str | None = None) -> tuple[ApiToken, str]:
    """Store a new token (random unless given, e.g. a configured bootstrap token) and return it in clear."""
    if role not in ROLES:
        raise ValueError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    if role == "unit_staff" and unit_id is None:
        raise ValueError("unit_id: unit staff tokens belong to a unit")
    if unit_id is not None and session.get(MemberUnit, unit_id) is None:
        raise ValueError(f"unit_id: no member unit with id {unit_id}")
    token = token or secrets.token_urlsafe(32)
    record = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == token_digest(token)))
    if record is None:
        record = ApiToken(token_sha256=token_digest(token), name=name, role=role, unit_id=unit_id)
        session.add(record)
    else:
        record.name, record.role, record.unit_id = name, role, unit_id
    session.flush()
    return record, token


def authenticate(session: Session, token: str) -> Principal | None:
    record = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == token_digest(token)))
    return None if record is None else _principal(record)


def principal_by_token_id(session: Session, token_id: int) -> Principal | None:
    """Who a signed-in session belongs to, checked again at each request (a token deleted ends its sessions)."""
    record = session.get(ApiToken, token_id)
    return None if record is None else _principal(record)


def _principal(record: ApiToken) -> Principal:
    return Principal(name=record.name, role=record.role, unit_id=record.unit_id, token_id=record.id)
