"""The HTTP API on the real databases through FastAPI's TestClient: validation, 404/409, idempotency,
concurrent transitions, roles, and the OpenAPI document."""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ticket_api_helpers import auth, count_tickets, new_ticket


def test_create_proposes_level_sets_deadline_and_history(client, world):
    ticket = new_ticket(client, world)
    assert len(ticket["number"]) == 10 and ticket["number"].isdigit()
    assert (ticket["status"], ticket["level"], ticket["topic"]) == ("received", 2, "水电气热")
    received = datetime.fromisoformat(ticket["received_at"])
    assert datetime.fromisoformat(ticket["response_due_at"]) - received == timedelta(hours=24)
    assert [e["action"] for e in ticket["events"]] == ["create"]
    assert ticket["events"][0]["actor"] == "operator 1"
    assert "dispatch" in ticket["allowed_actions"]


def test_same_idempotency_key_returns_the_original_ticket(client, world, app):
    headers = {**world["operator"], "Idempotency-Key": "call-42-intake"}
    first = client.post("/api/tickets", json={"content": "路灯不亮"}, headers=headers)
    again = client.post("/api/tickets", json={"content": "路灯不亮"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["number"] == first.json()["number"]
    assert count_tickets(app) == 1


def test_idempotency_keys_of_the_ivr_drafts_are_refused(client, world, app):
    response = client.post("/api/tickets", json={"content": "路灯不亮", "call_id": "c0ffee"},
                           headers={**world["operator"], "Idempotency-Key": "call:c0ffee"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert count_tickets(app) == 0


def test_racing_creates_with_one_key_make_one_ticket_and_distinct_keys_distinct_numbers(client, world, app):
    def creator(key: str) -> Callable[[], Any]:
        return functools.partial(client.post, "/api/tickets", json={"content": "井盖丢失"},
                                 headers={**world["operator"], "Idempotency-Key": key})

    retries = at_once(*(creator("retry-storm") for _ in range(4)))
    assert sorted(r.status_code for r in retries) == [200, 200, 200, 201]
    assert len({r.json()["id"] for r in retries}) == 1
    distinct = at_once(*(creator(f"k{i}") for i in range(4)))
    assert [r.status_code for r in distinct] == [201] * 4
    assert len({r.json()["number"] for r in distinct}) == 4
    assert count_tickets(app) == 5


@pytest.mark.parametrize("body, field", [
    ({"content": "x", "colour": "red"}, "colour"),
    ({"content": "x", "level": "high"}, "level"),
    ({"content": "x", "level": 5}, "level"),
    ({"content": "x", "request_type": "complaint"}, "request_type"),
    ({"content": "x", "phone": "call me"}, "phone"),
    ({"caller_name": "张三"}, "content"),
])
def test_bad_fields_get_422_naming_the_field(client, world, app, body, field):
    response = client.post("/api/tickets", json=body, headers=world["operator"])
    assert response.status_code == 422
    assert [error["loc"][-1] for error in response.json()["detail"]] == [field]
    assert count_tickets(app) == 0


def test_unknown_unit_is_422_naming_unit_id(client, world):
    response = client.post("/api/tickets", json={"content": "x", "unit_id": 999}, headers=world["operator"])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "unit_id"]


def test_unknown_ticket_is_404(client, world):
    assert client.get("/api/tickets/999", headers=world["operator"]).status_code == 404
    assert client.get("/api/tickets/by-number/2600100001", headers=world["operator"]).status_code == 404
    response = client.post("/api/tickets/999/transitions", json={"action": "sign"}, headers=world["operator"])
    assert response.status_code == 404


def test_lookup_by_number_and_detail_with_history(client, world):
    ticket = new_ticket(client, world)
    by_number = client.get(f"/api/tickets/by-number/{ticket['number']}", headers=world["operator"]).json()
    assert by_number["id"] == ticket["id"]
    client.post(f"/api/tickets/{ticket['id']}/transitions", json={"action": "dispatch", "unit_id": world["water"],
                                                                 "note": "供水问题"}, headers=world["operator"])
    detail = client.get(f"/api/tickets/{ticket['id']}", headers=world["operator"]).json()
    assert [(e["action"], e["from_status"], e["to_status"], e["note"]) for e in detail["events"]] == [
        ("create", None, "received", detail["events"][0]["note"]), ("dispatch", "received", "dispatched", "供水问题")]
    assert (detail["status"], detail["unit_id"], detail["handling_mode"]) == ("dispatched", world["water"], "转办")


def test_invalid_transition_is_409_with_the_allowed_actions(client, world):
    ticket = new_ticket(client, world)
    response = client.post(f"/api/tickets/{ticket['id']}/transitions", json={"action": "archive"},
                           headers=world["operator"])
    assert response.status_code == 409
    body = response.json()["detail"]
    assert body["status"] == "received"
    assert "dispatch" in body["allowed_actions"] and "archive" not in body["allowed_actions"]
    unknown = client.post(f"/api/tickets/{ticket['id']}/transitions", json={"action": "teleport"},
                          headers=world["operator"])
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "action"]


def at_once(*requests: Callable[[], Any]) -> list[Any]:
    """Run the requests at the same moment, one thread each; their responses in order."""
    start = threading.Barrier(len(requests))
    responses: list[Any] = [None] * len(requests)

    def send(index: int) -> None:
        start.wait()
        responses[index] = requests[index]()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return responses


def race(client, url: str, bodies: list[dict], headers: dict) -> list[int]:
    """POST the bodies to `url` at the same moment; the status codes in body order."""
    responses = at_once(*(functools.partial(client.post, url, json=body, headers=headers) for body in bodies))
    return [response.status_code for response in responses]


def test_concurrent_transitions_one_wins_the_other_gets_409(client, world):
    ticket = new_ticket(client, world, unit_id=world["water"])
    url = f"/api/tickets/{ticket['id']}/transitions"
    codes = race(client, url, [{"action": "dispatch", "expected_version": 1},
                               {"action": "escalate", "expected_version": 1}], world["operator"])
    assert sorted(codes) == [200, 409]
    detail = client.get(f"/api/tickets/{ticket['id']}", headers=world["operator"]).json()
    winner = ["dispatch", "escalate"][codes.index(200)]
    assert [e["action"] for e in detail["events"]] == ["create", winner]
    assert detail["version"] == 2


def test_the_same_action_raced_twice_is_applied_once(client, world):
    ticket = new_ticket(client, world, unit_id=world["water"])
    codes = race(client, f"/api/tickets/{ticket['id']}/transitions", [{"action": "dispatch"}] * 2,
                 world["operator"])
    assert sorted(codes) == [200, 409]
    detail = client.get(f"/api/tickets/{ticket['id']}", headers=world["operator"]).json()
    assert [e["action"] for e in detail["events"]] == ["create", "dispatch"]


def test_level_override_moves_the_deadline_and_is_recorded(client, world):
    ticket = new_ticket(client, world, content="小区门口路灯坏了")
    assert ticket["level"] == 3
    response = client.patch(f"/api/tickets/{ticket['id']}/level", json={"level": 1, "note": "电线裸露"},
                            headers=world["operator"])
    assert response.status_code == 200
    changed = response.json()
    received = datetime.fromisoformat(changed["received_at"])
    assert datetime.fromisoformat(changed["response_due_at"]) - received == timedelta(hours=2)
    assert changed["events"][-1]["note"] == "level 3 -> 1: 电线裸露"
    bad = client.patch(f"/api/tickets/{ticket['id']}/level", json={"level": 0}, headers=world["operator"])
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "level"]


def test_without_valid_credentials_401(client, world):
    assert client.get("/api/tickets").status_code == 401
    assert client.get("/api/tickets", headers=auth("not-a-token")).status_code == 401
    response = client.post("/api/tickets", json={"content": "x"}, headers={"Authorization": "Basic eDp5"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_unit_staff_see_and_work_only_their_units_tickets(client, world):
    ours = new_ticket(client, world, unit_id=world["water"])
    theirs = new_ticket(client, world, unit_id=world["roads"], content="道路坑洼")
    for ticket in (ours, theirs):
        client.post(f"/api/tickets/{ticket['id']}/transitions", json={"action": "dispatch"},
                    headers=world["operator"])
    listed = client.get("/api/tickets", headers=world["staff"]).json()
    assert [t["id"] for t in listed["items"]] == [ours["id"]] and listed["total"] == 1
    assert client.get(f"/api/tickets?unit_id={world['roads']}", headers=world["staff"]).status_code == 403
    assert client.get(f"/api/tickets/{theirs['id']}", headers=world["staff"]).status_code == 404
    assert client.get(f"/api/tickets/by-number/{theirs['number']}", headers=world["staff"]).status_code == 404
    signed = client.post(f"/api/tickets/{ours['id']}/transitions", json={"action": "sign"}, headers=world["staff"])
    assert signed.status_code == 200 and signed.json()["events"][-1]["actor"] == "water staff"
    assert client.post(f"/api/tickets/{theirs['id']}/transitions", json={"action": "sign"},
                       headers=world["staff"]).status_code == 404
    assert client.post(f"/api/tickets/{ours['id']}/transitions", json={"action": "escalate"},
                       headers=world["staff"]).status_code == 403


def test_unit_staff_do_not_see_who_asked_for_confidentiality(client, world):
    secret = new_ticket(client, world, unit_id=world["water"], caller_name="李先生", request_type="举报",
                        confidential=True, address="幸福路1号")
    open_one = new_ticket(client, world, unit_id=world["water"], caller_name="王女士")
    as_staff = client.get(f"/api/tickets/{secret['id']}", headers=world["staff"]).json()
    assert (as_staff["caller_name"], as_staff["phone"], as_staff["address"]) == (None, None, None)
    assert as_staff["content"] == secret["content"]
    listed = {t["id"]: t["caller_name"] for t in client.get("/api/tickets", headers=world["staff"]).json()["items"]}
    assert listed == {secret["id"]: None, open_one["id"]: "王女士"}
    as_operator = client.get(f"/api/tickets/{secret['id']}", headers=world["operator"]).json()
    assert (as_operator["caller_name"], as_operator["phone"]) == ("李先生", "13800000000")


def test_roles_outside_their_rights_get_403(client, world):
    assert client.post("/api/tickets", json={"content": "x"}, headers=world["staff"]).status_code == 403
    assert client.post("/api/units", json={"name": "新单位"}, headers=world["operator"]).status_code == 403
    assert client.put("/api/holidays/2026-03-09", json={"is_working_day": False},
                      headers=world["operator"]).status_code == 403
    assert client.get("/api/stats/rates", headers=world["staff"]).status_code == 403
    assert client.post("/api/tokens", json={"name": "x", "role": "admin"}, headers=world["operator"]).status_code == 403


def test_admin_issues_tokens_that_work(client, world):
    response = client.post("/api/tokens", json={"name": "op 2", "role": "operator"}, headers=world["admin"])
    assert response.status_code == 201
    assert client.get("/api/tickets", headers=auth(response.json()["token"])).status_code == 200
    staff_without_unit = client.post("/api/tokens", json={"name": "s", "role": "unit_staff"}, headers=world["admin"])
    assert staff_without_unit.status_code == 422
    assert staff_without_unit.json()["detail"][0]["loc"] == ["body", "unit_id"]


def test_list_filters_sort_pages_and_text_search(client, world):
    for index in range(5):
        new_ticket(client, world, content=f"停水 第{index}次", unit_id=world["water"])
    new_ticket(client, world, content="道路坑洼", request_type="投诉", unit_id=world["roads"])
    headers = world["operator"]
    page = client.get("/api/tickets?sort=created_at&page=2&page_size=2&unit_id=%d" % world["water"],
                      headers=headers).json()
    assert page["total"] == 5 and [t["content"] for t in page["items"]] == ["停水 第2次", "停水 第3次"]
    assert client.get("/api/tickets?q=坑洼", headers=headers).json()["total"] == 1
    assert client.get("/api/tickets?request_type=投诉&level=3", headers=headers).json()["total"] == 1
    assert client.get("/api/tickets?status=received&status=dispatched", headers=headers).json()["total"] == 6
    assert client.get("/api/tickets?overdue=true", headers=headers).json()["total"] == 0
    assert client.get("/api/tickets?created_from=2000-01-01T00:00:00&created_to=2000-01-02T00:00:00",
                      headers=headers).json()["total"] == 0
    bad_sort = client.get("/api/tickets?sort=content", headers=headers)
    assert bad_sort.status_code == 422 and bad_sort.json()["detail"][0]["loc"] == ["query", "sort"]
    bad_status = client.get("/api/tickets?status=lost", headers=headers)
    assert bad_status.status_code == 422 and bad_status.json()["detail"][0]["loc"] == ["query", "status", 0]


def test_units_knowledge_and_holidays(client, world):
    admin, operator = world["admin"], world["operator"]
    created = client.post("/api/units", json={"name": "市燃气公司", "areas": ["东城区"], "categories": ["燃气"],
                                               "seat_numbers": ["2101", "2102"]}, headers=admin)
    assert created.status_code == 201
    unit_id = created.json()["id"]
    again = client.post("/api/units", json={"name": "市燃气公司"}, headers=admin)
    assert again.status_code == 422 and again.json()["detail"][0]["loc"] == ["body", "name"]
    bad = client.post("/api/units", json={"name": "x", "working_hours": "all day"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "working_hours"]
    patched = client.patch(f"/api/units/{unit_id}", json={"seat_numbers": ["2102"]}, headers=admin).json()
    assert patched["seat_numbers"] == ["2102"] and patched["areas"] == ["东城区"]
    assert patched["seat_languages"] == {}
    korean = client.patch(f"/api/units/{unit_id}", json={"seat_languages": {"2102": "ko"}}, headers=admin)
    assert korean.status_code == 200 and korean.json()["seat_languages"] == {"2102": "ko"}
    bad_language = client.patch(f"/api/units/{unit_id}", json={"seat_languages": {"2102": "Korean!"}},
                                headers=admin)
    assert bad_language.status_code == 422 and bad_language.json()["detail"][0]["loc"][:2] == ["body",
                                                                                              "seat_languages"]
    entry = client.post("/api/knowledge", json={"question": "燃气费怎么交", "answer": "可在营业厅或网上缴纳",
                                                "keywords": ["燃气费", "缴费"], "unit_id": unit_id}, headers=operator)
    assert entry.status_code == 201
    found = client.get("/api/knowledge", params={"q": "请问燃气费在哪里缴费"}, headers=world["staff"]).json()
    assert [e["answer"] for e in found] == ["可在营业厅或网上缴纳"]
    assert client.get("/api/knowledge", params={"q": "天气预报"}, headers=operator).json() == []
    assert client.get("/api/knowledge/999", headers=operator).status_code == 404
    holiday = client.put("/api/holidays/2026-03-09", json={"is_working_day": False, "note": "city day"},
                         headers=admin)
    assert holiday.status_code == 200
    assert client.get("/api/holidays", headers=operator).json() == [
        {"day": "2026-03-09", "is_working_day": False, "note": "city day"}]
    assert client.put("/api/holidays/2026-02-30", json={"is_working_day": True}, headers=admin).status_code == 422
    assert client.delete("/api/holidays/2026-03-09", headers=admin).status_code == 204
    assert client.delete("/api/holidays/2026-03-09", headers=admin).status_code == 404


def test_statistics_endpoints(client, world):
    operator = world["operator"]
    ticket = new_ticket(client, world, unit_id=world["water"])
    for body in ({"action": "dispatch"}, {"action": "sign"}, {"action": "start"}):
        assert client.post(f"/api/tickets/{ticket['id']}/transitions", json=body, headers=operator).status_code == 200
    reply = client.post(f"/api/tickets/{ticket['id']}/replies", headers=world["staff"], json={
        "handling_unit": "市水务局", "handled_at": datetime.now(timezone.utc).isoformat(), "situation": "抢修管道",
        "result": "已恢复供水"}).json()
    reviewer = client.post("/api/tokens", json={"name": "reviewer", "role": "reviewer"}, headers=world["admin"])
    assert client.post(f"/api/replies/{reply['id']}/review", json={"decision": "approve"},
                       headers=auth(reviewer.json()["token"])).status_code == 200
    callback = {"action": "callback", "callback_result": "基本满意"}
    assert client.post(f"/api/tickets/{ticket['id']}/transitions", json=callback, headers=operator).status_code == 200
    new_ticket(client, world, content="道路坑洼", topic="道路")
    rates = client.get("/api/stats/rates", headers=operator).json()
    assert (rates["received"], rates["responded_in_time"], rates["resolved"]) == (2, 1, 1)
    assert (rates["response_rate"], rates["resolution_rate"], rates["satisfaction_rate"]) == (0.5, 0.5, 1.0)
    per_unit = client.get("/api/stats/rates/by-unit", headers=operator).json()
    assert [(r["unit_name"], r["received"], r["satisfaction_rate"]) for r in per_unit] == [("市水务局", 1, 1.0)]
    assert client.get("/api/stats/counts?by=level", headers=operator).json() == {"2": 1, "3": 1}
    assert client.get("/api/stats/hot-topics", headers=operator).json() == [
        {"topic": "水电气热", "count": 1}, {"topic": "道路", "count": 1}]
    assert client.get("/api/stats/overdue", headers=operator).json() == []


def test_openapi_lists_the_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    expected = {"/api/tickets": {"get", "post"}, "/api/tickets/{ticket_id}": {"get", "patch"},
                "/api/tickets/by-number/{number}": {"get"}, "/api/tickets/{ticket_id}/transitions": {"post"},
                "/api/tickets/{ticket_id}/level": {"patch"}, "/api/units": {"get", "post"},
                "/api/knowledge": {"get", "post"}, "/api/holidays/{day}": {"put", "delete"},
                "/api/stats/rates": {"get"}, "/api/stats/rates/by-unit": {"get"}, "/api/stats/counts": {"get"},
                "/api/stats/hot-topics": {"get"}, "/api/stats/overdue": {"get"}, "/api/tokens": {"post"}}
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    create = paths["/api/tickets"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in create["parameters"]]
    assert "409" in paths["/api/tickets/{ticket_id}/transitions"]["post"]["responses"]
