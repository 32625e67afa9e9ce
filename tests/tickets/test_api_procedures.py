"""The procedures' rules through the HTTP API on the real databases: every deadline a ticket is under is in
its JSON and agrees with `python -m tickets due`, the appeal's investigation milestone."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime

from test_api import app, client, new_ticket, world  # noqa: F401 - the API fixtures


def walk(client, world, ticket_id, *steps):
    """Apply (action, extra body) steps as the operator; the last answer."""
    for action, extra in steps:
        response = client.post(f"/api/tickets/{ticket_id}/transitions", json={"action": action, **extra},
                               headers=world["operator"])
        assert response.status_code == 200, response.text
    return response.json()


def cli_due(started_at: str, kind: str, level: int) -> tuple[str, bool]:
    """What the administrator's command prints for the deadline, and whether it warned of missing data."""
    extra = ["--level", str(level)] if kind == "response" else []
    result = subprocess.run([sys.executable, "-m", "tickets", "due", "--received", started_at, "--rule", kind, *extra],
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip(), "no data" in result.stderr


def test_every_kind_is_in_the_ticket_json_and_agrees_with_the_command_line(client, world):
    appeal = new_ticket(client, world, content="对处理结果不服，申诉", request_type="申诉", level=3)
    complaint = new_ticket(client, world, content="投诉噪音扰民", request_type="投诉", level=3)
    walk(client, world, complaint["id"], ("dispatch", {"unit_id": world["water"]}), ("sign", {}), ("start", {}))
    complaint = walk(client, world, complaint["id"], ("reply", {}))
    deadlines = appeal["deadlines"] + complaint["deadlines"]
    assert sorted(d["kind"] for d in deadlines) == [
        "appeal_investigation", "appeal_resolution", "appeal_review", "callback", "complaint_review", "response",
        "unit_reply"]
    assert set(deadlines[0]) >= {"kind", "due_at", "statutory_data_missing", "met_at"}
    for deadline in deadlines:
        due, warned = cli_due(deadline["started_at"], deadline["kind"], 3)
        assert datetime.fromisoformat(due) == datetime.fromisoformat(deadline["due_at"]), deadline["kind"]
        assert warned == deadline["statutory_data_missing"], deadline["kind"]
    met = {d["kind"]: d["met_at"] for d in complaint["deadlines"]}
    assert met["response"] == met["unit_reply"] == complaint["replied_at"] and met["callback"] is None
    assert appeal["response_due_at"] == next(d["due_at"] for d in appeal["deadlines"]
                                             if d["kind"] == "appeal_resolution")


def test_investigation_milestone_by_the_unit(client, world):
    appeal = new_ticket(client, world, content="申诉", request_type="申诉")
    path = f"/api/tickets/{appeal['id']}/investigation"
    not_theirs_yet = client.post(path, json={"note": "查明属实"}, headers=world["staff"])
    assert not_theirs_yet.status_code in (403, 404)  # not dispatched to their unit (apihard: 404)
    walk(client, world, appeal["id"], ("dispatch", {"unit_id": world["water"]}))
    empty = client.post(path, json={"note": ""}, headers=world["staff"])
    assert (empty.status_code, empty.json()["detail"][0]["loc"][-1]) == (422, "note")
    done = client.post(path, json={"note": "查明属实"}, headers=world["staff"])
    assert done.status_code == 200, done.text
    investigation = next(d for d in done.json()["deadlines"] if d["kind"] == "appeal_investigation")
    assert investigation["met_at"] == done.json()["events"][-1]["at"]
    assert done.json()["events"][-1]["action"] == "record_investigation"
    again = client.post(path, json={"note": "again"}, headers=world["staff"])
    assert again.status_code == 409 and "no open appeal_investigation" in again.json()["detail"]["message"]
