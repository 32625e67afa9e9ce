"""GET /api/calls filters on tz-aware times: `since`/`until` without a UTC offset are a 422 naming the
parameter (they used to reach the comparison with the records' aware times and answer 500, finding 8.9).
Calls in progress are every node's (app.shared_calls), filtered alike; /api/health names the cluster."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.calls_api import calls_router
from app.shared_calls import SharedCalls
from ivr.node import CallRecord
from node_fakes import RecordsOnlyNode
from tickets import db
from tickets.api import TicketsContext, install
from tickets.auth import issue_token
from tickets.service import TicketRules

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)


class OtherNodes(SharedCalls):
    """This node's calls (none) plus calls other nodes published (as app.shared_calls reads them)."""

    def __init__(self, name: str, node: RecordsOnlyNode, others: list[dict]) -> None:
        super().__init__(name, node, clock=lambda: T0 + timedelta(hours=3))
        self.others = others

    def active_records(self) -> list[dict]:
        return [{**record, "elapsed_seconds": 1.0} for record in self.others]


@pytest.fixture
def api(tmp_path):
    session_factory = db.open_database(f"sqlite:///{tmp_path / 'tickets.sqlite3'}")
    with session_factory.begin() as session:
        _, token = issue_token(session, "operator", "operator")
    records = [CallRecord(f"{n:032x}", "inbound", f"1380000000{n}", "12345", "PCMU", T0 + timedelta(hours=n))
               for n in range(3)]
    app = FastAPI()
    install(app, TicketsContext(session_factory, TicketRules.default()))  # the tokens the calls API checks
    node = RecordsOnlyNode(records)
    shared = OtherNodes("node-a", node, others=[{**records[1].to_dict(), "ivr_node": "node-b"},
                                                {**records[2].to_dict(), "ivr_node": "node-c"}])
    app.include_router(calls_router(node, shared))
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {token}"}
    session_factory.kw["bind"].dispose()


def test_since_and_until_with_an_offset_filter_the_records(api):
    client, headers = api
    response = client.get("/api/calls", params={"since": "2026-03-02T10:00:00+08:00",
                                                "until": "2026-03-02T03:00:00Z"}, headers=headers)
    assert response.status_code == 200
    assert [r["caller"] for r in response.json()["ended"]] == ["13800000001"]  # 02:00Z <= started < 03:00Z


@pytest.mark.parametrize("name", ["since", "until"])
def test_a_naive_time_is_422_naming_the_parameter(api, name):
    client, headers = api
    response = client.get("/api/calls", params={name: "2026-03-02T09:00:00"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", name]
    assert "UTC offset" in response.json()["detail"][0]["msg"]


def test_calls_in_progress_are_every_nodes_and_filtered_alike(api):
    client, headers = api
    active = client.get("/api/calls", params={"state": "active"}, headers=headers).json()["active"]
    assert [(r["caller"], r["ivr_node"]) for r in active] == [("13800000001", "node-b"), ("13800000002", "node-c")]
    since = client.get("/api/calls", params={"state": "active", "since": "2026-03-02T03:00:00Z"}, headers=headers)
    assert [r["ivr_node"] for r in since.json()["active"]] == ["node-c"]
    by_caller = client.get("/api/calls", params={"caller": "13800000001"}, headers=headers).json()
    assert [r["ivr_node"] for r in by_caller["active"]] == ["node-b"]
    assert [r["ivr_node"] for r in by_caller["ended"]] == ["node-a"]  # ended calls: this node's own records


def test_health_names_the_node_and_the_shared_state(api):
    client, _ = api
    health = client.get("/api/health").json()
    assert (health["status"], health["cluster"]) == ("ok", {"node_name": "node-a", "redis": "off",
                                                           "nodes": ["node-a"]})
