"""The procedures' rules through the HTTP API on the real databases: every deadline a ticket is under is in
its JSON and agrees with `python -m tickets due`, the appeal's investigation milestone, replies with review,
attachments and delivery, 不予受理 reasons from the configured list, archived tickets read-only."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from ticket_api_helpers import auth, new_ticket
from tickets.procedure_settings import ProcedureSettings


def walk(client, world, ticket_id, *steps):
    """Apply (action, extra body) steps as the operator; the last answer."""
    for action, extra in steps:
        response = client.post(f"/api/tickets/{ticket_id}/transitions", json={"action": action, **extra},
                               headers=world["operator"])
        assert response.status_code == 200, response.text
    return response.json()


REPLY = {"handling_unit": "市水务局", "situation": "到现场核实并协调", "result": "噪音已停止"}


def review(client, world, reply_id, decision, note=None):
    reviewer = client.post("/api/tokens", json={"name": "reviewer", "role": "reviewer"}, headers=world["admin"])
    body = {"decision": decision, **({"note": note} if note else {})}
    return client.post(f"/api/replies/{reply_id}/review", json=body, headers=auth(reviewer.json()["token"]))


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
    reply = client.post(f"/api/tickets/{complaint['id']}/replies", headers=world["staff"],
                        json={**REPLY, "handled_at": datetime.now(timezone.utc).isoformat()}).json()
    assert review(client, world, reply["id"], "approve").status_code == 200
    complaint = client.get(f"/api/tickets/{complaint['id']}", headers=world["operator"]).json()
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


@pytest.fixture
def rules(rules, tmp_path):
    """Attachments into the test's folder, with small limits to test them."""
    return replace(rules, procedures=ProcedureSettings(attachments_dir=tmp_path / "attachments",
                                                       attachment_max_bytes={"text": 1000, "audio": 1000,
                                                                             "image": 4096, "video": 1000}))


def token(client, world, role, unit_id=None):
    issued = client.post("/api/tokens", json={"name": f"{role} {unit_id}", "role": role, "unit_id": unit_id},
                         headers=world["admin"])
    assert issued.status_code == 201, issued.text
    return auth(issued.json()["token"])


def test_reply_review_attachments_and_delivery_through_the_api(client, world):
    ticket = new_ticket(client, world, content="停水两天了", phone="13800001234")
    walk(client, world, ticket["id"], ("dispatch", {"unit_id": world["water"]}), ("sign", {}), ("start", {}))
    path = f"/api/tickets/{ticket['id']}/replies"
    body = {**REPLY, "handled_at": datetime.now(timezone.utc).isoformat()}
    missing = client.post(path, json={k: v for k, v in body.items() if k != "result"}, headers=world["staff"])
    assert (missing.status_code, [e["loc"][-1] for e in missing.json()["detail"]]) == (422, ["result"])
    roads_staff = token(client, world, "unit_staff", world["roads"])
    assert client.post(path, json=body, headers=roads_staff).status_code == 404
    reply = client.post(path, json=body, headers=world["staff"])
    assert reply.status_code == 201, reply.text
    reply = reply.json()
    assert (reply["status"], reply["handling_unit"]) == ("pending_review", "市水务局")

    upload = f"/api/replies/{reply['id']}/attachments"
    photo = bytes(range(256)) * 10
    stored = client.post(upload, params={"filename": "../../etc/现场.png"}, content=photo,
                         headers={**world["staff"], "Content-Type": "image/png"})
    assert stored.status_code == 201, stored.text
    assert (stored.json()["filename"], stored.json()["size"], stored.json()["kind"]) == ("现场.png", 2560, "image")
    exe = client.post(upload, params={"filename": "x.exe"}, content=b"MZ",
                      headers={**world["staff"], "Content-Type": "application/x-msdownload"})
    assert exe.status_code == 415
    huge = client.post(upload, params={"filename": "big.png"}, content=b"\0" * 5000,
                       headers={**world["staff"], "Content-Type": "image/png"})
    assert huge.status_code == 413 and "at most 4096 bytes" in huge.json()["detail"]
    fetched = client.get(f"{upload}/{stored.json()['id']}", headers=world["operator"])
    assert (fetched.status_code, fetched.content, fetched.headers["content-type"]) == (200, photo, "image/png")
    assert client.get(f"{upload}/{stored.json()['id']}", headers=roads_staff).status_code == 404

    review_path = f"/api/replies/{reply['id']}/review"
    assert client.post(review_path, json={"decision": "approve"}, headers=world["operator"]).status_code == 403
    roads_reviewer = token(client, world, "reviewer", world["roads"])
    assert client.get("/api/replies/pending-review", headers=roads_reviewer).json() == []
    assert client.post(review_path, json={"decision": "approve"}, headers=roads_reviewer).status_code == 404
    water_reviewer = token(client, world, "reviewer", world["water"])
    assert [r["id"] for r in client.get("/api/replies/pending-review", headers=water_reviewer).json()] == [reply["id"]]
    approved = client.post(review_path, json={"decision": "approve"}, headers=water_reviewer)
    assert approved.status_code == 200 and approved.json()["channel"] == "phone"
    again = client.post(review_path, json={"decision": "return", "note": "x"}, headers=water_reviewer)
    assert again.status_code == 409

    [waiting] = client.get("/api/replies/awaiting-delivery", headers=world["operator"]).json()
    assert (waiting["id"], waiting["ticket_number"], waiting["phone"]) == (reply["id"], ticket["number"],
                                                                           "13800001234")
    assert [a["filename"] for a in waiting["attachments"]] == ["现场.png"]
    delivered = client.post(f"/api/replies/{reply['id']}/delivery", json={"delivered": True, "note": "电话宣读"},
                            headers=world["operator"])
    assert delivered.status_code == 200 and delivered.json()["delivered_at"] is not None
    assert client.get("/api/replies/awaiting-delivery", headers=world["operator"]).json() == []
    assert client.get(f"/api/tickets/{ticket['id']}", headers=world["operator"]).json()["status"] == "replied"


