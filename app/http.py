"""The node's one FastAPI app: the tickets API, the calls API, and whatever else the node serves over HTTP.

Routers live in the package that owns their resource (tickets.api, app.calls_api, ...); this is the one
place they are mounted, so a new HTTP surface (e.g. the operator console) is added in `build_http_app`.
"""
from __future__ import annotations

import socket
from collections.abc import Collection

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

import console
from app.calls_api import calls_router
from app.live_calls import LiveCallStore
from app.shared_calls import SharedCalls
from app.three_way_api import three_way_router
from app.wiring import Application
from tickets.api import TicketsContext, install
from tickets.callbacks import CallbackPolicy
from tickets.service import TicketRules


def build_http_app(session_factory: sessionmaker[Session], rules: TicketRules, application: Application,
                   console_settings: console.ConsoleSettings, live: LiveCallStore | None = None, *,
                   extensions: Collection[str] = (), shared: SharedCalls | None = None,
                   callback_policy: CallbackPolicy | None = None) -> FastAPI:
    """The API under /api and the operator console at / (console.install: its pages, recordings, transcripts).
    `extensions`: configured numbers the three-way API may dial besides the member-unit directory. `shared`:
    every node's calls (app.shared_calls) for the calls API and the console's live view; None: this node's."""
    if shared is None:
        shared = SharedCalls(socket.gethostname(), application.node, live)
    app = FastAPI(title="12345 hotline", version="1")
    install(app, TicketsContext(session_factory, rules, callback_policy or CallbackPolicy()))
    app.include_router(calls_router(application.node, shared, application.speech_load))
    app.include_router(three_way_router(application.three_way, application.announcements, extensions))
    console.install(app, console_settings, shared if live is not None else None, application.speech_load)
    return app
