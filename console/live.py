"""Live calls: the calls in progress with their flow node, elapsed time and what the recogniser heard,
updated through server-sent events; an operator picks a call up to their own seat. Above them, this node's
speech recognisers' load (the figures of /api/health's `speech`), so an operator sees when callers are
being served on keys because the recognisers are full or behind.

The console reads a `LiveCalls` store the application keeps (app.shared_calls.SharedCalls: this node's
calls from app.live_calls.LiveCallStore and, through Redis, every other node's): a snapshot and a version
number that changes with every update. A pick-up reaches the node that holds the call.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Form, HTTPException, Request
from starlette.responses import Response, StreamingResponse

from console.auth import PageUser
from console.i18n import language_of
from console.web import render

router = APIRouter(include_in_schema=False)
POLL_SECONDS = 0.25       # how often the event stream looks for a new version
HEARTBEAT_SECONDS = 15.0  # a comment line keeps proxies from closing an idle stream
SPEECH_SECONDS = 1.0      # the recognisers' load is sent at most this often, when its figures changed


class LiveCalls(Protocol):
    @property
    def version(self) -> int:
        """Changes whenever a call starts, moves, is heard or ends."""
        ...

    def snapshot(self) -> list[dict[str, Any]]:
        """The calls in progress: call_id, caller, started_at (ISO), flow, node, partial, heard (finals),
        picked_up_by and picked_up_to (the operator and seat, once picked up), ivr_node (the IVR node
        holding the call)."""
        ...

    def pick_up(self, call_id: str, seat: str, by: str) -> bool:
        """Transfer the call to `seat` for operator `by`; False when the call is no longer in progress."""
        ...


def _store(request: Request) -> LiveCalls | None:
    return request.app.state.console.live


def speech_figures(speech_load: Callable[[], dict[str, Any]] | None) -> dict[str, Any] | None:
    """What the page shows of the recognisers' load (asr.PoolMetrics as a dict), rounded to what an operator
    reads; None on a node without recognisers."""
    if speech_load is None:
        return None
    metrics = speech_load()
    return {"load": round(metrics["load"], 2), "capacity": round(metrics["capacity"], 2),
            "open_streams": metrics["open_streams"],
            "backlog_seconds": round(metrics["backlog_frames"] * 0.02, 1),
            "lag_seconds": round(metrics["lag_seconds"], 1), "refused": metrics["refused"]}


def _operator(user: Any) -> None:
    if not user.may_edit:
        raise HTTPException(403, detail="only operators watch and pick up live calls")


@router.get("/live")
def live_page(request: Request, user: PageUser) -> Response:
    _operator(user)
    store = _store(request)
    calls = store.snapshot() if store is not None else []
    return render(request, "live.html", user, language_of(request), calls=calls, available=store is not None,
                  default_seat=request.app.state.console.settings.operator_seat,
                  speech=speech_figures(request.app.state.console.speech))


async def _events(request: Request, store: LiveCalls,
                  speech_load: Callable[[], dict[str, Any]] | None) -> AsyncIterator[str]:
    seen = -1
    quiet = 0.0
    speech_sent, speech_at = None, 0.0
    while not await request.is_disconnected():
        version = store.version
        now = time.monotonic()
        speech = speech_figures(speech_load) if now - speech_at >= SPEECH_SECONDS else speech_sent
        if version != seen:
            seen = version
            quiet = 0.0
            yield f"event: calls\ndata: {json.dumps(store.snapshot(), ensure_ascii=False)}\n\n"
        elif speech != speech_sent:
            speech_sent, speech_at = speech, now
            quiet = 0.0
            yield f"event: speech\ndata: {json.dumps(speech)}\n\n"
        elif quiet >= HEARTBEAT_SECONDS:
            quiet = 0.0
            yield ": still here\n\n"
        await asyncio.sleep(POLL_SECONDS)
        quiet += POLL_SECONDS


@router.get("/live/events")
def live_events(request: Request, user: PageUser) -> Response:
    """text/event-stream: a `calls` event with the whole list whenever it changed (calls are few per node),
    and a `speech` event with the recognisers' load when its figures changed (at most once a second)."""
    _operator(user)
    store = _store(request)
    if store is None:
        raise HTTPException(404, detail="this node runs no call flow")
    return StreamingResponse(_events(request, store, request.app.state.console.speech),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.post("/live/{call_id}/pick-up")
def pick_up(call_id: str, request: Request, user: PageUser,
            seat: Annotated[str, Form(min_length=1, max_length=20, pattern=r"^[0-9]+$")]) -> dict[str, Any]:
    _operator(user)
    store = _store(request)
    if store is None or not store.pick_up(call_id, seat, user.principal.name):
        raise HTTPException(404, detail="this call is no longer in progress")
    return {"call_id": call_id, "seat": seat}
