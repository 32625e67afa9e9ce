"""Bearer-token authentication with the roles: operator (every ticket), unit_staff (their unit's tickets
only), admin (operator rights plus units, holidays and tokens), reviewer (approves or returns replies: of one
unit when the token names it, else of all) and supervisor (the 廉政监督员: supervised and flagged tickets).
Tokens are random, shown once, and stored as SHA-256 so a copy of the database does not leak working
credentials.

Every request looks its token up (one indexed read), so a revoked token is refused at once on every node;
`last_used_at` is written at most once a minute per token so that reads stay reads.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tickets.models import ROLES, ApiToken, MemberUnit, Ticket, utcnow

LAST_USED_RESOLUTION = timedelta(minutes=1)


class LastAdminToken(Exception):
    """Revoking this token would leave no administrator who could issue another."""


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    unit_id: int | None = None
    token_id: int | None = None  # which token this is (a console session refers to it, never to the token)

    @property
    def unit_scoped(self) -> bool:
        """Unit staff, and a unit's own reviewer, see only their unit's tickets."""
        return self.role in ("unit_staff", "reviewer") and self.unit_id is not None

    def may_see(self, ticket: Ticket) -> bool:
        return not self.unit_scoped or ticket.unit_id == self.unit_id


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, name: str, role: str, unit_id: int | None = None,
                token: str | None = None) -> tuple[ApiToken, str]:
    """Store a new token (random unless given, e.g. a configured bootstrap token) and return it in clear.
    Giving a token that was revoked does not bring it back: configure a new one."""
    if role not in ROLES:
        raise ValueError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    if role == "unit_staff" and unit_id is None:
        raise ValueError("unit_id: unit staff tokens belong to a unit")
    if role in ("operator", "admin", "supervisor") and unit_id is not None:
        raise ValueError(f"unit_id: {role} tokens belong to the centre, not to a unit")
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


def identify(session: Session, token: str) -> tuple[Principal, datetime | None] | None:
    """The principal of a valid, unrevoked token and when the token was last used; None otherwise."""
    row = session.execute(select(ApiToken.id, ApiToken.name, ApiToken.role, ApiToken.unit_id,
                                 ApiToken.last_used_at).where(ApiToken.token_sha256 == token_digest(token),
                                                              ApiToken.revoked_at.is_(None))).first()
    if row is None:
        return None
    return Principal(name=row.name, role=row.role, unit_id=row.unit_id, token_id=row.id), row.last_used_at


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal of a valid, unrevoked token; None otherwise."""
    found = identify(session, token)
    return None if found is None else found[0]


def principal_by_token_id(session: Session, token_id: int) -> Principal | None:
    """Who a signed-in session belongs to, checked again at each request (a token revoked ends its sessions)."""
    record = session.get(ApiToken, token_id)
    if record is None or record.revoked_at is not None:
        return None
    return Principal(name=record.name, role=record.role, unit_id=record.unit_id, token_id=record.id)


def needs_touch(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION


def touch(session: Session, token_id: int, now: datetime) -> None:
    """Record a use of the token (the caller commits)."""
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, token_id: int, now: datetime | None = None) -> ApiToken | None:
    """Revoke a token for good (a second revocation keeps the first time); None when there is no such token.
    Raises LastAdminToken rather than lock every administrator out."""
    record = session.get(ApiToken, token_id)
    if record is None or record.revoked_at is not None:
        return record
    if record.role == "admin":
        admins = session.scalar(select(func.count()).select_from(ApiToken).where(
            ApiToken.role == "admin", ApiToken.revoked_at.is_(None)))
        if admins <= 1:
            raise LastAdminToken(f"token {token_id} is the last administrator token; issue another first")
    record.revoked_at = now or utcnow()
    session.flush()
    return record
