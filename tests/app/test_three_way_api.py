"""The three-way API (app.three_way_api) on a real SQLite ticket database through FastAPI's TestClient, with a
desk that records what it was asked to dial (the dialling itself: tests/test_three_way_e2e.py): no open
dialling (422 naming the field, logged), roles, 404/409/503, live and stored views, mute/listen-only/remove."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from app.three_way_api import three_way_router
from three_way.conference import Conference
from three_way.desk import Case
from tickets import three_way_calls
from tickets.api import ApiSettings, create_app
from tickets.auth import issue_token
from tickets.service import create_unit

ADMIN_TOKEN = "admin-secret-for-three-way-tests"


class Ended(Exception):
    pass


class HandClock:
    def __init__(self) -> None:
        self.tickers: list = []

    def add_ticker(self, callback) -> None:
        self.tickers.append(callback)

    def remove_ticker(self, callback) -> None:
        self.tickers = [t for t in self.tickers if t != callback]


class RecordingDesk:
    """Keeps every start() request and answers with a conference of ringing parties."""

    def __init__(self) -> None:
        self.started: list[dict] = []
        self.conferences: dict[str, tuple[Conference, Case]] = {}

    def start(self, case: Case, **request) -> Conference:
        conference = Conference(HandClock(), call_ended=(Ended,), tones=False)
        conference.add_party("citizen", request["citizen"])
        if request["operator"]:
            conference.add_party("operator", request["operator"])
        self.started.append({"case": case, **request})
        self.conferences[conference.conference_id] = (conference, case)
        return conference

    def get(self, conference_id: str):
        return self.conferences.get(conference_id)

    def live(self) -> list[Conference]:
        return [conference for conference, _ in self.conferences.values() if conference.ended_at is None]


class Words:
    def __init__(self) -> None:
        self.values: list[dict] = []

    def for_ticket(self, values):
        self.values.append(dict(values))
        return (lambda language: f"announcement in {language}"), b"\0\0" * 160


class Party:
    """A joined party for the live-view tests (what a LegSession needs)."""

    call_id = "party"
    ended = False

    def add_tap(self, callback) -> None: ...
    def remove_tap(self, callback) -> None: ...
    def on_end(self, callback) -> None: ...
    def write_frame(self, pcm: bytes) -> None: ...
    def read_frame(self, timeout: float = 1.0): return None
    def next_digit(self, timeout: float): return None
    def play(self, audio, *, barge_in: bool = True): return None
    def hangup(self) -> None:
        self.ended = True


@pytest.fixture
def setup(tmp_path) -> Iterator[dict]:
    app = create_app(ApiSettings(database_url=f"sqlite:///{tmp_path / 'tickets.sqlite3'}",
                                 bootstrap_admin_token=ADMIN_TOKEN))
    desk, words = RecordingDesk(), Words()
    app.include_router(three_way_router(desk, words, extensions={"1003", "1005"}))
    with app.state.tickets.session_factory.begin() as session:
        water = create_unit(session, {"name": "自来水公司", "categories": ["水电气热"], "seat_numbers": ["1002"]})
        roads = create_unit(session, {"name": "住建局", "categories": ["市政"], "seat_numbers": ["1004"]})
        _, operator = issue_token(session, "operator ann", "operator")
        _, water_staff = issue_token(session, "water staff", "unit_staff", water.id)
        _, roads_staff = issue_token(session, "roads staff", "unit_staff", roads.id)
    with TestClient(app) as client:
        yield {"client": client, "desk": desk, "words": words, "app": app, "admin": auth(ADMIN_TOKEN),
               "operator": auth(operator), "water_staff": auth(water_staff), "roads_staff": auth(roads_staff)}
    app.state.tickets.session_factory.kw["bind"].dispose()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ticket(setup, content: str = "我家停水两天了") -> dict:
    response = setup["client"].post("/api/tickets", json={"content": content, "phone": "13800000000",
                                                          "language": "ko"}, headers=setup["operator"])
    assert response.status_code == 201, response.text
    return response.json()


def start(setup, ticket_id: int, headers_key: str = "operator", **body):
    return setup["client"].post(f"/api/tickets/{ticket_id}/three-way", json=body, headers=setup[headers_key])


def test_the_ticket_phone_a_configured_operator_and_the_units_seats_are_dialled(setup):
    water_ticket = ticket(setup)
    response = start(setup, water_ticket["id"], citizen="13800000000", operator="1003")
    assert response.status_code == 202, response.text
    view = response.json()
    assert (view["unit"], view["ticket"], view["started_by"], view["state"]) == \
        ("自来水公司", water_ticket["number"], "operator ann", "waiting")
    assert [(leg["leg_id"], leg["number"], leg["state"]) for leg in view["legs"]] == [
        ("citizen", "13800000000", "ringing"), ("operator", "1003", "ringing")]
    request = setup["desk"].started[0]
    assert (request["citizen"], request["operator"], request["operator_listen_only"]) == \
        ("13800000000", "1003", False)
    assert request["case"] == Case("自来水公司", water_ticket["number"], "operator ann")
    assert request["announcement"]("ko") == "announcement in ko"
    assert setup["words"].values == [{"request_type": None, "topic": "水电气热", "ticket_number":
                                      water_ticket["number"], "unit": "自来水公司", "language": "ko"}]
    again = start(setup, water_ticket["id"], citizen="1005")
    assert again.status_code == 409 and view["id"] in again.json()["detail"]  # one call per ticket at a time
    setup["desk"].get(view["id"])[0].end("over")
    extension = start(setup, water_ticket["id"], citizen="1005", operator_listen_only=True)
    assert extension.status_code == 202 and setup["desk"].started[1]["operator"] is None


@pytest.mark.parametrize("body,field", [
    ({"citizen": "13999999999"}, "citizen"),                     # someone else's phone
    ({"citizen": "13800000000", "operator": "110"}, "operator"),  # not a seat, not an extension
    ({"citizen": "900"}, "citizen"),
])
def test_numbers_outside_the_directory_are_refused_with_422_and_logged(setup, caplog, body, field):
    water_ticket = ticket(setup)
    with caplog.at_level(logging.WARNING, logger="app.three_way_api"):
        response = start(setup, water_ticket["id"], **body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert "is not a number the hotline may dial" in response.json()["detail"][0]["msg"]
    assert setup["desk"].started == []
    assert f"operator ann (operator) asked to dial {body[field]} as {field}" in caplog.text


@pytest.mark.parametrize("body,field", [
    ({"citizen": "not a number"}, "citizen"),
    ({}, "citizen"),
    ({"citizen": "13800000000", "dial_anyone": True}, "dial_anyone"),
    ({"citizen": "13800000000", "operator_listen_only": "maybe"}, "operator_listen_only"),
])
def test_malformed_requests_name_the_field(setup, body, field):
    response = start(setup, ticket(setup)["id"], **body)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][:2] == ["body", field]


def test_unknown_ticket_no_unit_wrong_role_and_no_desk(setup, tmp_path):
    assert start(setup, 999, citizen="1003").status_code == 404
    lonely = ticket(setup, "路灯不亮")  # no topic a unit handles, not dispatched
    refused = start(setup, lonely["id"], citizen="1003")
    assert refused.status_code == 409 and "has no responsible unit" in refused.json()["detail"]
    assert start(setup, ticket(setup)["id"], "water_staff", citizen="1003").status_code == 403
    assert setup["client"].post("/api/tickets/1/three-way", json={"citizen": "1003"}).status_code == 401
    demo = create_app(ApiSettings(database_url=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
                                  bootstrap_admin_token=ADMIN_TOKEN))
    demo.include_router(three_way_router(None, None, extensions={"1003"}))
    with TestClient(demo) as client:
        with demo.state.tickets.session_factory.begin() as session:
            create_unit(session, {"name": "自来水公司", "categories": ["水电气热"]})
        made = client.post("/api/tickets", json={"content": "停水"}, headers=auth(ADMIN_TOKEN)).json()
        response = client.post(f"/api/tickets/{made['id']}/three-way", json={"citizen": "1003"},
                               headers=auth(ADMIN_TOKEN))
        assert response.status_code == 503 and "demo" in response.json()["detail"]
    demo.state.tickets.session_factory.kw["bind"].dispose()


def test_live_view_mute_listen_only_and_remove_a_party(setup):
    view = start(setup, ticket(setup)["id"], citizen="13800000000", operator="1003").json()
    conference, _ = setup["desk"].get(view["id"])
    citizen, operator = Party(), Party()
    conference.join(citizen, role="citizen", number="13800000000", leg_id="citizen")
    conference.join(operator, role="operator", number="1003", leg_id="operator")
    client = setup["client"]
    muted = client.patch(f"/api/three-way/{view['id']}/legs/citizen", json={"muted": True}, headers=setup["operator"])
    assert muted.status_code == 200
    assert {leg["leg_id"]: leg["muted"] for leg in muted.json()["legs"]} == {"citizen": True, "operator": False}
    coach = client.patch(f"/api/three-way/{view['id']}/legs/operator", json={"listen_only": True},
                         headers=setup["operator"]).json()
    assert {leg["leg_id"]: leg["listen_only"] for leg in coach["legs"]}["operator"] is True
    assert [e["kind"] for e in coach["events"]][-2:] == ["muted", "listen_only"]
    assert client.patch(f"/api/three-way/{view['id']}/legs/seat", json={"muted": True},
                        headers=setup["operator"]).status_code == 404
    assert client.patch(f"/api/three-way/{view['id']}/legs/citizen", json={"volume": 3},
                        headers=setup["operator"]).status_code == 422
    shown = client.get(f"/api/three-way/{view['id']}", headers=setup["water_staff"])
    assert shown.status_code == 200 and shown.json()["state"] == "active"
    assert client.get(f"/api/three-way/{view['id']}", headers=setup["roads_staff"]).status_code == 404
    assert client.delete(f"/api/three-way/{view['id']}/legs/operator", headers=setup["water_staff"]).status_code == 403
    assert client.delete(f"/api/three-way/{view['id']}/legs/operator", headers=setup["operator"]).status_code == 204
    assert operator.ended and not citizen.ended
    assert client.delete(f"/api/three-way/{view['id']}/legs/operator", headers=setup["operator"]).status_code == 404
    conference.end("done")
    assert client.patch(f"/api/three-way/{view['id']}/legs/citizen", json={"muted": False},
                        headers=setup["operator"]).status_code == 409
    ended = client.get(f"/api/three-way/{view['id']}", headers=setup["operator"]).json()  # not stored (yet)
    assert (ended["state"], ended["outcome"]) == ("ended", "done")


def test_a_stored_call_is_shown_after_the_node_forgot_it(setup):
    water_ticket = ticket(setup)
    at = datetime(2026, 9, 29, 2, 0, tzinfo=timezone.utc)
    with setup["app"].state.tickets.session_factory.begin() as session:
        three_way_calls.record_call(
            session, conference_id="f" * 32, ticket_number=water_ticket["number"], unit_name="自来水公司",
            started_by="flow", started_at=at, ended_at=at, outcome="joined", seat_number="1002",
            legs=[{"leg_id": "seat", "number": "1002", "state": "left"}], events=[],
            recordings={"mixed": "/r/m.wav"}, actor="three_way")
    client = setup["client"]
    stored = client.get(f"/api/three-way/{'f' * 32}", headers=setup["water_staff"])
    assert stored.status_code == 200
    body = stored.json()
    assert (body["state"], body["ticket"], body["outcome"], body["recordings"]) == \
        ("ended", water_ticket["number"], "joined", {"mixed": "/r/m.wav"})
    assert client.get(f"/api/three-way/{'f' * 32}", headers=setup["roads_staff"]).status_code == 404
    assert client.get(f"/api/three-way/{'0' * 32}", headers=setup["operator"]).status_code == 404
    for hostile in ("x" * 5000, "%00%27%3B--", "😀"):
        assert client.get(f"/api/three-way/{hostile}", headers=setup["operator"]).status_code == 404
