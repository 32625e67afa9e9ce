"""The node's one FastAPI app: the tickets API, the calls API, and whatever else the node serves over HTTP.

Routers live in the package that owns their resource (tickets.api, app.calls_api, ...); this is the one
place they are mounted, so a new HTTP surface (e.g. the operator console) is added in `build_http_app`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

import console
from app.calls_api import calls_router
from app.live_calls import LiveCallStore
from ivr.node import IvrNode
from tickets.api import TicketsContext, install
from tickets.service import TicketRules


def build_http_app(session_factory: sessionmaker[Session], rules: TicketRules, node: IvrNode,
                   console_settings: console.ConsoleSettings, live: LiveCallStore | None = None,
                   health_sections: Mapping[str, Callable[[], dict[str, Any]]] | None = None) -> FastAPI:
    """The API under /api and the operator console at / (console.install: its pages, recordings, transcripts).
    `health_sections`: extra parts of /api/health (see app.calls_api)."""
    app = FastAPI(title="12345 hotline", version="1")
    install(app, TicketsContext(session_factory, rules))
    app.include_router(calls_router(node, health_sections))
    console.install(app, console_settings, live)
    return app
