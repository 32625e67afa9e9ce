"""The operator console: a web page served by the node's own FastAPI application at `/`, in Simplified
Chinese with an English switch, that works without internet access (every script, style and font comes
from this package or the machine).

Pages (server-rendered with Jinja2, a little JavaScript): the ticket queue, call review (a ticket's audio
with its transcript, corrections, copying into the ticket, lifecycle actions), the review queue, live calls
(server-sent events), statistics (SVG charts) and the installed call flows (Mermaid, vendored). JSON
endpoints under /api: a ticket's recordings (served with byte ranges by recordings.serving), its transcript
with word timings and corrections, word corrections, the review queue.

`install(app, settings, live, speech)` mounts it on an application that already has the ticket API installed
(tickets.api.install: the console uses its database and rules through app.state.tickets).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse, Response

from console import api, flows, live, notices, queue, reports, review, signin, statistics
from console.auth import SignInRequired, api_viewer
from console.catalog import TicketRecordings
from console.live import LiveCalls
from console.web import HERE
from recordings.serving import recordings_router
from tickets.review import LOW_CONFIDENCE


@dataclass(frozen=True)
class ConsoleSettings:
    session_secret: bytes  # signs session cookies; every node behind one address needs the same
    flows_dir: Path
    active_flow: str = ""  # the flow answering calls on this node, marked on the flows page
    operator_seat: str = ""  # offered as the seat to pick a live call up to (each operator can change it)
    low_confidence: float = LOW_CONFIDENCE


@dataclass(frozen=True)
class ConsoleContext:
    settings: ConsoleSettings
    live: LiveCalls | None  # None on a node without call flows: the live page says so
    speech: Callable[[], dict[str, Any]] | None = None  # this node's recognisers' load (asr.PoolMetrics)


def install(app: FastAPI, settings: ConsoleSettings, live_calls: LiveCalls | None = None,
            speech_load: Callable[[], dict[str, Any]] | None = None) -> None:
    if len(settings.session_secret) < 16:
        raise ValueError("session_secret: at least 16 bytes")
    app.state.console = ConsoleContext(settings, live_calls, speech_load)
    context = app.state.tickets  # tickets.api.install ran first
    app.include_router(recordings_router(TicketRecordings(context.session_factory), api_viewer), prefix="/api")
    app.include_router(api.router, prefix="/api")
    for module in (signin, queue, review, live, notices, statistics, reports, flows):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(SignInRequired)
    def sign_in_first(request: Request, error: SignInRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/sign-in?next={quote(target)}", status_code=303)
