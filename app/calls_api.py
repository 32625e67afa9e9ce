"""The calls API: GET /api/health (open, for load balancers and monitoring) and GET /api/calls (operators
only: caller numbers are personal data), read from the running IVR node. `since`/`until` must carry their
UTC offset: the call records are tz-aware, and a naive time has no one meaning across nodes. With
`speech_load` (the recognisers' asr.PoolMetrics as a dict), /api/health shows it as "speech".

Calls in progress are every node's (app.shared_calls: through Redis when several nodes share it, each
record naming its `ivr_node`); ended calls are this node's own recent detail records."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.shared_calls import SharedCalls
from ivr.node import IvrNode
from tickets.api import Operator
from tickets.schemas import ONE_LINE, AwareTimestamp


def calls_router(node: IvrNode, shared: SharedCalls,
                 speech_load: Callable[[], dict[str, Any]] | None = None) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["calls"])

    @router.get("/health")
    def health() -> dict[str, Any]:
        """The node's SIP registration, calls and capacity; `cluster`: its name, whether the shared live
        state (Redis) is reachable, and the nodes whose calls it shows. `status` is about this node only:
        a node whose Redis is away still answers calls."""
        state = node.health().to_dict()
        state["status"] = "ok" if state["registration"] == "registered" else "degraded"
        state["cluster"] = shared.state()
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
        """Calls in progress on every node and this node's recent detail records (newest first), filtered."""
        active = shared.active_records() if state != "ended" else []
        ended = ([{**record.to_dict(), "ivr_node": shared.node_name} for record in reversed(node.recent_calls())]
                 if state != "active" else [])

        def wanted(record: dict[str, Any]) -> bool:
            started = _time(record.get("started_at"))
            return ((caller is None or record.get("caller") == caller)
                    and (direction is None or record.get("direction") == direction)
                    and (since is None or (started is not None and started >= since))
                    and (until is None or (started is not None and started < until)))

        return {"active": [r for r in active if wanted(r)], "ended": [r for r in ended if wanted(r)][:limit]}

    return router


def _time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else None