def test_the_transitions_endpoint_refuses_a_reply_without_its_content(client, world):
    ticket = new_ticket(client, world)
    walk(client, world, ticket["id"], ("dispatch", {"unit_id": world["water"]}), ("sign", {}), ("start", {}))
    refused = client.post(f"/api/tickets/{ticket['id']}/transitions", json={"action": "reply"},
                          headers=world["operator"])
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "action"


def test_rejection_from_the_configured_reasons_and_archived_tickets_are_read_only(client, world):
    reasons = client.get("/api/rejection-reasons", headers=world["operator"]).json()
    assert reasons["out_of_jurisdiction"] == "非本辖区各级政府行政职权管辖范围内的事项" and "other" in reasons
    ticket = new_ticket(client, world, content="外省的房产纠纷")
    path = f"/api/tickets/{ticket['id']}/transitions"
    free_text = client.post(path, json={"action": "reject", "rejection_reason": "out_of_jurisdiction",
                                        "note": "外省"}, headers=world["operator"])
    assert free_text.status_code == 422 and free_text.json()["detail"][0]["loc"][-1] == "note"
    unknown = client.post(path, json={"action": "reject", "rejection_reason": "lazy"}, headers=world["operator"])
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"][-1] == "rejection_reason"
    rejected = client.post(path, json={"action": "reject", "rejection_reason": "out_of_jurisdiction"},
                           headers=world["operator"]).json()
    assert (rejected["status"], rejected["rejection_reason"]) == ("not_accepted", "out_of_jurisdiction")
    assert rejected["events"][-1]["note"] == reasons["out_of_jurisdiction"]
    assert client.post(path, json={"action": "archive"}, headers=world["operator"]).status_code == 200
    edit = client.patch(f"/api/tickets/{ticket['id']}", json={"address": "x"}, headers=world["operator"])
    assert edit.status_code == 409 and "archived and read-only" in edit.json()["detail"]["message"]
    level = client.patch(f"/api/tickets/{ticket['id']}/level", json={"level": 1}, headers=world["operator"])
    assert level.status_code == 409
    assert client.get(f"/api/tickets/{ticket['id']}", headers=world["operator"]).json()["address"] is None
