"""Signing in to the console with an API bearer token, and who is asking on every request.

After sign-in the browser holds a session cookie (HttpOnly, SameSite=Lax, Secure over HTTPS): the token's
id, a random nonce and an expiry, signed with HMAC-SHA256 under the console's secret. The token itself is
never stored in the browser, and its row is looked up again at each request, so deleting a token ends its
sessions. State-changing requests made with the cookie must carry the session's CSRF token (a hidden form
field or the X-CSRF-Token header) and, when the browser sends one, an Origin of this host; requests with a
bearer token need neither (a browser never adds one by itself).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, status

from tickets.auth import Principal, authenticate, principal_by_token_id

COOKIE = "hotline_console"
SESSION_SECONDS = 12 * 3600  # one shift
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class SessionCookie:
    token_id: int
    nonce: str
    expires: int  # unix seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(secret: bytes, cookie: SessionCookie) -> str:
    payload = _b64(json.dumps([cookie.token_id, cookie.nonce, cookie.expires]).encode())
    return f"{payload}.{_b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())}"


def unseal(secret: bytes, value: str | None, now: float | None = None) -> SessionCookie | None:
    """The cookie's content when its signature is ours and it has not expired; None for anything else."""
    if not value or len(value) > 300 or value.count(".") != 1:
        return None
    payload, signature = value.split(".")
    expected = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        token_id, nonce, expires = json.loads(_unb64(payload))
    except (ValueError, TypeError):
        return None
    if not (isinstance(token_id, int) and isinstance(nonce, str) and isinstance(expires, int)):
        return None
    if expires <= (time.time() if now is None else now):
        return None
    return SessionCookie(token_id, nonce, expires)


def new_session(token_id: int, now: float | None = None) -> SessionCookie:
    return SessionCookie(token_id, secrets.token_urlsafe(16), int((time.time() if now is None else now)
                                                                  + SESSION_SECONDS))


def csrf_token(secret: bytes, cookie: SessionCookie) -> str:
    """Bound to the session: a page's forms carry it, a foreign site cannot read or guess it."""
    return hmac.new(secret, f"csrf:{cookie.nonce}".encode(), hashlib.sha256).hexdigest()[:40]


@dataclass(frozen=True)
class ConsoleUser:
    principal: Principal
    csrf: str  # '' when the request came with a bearer token

    @property
    def may_edit(self) -> bool:
        """Operators and administrators edit tickets and transcripts; unit staff work their own tickets."""
        return self.principal.role in ("operator", "admin")

    @property
    def may_supervise(self) -> bool:
        """Statistics are for the centre: operators, administrators and supervisors (督办)."""
        return self.principal.role in ("operator", "admin", "supervisor")

    @property
    def may_read_notifications(self) -> bool:
        """催办/督办 notifications: units their own, the centre and the supervisor (tickets.notifications)."""
        return self.principal.role in ("operator", "admin", "unit_staff", "supervisor")

    @property
    def may_reply(self) -> bool:
        """Who writes a reply to the citizen (tickets.procedures_api's Replier)."""
        return self.principal.role in ("operator", "unit_staff", "admin")

    @property
    def may_review_replies(self) -> bool:
        """Who approves or returns a reply (tickets.procedures_api's Reviewer)."""
        return self.principal.role in ("reviewer", "admin")


class SignInRequired(Exception):
    """A page was asked for without a session: the console answers with the sign-in page."""


def _secret(request: Request) -> bytes:
    return request.app.state.console.settings.session_secret


def _principal_for(request: Request, token_id: int) -> Principal | None:
    with request.app.state.tickets.session_factory() as session:
        return principal_by_token_id(session, token_id)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # not sent by every browser on same-origin form posts; the CSRF token still holds
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def _check_csrf(request: Request, expected: str) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = (await request.form()).get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, expected) or not _same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="missing or wrong CSRF token; reload the page")


async def session_user(request: Request) -> ConsoleUser | None:
    """The signed-in user of the cookie, CSRF-checked for state-changing requests; None without a session."""
    secret = _secret(request)
    cookie = unseal(secret, request.cookies.get(COOKIE))
    if cookie is None:
        return None
    principal = _principal_for(request, cookie.token_id)
    if principal is None:
        return None
    user = ConsoleUser(principal, csrf_token(secret, cookie))
    if request.method not in SAFE_METHODS:
        await _check_csrf(request, user.csrf)
    return user


async def page_user(request: Request) -> ConsoleUser:
    """For the console's pages and forms: the signed-in user, or the sign-in page."""
    user = await session_user(request)
    if user is None:
        raise SignInRequired()
    return user


async def api_viewer(request: Request) -> Principal:
    """For the JSON endpoints the console shares with API clients: a bearer token, or the console's session."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        with request.app.state.tickets.session_factory() as session:
            principal = authenticate(session, token.strip())
        if principal is not None:
            return principal
    else:
        user = await session_user(request)
        if user is not None:
            return user.principal
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="a valid bearer token or console session is required",
                        headers={"WWW-Authenticate": "Bearer"})


PageUser = Annotated[ConsoleUser, Depends(page_user)]
ApiViewer = Annotated[Principal, Depends(api_viewer)]


def set_session_cookie(response: Any, request: Request, cookie: SessionCookie) -> None:
    response.set_cookie(COOKIE, seal(_secret(request), cookie), max_age=SESSION_SECONDS, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path="/")


def clear_session_cookie(response: Any) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
