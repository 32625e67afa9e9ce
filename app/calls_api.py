"""The calls API: GET /api/health (open, for load balancers and monitoring) and GET /api/calls (operators
only: caller numbers are personal data), read from the running IVR node.

`health_sections` adds named parts to /api/health from outside the node (e.g. "speech": the recognisers'
capacity, load, backlog and lag), each a function called per request."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from ivr.node import CallRecord, IvrNode
from tickets.api import Operator


def calls_router(node: IvrNode, health_sections: Mapping[str, Callable[[], dict[str, Any]]] | None = None
                 ) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["calls"])
    sections = health_sections if health_sections is not None else {}

    @router.get("/health")
    def health() -> dict[str, Any]:
        state = node.health().to_dict()
        state["status"] = "ok" if state["registration"] == "registered" else "degraded"
        for name, section in sections.items():
            state[name] = section()
        return state

    @router.get("/calls")
    def calls(principal: Operator,
              state: Annotated[str | None, Query(pattern="^(active|ended)$")] = None,
              caller: str | None = None,
              direction: Annotated[str | None, Query(pattern="^(inbound|outbound)$")] = None,
              since: datetime | None = None, until: datetime | None = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """Calls in progress and recent detail records (newest first), filtered."""
        active = node.active_calls() if state != "ended" else []
        ended = list(reversed(node.recent_calls())) if state != "active" else []

        def wanted(record: CallRecord) -> bool:
            started = record.started_at
            return ((caller is None or record.caller == caller)
                    and (direction is None or record.direction == direction)
                    and (since is None or (started is not None and started >= since))
                    and (until is None or (started is not None and started < until)))

        return {"active": [r.to_dict() for r in active if wanted(r)],
                "ended": [r.to_dict() for r in ended if wanted(r)][:limit]}

    return router
