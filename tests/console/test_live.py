"""The live-calls page and its event stream over a node's LiveCallStore, and picking a call up."""
from __future__ import annotations

import json
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import console
from app.live_calls import LiveCallStore
from tests.app.test_live_calls import FakeSession


@pytest.fixture
def live_site(site):
    store = LiveCallStore()
    app: FastAPI = site.client.app
    app.state.console = console.ConsoleContext(app.state.console.settings, store)
    site.sign_in("operator")
    return site, store


def test_the_event_stream_sends_the_calls_and_their_changes(live_site):
    site, store = live_site
    session = FakeSession("e" * 32, "1001")
    store.watch(session)
    store.node_entered(session.call_id, "hotline12345", "ask_request")
    with site.client.stream("GET", "/live/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "event: calls"
        first = json.loads(next(lines).removeprefix("data: "))
        assert [(c["caller"], c["node"]) for c in first] == [("1001", "ask_request")]
        store.final_transcript(session.call_id, "수도 단수")
        following = [line for line in (next(lines) for _ in range(4)) if line.startswith("data: ")]
        assert json.loads(following[0].removeprefix("data: "))[0]["heard"] == ["수도 단수"]


def test_the_page_lists_calls_and_a_pick_up_needs_csrf_and_a_seat(live_site):
    site, store = live_site
    session = FakeSession("f" * 32, "1002")
    store.watch(session)
    page = site.client.get("/live").text
    assert 'data-call="' + "f" * 32 + '"' in page and 'value="1003"' in page  # the configured seat is offered
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    url = f"/live/{session.call_id}/pick-up"
    assert site.client.post(url, data={"seat": "1004"}).status_code == 403
    assert site.client.post(url, data={"seat": "10a4"}, headers={"X-CSRF-Token": token}).status_code == 422
    picked = site.client.post(url, data={"seat": "1004"}, headers={"X-CSRF-Token": token})
    assert picked.json() == {"call_id": session.call_id, "seat": "1004"}
    assert session.digits == ["0"] and store.seat_for(session.call_id) == "1004"
    session.end()
    gone = site.client.post(url, data={"seat": "1004"}, headers={"X-CSRF-Token": token})
    assert gone.status_code == 404


def test_a_node_without_call_flows_says_so(site):
    site.sign_in("operator")
    assert site.client.get("/live").status_code == 200
    assert site.client.get("/live/events").status_code == 404


def test_the_page_names_the_ivr_node_holding_each_call(site):
    """The console reads the shared view (app.shared_calls) in the server: each call names its node."""
    from app.shared_calls import SharedCalls

    live = LiveCallStore()
    shared = SharedCalls("node-a", type("NoRecords", (), {"active_calls": lambda self: []})(), live)
    app: FastAPI = site.client.app
    app.state.console = console.ConsoleContext(app.state.console.settings, shared)
    site.sign_in("operator")
    live.watch(FakeSession("d" * 32, "1001"))
    page = site.client.get("/live").text
    assert re.search(r'<td class="ivr-node">node-a</td>', page)
    with site.client.stream("GET", "/live/events") as stream:
        lines = stream.iter_lines()
        assert next(lines) == "event: calls"
        assert json.loads(next(lines).removeprefix("data: "))[0]["ivr_node"] == "node-a"


def test_the_page_and_its_stream_show_the_recognisers_load(site):
    """This node's recognisers' load (the figures /api/health shows as `speech`) above the calls, rounded for
    a reader; the stream sends it again when it changed."""
    figures = {"workers": 2, "capacity": 12.0, "load": 12.0, "open_streams": 12, "backlog_frames": 1741,
               "max_backlog_frames": 1741, "lag_seconds": 19.934, "max_lag_seconds": 19.934,
               "frames_recognised": 5000, "refused": 24}
    app: FastAPI = site.client.app
    app.state.console = console.ConsoleContext(app.state.console.settings, LiveCallStore(), lambda: dict(figures))
    site.sign_in("operator")
    page = site.client.get("/live").text
    assert ("本节点语音识别：占用 12.0 / 12.0（12 路），待识别音频 34.8 秒，最久等待 19.9 秒；"
            "识别器满或落后时改用按键的来电 24 次") in page
    with site.client.stream("GET", "/live/events") as stream:
        lines = stream.iter_lines()
        assert next(lines) == "event: calls"
        assert [line for line in (next(lines) for _ in range(3)) if line.startswith("event:")] == ["event: speech"]
        sent = json.loads(next(lines).removeprefix("data: "))
        assert sent == {"load": 12.0, "capacity": 12.0, "open_streams": 12, "backlog_seconds": 34.8,
                        "lag_seconds": 19.9, "refused": 24}
        figures.update(load=3.25, open_streams=4, backlog_frames=0, lag_seconds=0.0)
        following = [line for line in (next(lines) for _ in range(4)) if line.startswith("data: ")]
        assert json.loads(following[0].removeprefix("data: "))["load"] == 3.25


def test_a_node_without_recognisers_shows_no_load_line(live_site):
    site, _ = live_site
    assert 'id="speech-load"' not in site.client.get("/live").text
