"""Units keep their own knowledge entries (第七条(四) 采编、审核、更新) and an operator reviews each change before
the phone gives it: through the HTTP API, on SQLite and PostgreSQL, with the IVR's own port for what the phone
would say."""
from __future__ import annotations

from app.adapters.tickets_adapter import DatabaseTickets
from tickets.service import TicketRules

QUESTION = {"question": "停水通知在哪里看", "answer": "停水通知在水务局网站公布。", "keywords": ["停水通知"],
            "language": "zh"}
CALLER_ASKS = "请问停水通知在哪里能看到"


def test_a_units_entry_and_its_edit_reach_the_phone_only_once_an_operator_approved_them(client, world, app):
    phone = DatabaseTickets(app.state.tickets.session_factory, TicketRules.default())
    staff, operator = world["staff"], world["operator"]

    created = client.post("/api/knowledge", json=QUESTION, headers=staff)
    assert created.status_code == 201, created.text
    entry = created.json()
    assert (entry["unit_id"], entry["approved"], entry["submitted_by"]) == (world["water"], False, "water staff")
    assert phone.kb_search(CALLER_ASKS, "zh") is None                      # not before the review
    queue = client.get("/api/knowledge-review", headers=operator).json()
    assert [e["id"] for e in queue] == [entry["id"]]

    refused = client.post(f"/api/knowledge/{entry['id']}/review", json={"decision": "return"}, headers=operator)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "note"]
    returned = client.post(f"/api/knowledge/{entry['id']}/review", json={"decision": "return", "note": "写明网址"},
                           headers=operator).json()
    assert (returned["approved"], returned["review_note"]) == (False, "写明网址")
    assert client.get("/api/knowledge-review", headers=operator).json() == [] and phone.kb_search(CALLER_ASKS, "zh") is None

    fixed = "停水通知在水务局网站 swj.example.gov.cn 公布。"
    client.patch(f"/api/knowledge/{entry['id']}", json={"answer": fixed}, headers=staff)
    assert [e["id"] for e in client.get("/api/knowledge-review", headers=staff).json()] == [entry["id"]]
    approved = client.post(f"/api/knowledge/{entry['id']}/review", json={"decision": "approve"}, headers=operator)
    assert approved.status_code == 200 and approved.json()["approved"] and approved.json()["reviewed_by"] == "operator 1"
    assert phone.kb_search(CALLER_ASKS, "zh") == fixed

    edited = client.patch(f"/api/knowledge/{entry['id']}", json={"answer": "停水通知见社区公告栏。"}, headers=staff).json()
    assert edited["pending"] == {"answer": "停水通知见社区公告栏。"} and edited["answer"] == fixed
    assert phone.kb_search(CALLER_ASKS, "zh") == fixed                     # the approved text while the edit waits
    client.post(f"/api/knowledge/{entry['id']}/review", json={"decision": "approve"}, headers=operator)
    assert phone.kb_search(CALLER_ASKS, "zh") == "停水通知见社区公告栏。"
    again = client.post(f"/api/knowledge/{entry['id']}/review", json={"decision": "approve"}, headers=operator)
    assert again.status_code == 409                                        # nothing waits any more


def test_unit_staff_write_only_their_units_entries_and_operators_entries_apply_at_once(client, world, app):
    phone = DatabaseTickets(app.state.tickets.session_factory, TicketRules.default())
    staff, operator = world["staff"], world["operator"]
    others = client.post("/api/knowledge", json={**QUESTION, "unit_id": world["roads"]}, headers=operator).json()
    assert others["approved"] and phone.kb_search(CALLER_ASKS, "zh") == QUESTION["answer"]
    assert client.patch(f"/api/knowledge/{others['id']}", json={"answer": "x"}, headers=staff).status_code == 404
    assert client.post("/api/knowledge", json={**QUESTION, "unit_id": world["roads"]},
                       headers=staff).status_code == 403
    own = client.post("/api/knowledge", json=QUESTION, headers=staff).json()
    moved = client.patch(f"/api/knowledge/{own['id']}", json={"unit_id": world["roads"]}, headers=staff)
    assert moved.status_code == 422 and moved.json()["detail"][0]["loc"] == ["body", "unit_id"]
    assert client.post(f"/api/knowledge/{own['id']}/review", json={"decision": "approve"},
                       headers=staff).status_code == 403                  # units do not approve themselves
    assert client.delete(f"/api/knowledge/{own['id']}", headers=staff).status_code == 403
