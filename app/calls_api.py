"""The calls API: GET /api/health (open, for load balancers and monitoring) and GET /api/calls (operators
only: caller numbers are personal data), read from the running IVR node. `since`/`until` must carry their
UTC offset: the call records are tz-aware, and a naive time has no one meaning across nodes. With
`speech_load` (the recognisers' asr.PoolMetrics as a dict), /api/health shows it as "speech"."""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query

from ivr.node import CallRecord, IvrNode
from tickets.api import Operator
from tickets.schemas import ONE_LINE, AwareTimestamp


def calls_router(node: IvrNode, speech_load: Callable[[], dict[str, Any]] | None = None) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["calls"])

    @router.get("/health")
    def health() -> dict[str, Any]:
        state = node.health().to_dict()
        state["status"] = "ok" if state["registration"] == "registered" else "degraded"
        if speech_load is not None:
            state["speech"] = speech_load()
        return state

    @router.get("/calls")
    def calls(principal: Operator,
              state: Annotated[str | None, Query(pattern="^(active|ended)$")] = None,
              caller: Annotated[str | None, Query(max_length=40, pattern=ONE_LINE)] = None,
              direction: Annotated[str | None, Query(pattern="^(inbound|outbound)$")] = None,
              since: AwareTimestamp | None = None, until: AwareTimestamp | None = None,
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
