"""Sign-in with an API token, sign-out, and the language switch."""
from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from console.auth import PageUser, clear_session_cookie, new_session, set_session_cookie
from console.i18n import LANG_COOKIE, LANGUAGES, language_of
from console.web import render
from tickets.auth import authenticate

router = APIRouter(include_in_schema=False)


def local_target(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never an open redirect)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "/") -> Response:
    return render(request, "signin.html", None, language_of(request), next=local_target(next), error=False)


@router.post("/sign-in")
def sign_in(request: Request, token: Annotated[str, Form(max_length=500)] = "",
            next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    """The token is checked once here; the session cookie then refers to the token's id, not the token."""
    with request.app.state.tickets.session_factory() as session:
        principal = authenticate(session, token.strip()) if token.strip() else None
    if principal is None or principal.token_id is None:
        return render(request, "signin.html", None, language_of(request), status_code=401,
                      next=local_target(next), error=True)
    response = RedirectResponse(local_target(next), status_code=303)
    set_session_cookie(response, request, new_session(principal.token_id))
    return response


@router.post("/sign-out")
def sign_out(user: PageUser) -> Response:
    response = RedirectResponse("/sign-in", status_code=303)
    clear_session_cookie(response)
    return response


@router.get("/language/{lang}")
def switch_language(lang: str, request: Request, back: str = "/") -> Response:
    """A preference of the browser only (nothing on the server changes), so a plain link does it."""
    response = RedirectResponse(local_target(back), status_code=303)
    if lang in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
    return response
