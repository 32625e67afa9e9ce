"""The callbacks API on the real databases: an operator asks for the callback now, everyone who may see the
ticket sees each attempt (unit staff without recordings or call ids, another unit's ticket 404), and bad
input is a 422 naming the field."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta, timezone

import pytest

from ticket_steps import walk
from tickets import callbacks, service
from tickets.calendar import WorkingCalendar
from tickets.callbacks import AttemptResult, CallbackPolicy
from tickets.lifecycle import Action
from tickets.models import Ticket

ALWAYS = CallbackPolicy(quiet_start=time(0), quiet_end=time(0), call_on_holidays=True)  # the wall clock is not tested


@pytest.fixture
def replied(app, world, rules):
    """A water-unit ticket with its reply approved: waiting for its callback."""
    app.state.tickets = replace(app.state.tickets, callbacks=ALWAYS)
    start = datetime.now(timezone.utc) - timedelta(hours=5)
    with app.state.tickets.session_factory.begin() as session:
        ticket, _ = service.create_ticket(session, {"content": "停水两天了", "phone": "13800001234", "level": 2,
                                                    "confidential": True}, rules=rules, actor="op", now=start)
        walk(session, rules, ticket.id, start, (Action.DISPATCH, 1, {"unit_id": world["water"]}),
             (Action.SIGN, 2, {}), (Action.START, 3, {}), (Action.REPLY, 4, {}))
        return ticket.id


def test_an_operator_asks_for_the_callback_and_sees_each_attempt(app, client, world, rules, replied):
    before = datetime.now(timezone.utc)
    response = client.post(f"/api/tickets/{replied}/callbacks", json={"note": "市民来电催问"},
                           headers=world["operator"])
    assert response.status_code == 202, response.text
    first = response.json()
    assert (first["number"], first["state"], first["requested_by"]) == (1, "pending", "operator 1")
    assert before <= datetime.fromisoformat(first["due_at"]) <= datetime.now(timezone.utc)
    session_factory = app.state.tickets.session_factory
    [call] = callbacks.claim_due(session_factory, "node-a", policy=ALWAYS, calendar=WorkingCalendar(),
                                 now=datetime.now(timezone.utc), limit=2)
    assert client.post(f"/api/tickets/{replied}/callbacks", headers=world["operator"]).status_code == 409
    with session_factory.begin() as session:
        callbacks.finish(session, call.attempt_id, AttemptResult("answered", "3", reason_ref="x/reason.wav",
                                                                 recording_ref="x/call.wav", call_id="a" * 32),
                         node="node-a", policy=ALWAYS, calendar=WorkingCalendar(), rules=rules)
    seen = client.get(f"/api/tickets/{replied}/callbacks", headers=world["operator"]).json()
    assert [(a["number"], a["state"], a["outcome"], a["satisfaction"], a["recording_ref"], a["reason_ref"],
             a["called_number"]) for a in seen] == [
        (1, "done", "answered", "不满意", "x/call.wav", "x/reason.wav", "13800001234")]
    assert seen[0]["claimed_at"] is not None and seen[0]["ended_at"] is not None
    staff = client.get(f"/api/tickets/{replied}/callbacks", headers=world["staff"]).json()
    assert [(a["satisfaction"], a["recording_ref"], a["reason_ref"], a["call_id"], a["called_number"])
            for a in staff] == [("不满意", None, None, None, None)]  # confidential: not even the number
    # reopened (重办): no longer waiting for a callback
    refused = client.post(f"/api/tickets/{replied}/callbacks", headers=world["operator"])
    assert refused.status_code == 409 and "dispatched" in refused.json()["detail"]["message"]


def test_who_may_ask_and_see(app, client, world, replied):
    with app.state.tickets.session_factory.begin() as session:
        session.get(Ticket, replied).unit_id = world["roads"]  # another unit's ticket for the water staff
    assert client.get(f"/api/tickets/{replied}/callbacks", headers=world["staff"]).status_code == 404
    assert client.get("/api/tickets/999999/callbacks", headers=world["operator"]).status_code == 404
    assert client.post(f"/api/tickets/{replied}/callbacks", headers=world["staff"]).status_code == 403
    assert client.get(f"/api/tickets/{replied}/callbacks").status_code == 401
    assert client.get(f"/api/tickets/{replied}/callbacks", headers=world["operator"]).json() == []


def test_bad_input_names_the_field(client, world, replied):
    response = client.post(f"/api/tickets/{replied}/callbacks", json={"colour": "red"}, headers=world["operator"])
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "colour"]
    response = client.post(f"/api/tickets/{replied}/callbacks", json={"note": "a\x00b"}, headers=world["operator"])
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "note"]
    assert client.post("/api/tickets/0/callbacks", headers=world["operator"]).status_code == 422
    assert client.get(f"/api/tickets/{replied}/callbacks", headers=world["operator"]).json() == []  # nothing stored
