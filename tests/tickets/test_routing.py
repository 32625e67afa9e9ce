"""Dispatch routed by the member units' categories and areas (按责转办): the API proposes units with the reason,
the operator confirms by dispatching, and the unit's reply deadline starts at the dispatch; SQLite and
PostgreSQL."""
from __future__ import annotations

from datetime import datetime

from tests.tickets.ticket_api_helpers import new_ticket


def test_units_are_proposed_by_category_and_area_and_the_operator_confirms_by_dispatching(client, world):
    admin, operator = world["admin"], world["operator"]
    for unit in ({"name": "龙井市水务局", "categories": ["水电气热"], "areas": ["龙井"]},
                 {"name": "市供电公司", "categories": ["停电"]},
                 {"name": "龙井市街道办", "areas": ["龙井路", "龙井"]}):
        assert client.post("/api/units", json=unit, headers=admin).status_code == 201
    ticket = new_ticket(client, world, content="我家停水两天了", address="龙井市龙井路8号")  # topic 水电气热
    proposals = client.get(f"/api/tickets/{ticket['id']}/routing", headers=operator)
    assert proposals.status_code == 200, proposals.text
    assert [(p["unit_name"], p["reasons"]) for p in proposals.json()] == [
        ("龙井市水务局", ["topic 水电气热 is among its categories", "the address is in its area 龙井"]),
        ("龙井市街道办", ["the address is in its area 龙井路", "the address is in its area 龙井"])]
    best = proposals.json()[0]
    assert (best["by_category"], best["by_area"]) == (True, True)

    before = datetime.now().astimezone()
    dispatched = client.post(f"/api/tickets/{ticket['id']}/transitions", headers=operator,
                             json={"action": "dispatch", "unit_id": best["unit_id"]}).json()
    assert (dispatched["status"], dispatched["unit_id"]) == ("dispatched", best["unit_id"])
    [unit_reply] = [d for d in dispatched["deadlines"] if d["kind"] == "unit_reply"]
    assert datetime.fromisoformat(unit_reply["started_at"]) >= before.replace(microsecond=0)

    power = new_ticket(client, world, content="小区停电了", address="延吉市")
    assert [(p["unit_name"], p["reasons"]) for p in
            client.get(f"/api/tickets/{power['id']}/routing", headers=operator).json()] == [
        ("市供电公司", ["the content names its category 停电"]),         # ties by name
        ("龙井市水务局", ["topic 水电气热 is among its categories"])]
    nowhere = new_ticket(client, world, content="表扬社区医生", address="延吉市")
    assert client.get(f"/api/tickets/{nowhere['id']}/routing", headers=operator).json() == []
    assert client.get(f"/api/tickets/{ticket['id']}/routing", headers=world["staff"]).status_code == 403
    assert client.get("/api/tickets/999999/routing", headers=operator).status_code == 404
