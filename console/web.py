"""Rendering the console's pages: the Jinja2 environment, what every page gets (user, language, CSRF
token, navigation), and formatting of times in Asia/Shanghai, the hotline's clock."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from console.auth import ConsoleUser
from console.i18n import HTML_LANG, translate

SHANGHAI = ZoneInfo("Asia/Shanghai")
HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")


def local_time(value: datetime | None, with_seconds: bool = False) -> str:
    if value is None:
        return "—"
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def datetime_local(value: datetime) -> str:
    """The value of an <input type=datetime-local> (Shanghai time, to the minute)."""
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


templates.env.filters["local"] = local_time
templates.env.filters["datetime_local"] = datetime_local


def render(request: Request, template: str, user: ConsoleUser | None, lang: str, status_code: int = 200,
           **context: Any) -> Response:
    def t(key: str, **values: Any) -> str:
        return translate(key, lang, **values)

    return templates.TemplateResponse(request, template, {
        "user": user, "lang": lang, "html_lang": HTML_LANG[lang], "t": t,
        "csrf": user.csrf if user else "", "path": request.url.path, **context}, status_code=status_code)
