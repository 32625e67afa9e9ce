"""The HTTP API under hostile or careless use, on SQLite and PostgreSQL (issue 8, findings 7-API, 8 and 9):
tokens listed and revoked, confidential tickets kept from unit staff, another unit's ticket as unknown as a
missing one, idempotency keys that cannot be reused for another request, one ticket per call, length limits
documented in the OpenAPI, the unit of a dispatched ticket moved only by dispatch, and bad input answered
with 422 or 409, never 500."""
from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from ticket_api_helpers import auth, count_tickets, new_ticket
from tickets.api import ApiSettings, create_app

# --- tokens (finding 7, the API's part) -----------------------------------------------------------------------


def issue(client: TestClient, world: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = client.post("/api/tokens", json=body, headers=world["admin"])
    assert response.status_code == 201, response.text
    return response.json()


def test_admin_lists_tokens_without_their_secrets(client, world):
    staff_token = issue(client, world, name="roads staff", role="unit_staff", unit_id=world["roads"])
    unused = issue(client, world, name="night operator", role="operator")
    assert client.get("/api/tickets", headers=auth(staff_token["token"])).status_code == 200
    response = client.get("/api/tokens", headers=world["admin"])
    assert response.status_code == 200
    listed = {t["name"]: t for t in response.json()}
    assert set(listed) == {"bootstrap admin", "operator 1", "water staff", "roads staff", "night operator"}
    roads = listed["roads staff"]
    assert (roads["role"], roads["unit_id"], roads["revoked_at"]) == ("unit_staff", world["roads"], None)
    assert roads["created_at"] and roads["last_used_at"]  # used once above
    assert listed["night operator"]["last_used_at"] is None and listed["night operator"]["id"] == unused["id"]
    text = response.text
    for secret in (staff_token["token"], unused["token"], "admin-secret-for-tests"):
        assert secret not in text
    assert all(set(t) == {"id", "name", "role", "unit_id", "created_at", "last_used_at", "revoked_at"}
               for t in response.json())


def test_a_revoked_token_answers_401_at_once(client, world):
    token = issue(client, world, name="leaving operator", role="operator")
    headers = auth(token["token"])
    assert client.get("/api/tickets", headers=headers).status_code == 200
    revoked = client.delete(f"/api/tokens/{token['id']}", headers=world["admin"])
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.get("/api/tickets", headers=headers).status_code == 401
    assert client.post("/api/tickets", json={"content": "x"}, headers=headers).status_code == 401
    again = client.delete(f"/api/tokens/{token['id']}", headers=world["admin"])
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
    listed = {t["id"]: t for t in client.get("/api/tokens", headers=world["admin"]).json()}
    assert listed[token["id"]]["revoked_at"] == revoked.json()["revoked_at"]


def test_token_management_is_for_admins_and_keeps_one_admin(client, world):
    assert client.get("/api/tokens", headers=world["operator"]).status_code == 403
    assert client.delete("/api/tokens/1", headers=world["staff"]).status_code == 403
    assert client.delete("/api/tokens/9999", headers=world["admin"]).status_code == 404
    admins = [t for t in client.get("/api/tokens", headers=world["admin"]).json() if t["role"] == "admin"]
    last = client.delete(f"/api/tokens/{admins[0]['id']}", headers=world["admin"])
    assert last.status_code == 409 and "last administrator" in last.json()["detail"]["message"]
    assert client.get("/api/tokens", headers=world["admin"]).status_code == 200


def test_a_revoked_bootstrap_token_stays_revoked_after_a_restart(app, client, world, db_url, rules):
    second = issue(client, world, name="second admin", role="admin")
    bootstrap = next(t for t in client.get("/api/tokens", headers=world["admin"]).json()
                     if t["name"] == "bootstrap admin")
    assert client.delete(f"/api/tokens/{bootstrap['id']}", headers=auth(second["token"])).status_code == 200
    restarted = create_app(ApiSettings(database_url=db_url, bootstrap_admin_token="admin-secret-for-tests"), rules)
    try:
        with TestClient(restarted) as again:
            assert again.get("/api/tickets", headers=world["admin"]).status_code == 401
    finally:
        restarted.state.tickets.session_factory.kw["bind"].dispose()


# --- confidential tickets and other units (finding 8) -----------------------------------------------------

CALL_DETAILS = {"call_id": "4f1c9a0e7b2d4c8e9a6b5d3c2e1f0a9b", "recording_ref": "recordings/2026/caller.wav",
                "transcript_ref": "recordings/2026/caller.json", "name_recording_ref": "recordings/2026/name.wav",
                "address_recording_ref": "recordings/2026/address.wav"}


def dispatched(client, world, unit: str, **fields: Any) -> dict[str, Any]:
    ticket = new_ticket(client, world, unit_id=world[unit], **fields)
    response = client.post(f"/api/tickets/{ticket['id']}/transitions", json={"action": "dispatch"},
                           headers=world["operator"])
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def secret_and_open(client, world) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two water-unit tickets: a confidential 举报 (with call details) and an ordinary one."""
    secret = dispatched(client, world, "water", content="有人在河边偷排废水", caller_name="李秘密", phone="13912345678",
                        address="幸福路88号", request_type="举报", confidential=True, **CALL_DETAILS)
    open_one = dispatched(client, world, "water", content="停水了", caller_name="王公开", phone="13700000001",
                          address="公开街1号", call_id="0" * 32, recording_ref="recordings/open.wav")
    return secret, open_one


@pytest.mark.parametrize("q", ["李秘密", "秘密", "幸福路88", "13912345678"])
def test_unit_staff_cannot_find_a_confidential_ticket_by_who_or_where(client, world, secret_and_open, q):
    secret, _ = secret_and_open
    as_staff = client.get("/api/tickets", params={"q": q}, headers=world["staff"]).json()
    assert as_staff["total"] == 0 and as_staff["items"] == []
    as_operator = client.get("/api/tickets", params={"q": q}, headers=world["operator"]).json()
    assert [t["id"] for t in as_operator["items"]] == [secret["id"]]


def test_unit_staff_still_search_content_and_ordinary_tickets_by_name(client, world, secret_and_open):
    secret, open_one = secret_and_open
    by_content = client.get("/api/tickets", params={"q": "偷排"}, headers=world["staff"]).json()
    assert [t["id"] for t in by_content["items"]] == [secret["id"]]
    assert by_content["items"][0]["caller_name"] is None
    for q in ("王公开", "公开街", "13700000001"):
        found = client.get("/api/tickets", params={"q": q}, headers=world["staff"]).json()
        assert [t["id"] for t in found["items"]] == [open_one["id"]], q


def test_unit_staff_never_see_recordings_transcripts_or_call_ids(client, world, secret_and_open):
    secret, open_one = secret_and_open
    hidden = ("call_id", "recording_ref", "transcript_ref", "name_recording_ref", "address_recording_ref")
    listed = client.get("/api/tickets", headers=world["staff"]).json()["items"]
    details = [client.get(f"/api/tickets/{t['id']}", headers=world["staff"]).json() for t in (secret, open_one)]
    by_number = client.get(f"/api/tickets/by-number/{secret['number']}", headers=world["staff"]).json()
    signed = client.post(f"/api/tickets/{secret['id']}/transitions", json={"action": "sign"},
                         headers=world["staff"]).json()
    for seen in (*listed, *details, by_number, signed):
        assert all(seen[name] is None for name in hidden), seen
        assert "recordings/" not in str(seen) and CALL_DETAILS["call_id"] not in str(seen)
    assert (details[0]["caller_name"], details[0]["phone"], details[0]["address"]) == (None, None, None)
    assert (details[1]["caller_name"], details[1]["phone"]) == ("王公开", "13700000001")
    as_operator = client.get(f"/api/tickets/{secret['id']}", headers=world["operator"]).json()
    assert {name: as_operator[name] for name in hidden} == CALL_DETAILS


def test_another_units_ticket_answers_exactly_like_a_missing_one(client, world):
    theirs = dispatched(client, world, "roads", content="道路坑洼")
    missing_id, missing_number = theirs["id"] + 1000, "2699999999"
    staff = world["staff"]

    def answers(ticket_id: int, number: str) -> list[tuple[int, str]]:
        responses = [client.get(f"/api/tickets/{ticket_id}", headers=staff),
                     client.get(f"/api/tickets/by-number/{number}", headers=staff),
                     client.post(f"/api/tickets/{ticket_id}/transitions", json={"action": "sign"}, headers=staff),
                     client.post(f"/api/tickets/{ticket_id}/transitions", json={"action": "escalate"},
                                 headers=staff),
                     client.patch(f"/api/tickets/{ticket_id}", json={"content": "x"}, headers=staff),
                     client.patch(f"/api/tickets/{ticket_id}/level", json={"level": 1}, headers=staff)]
        return [(r.status_code, r.text.replace(number, "NUMBER").replace(str(ticket_id), "ID")) for r in responses]

    theirs_answers = answers(theirs["id"], theirs["number"])
    assert [code for code, _ in theirs_answers] == [404, 404, 404, 404, 403, 403]
    assert theirs_answers == answers(missing_id, missing_number)
    unchanged = client.get(f"/api/tickets/{theirs['id']}", headers=world["operator"]).json()
    assert (unchanged["status"], unchanged["version"]) == ("dispatched", theirs["version"])


# --- API correctness (finding 9) ----------------------------------------------------------------------------

def test_an_idempotency_key_reused_with_another_body_is_422(client, world, app):
    headers = {**world["operator"], "Idempotency-Key": "intake-7"}
    first = client.post("/api/tickets", json={"content": "路灯不亮", "phone": "13800000000"}, headers=headers)
    other = client.post("/api/tickets", json={"content": "路灯不亮", "phone": "13900000000"}, headers=headers)
    assert (first.status_code, other.status_code) == (201, 422)
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert first.json()["number"] in other.json()["detail"][0]["msg"]
    same = client.post("/api/tickets", json={"phone": "13800000000", "content": "路灯不亮"}, headers=headers)
    assert same.status_code == 200 and same.json()["id"] == first.json()["id"]
    assert count_tickets(app) == 1


def test_a_second_ticket_for_the_same_call_is_409(client, world, app):
    call_id = "9c4e0c1bd1a54e3f8b3f6c7d2a1e0f99"
    first = client.post("/api/tickets", json={"content": "噪音扰民", "call_id": call_id}, headers=world["operator"])
    second = client.post("/api/tickets", json={"content": "另一件事", "call_id": call_id},
                         headers={**world["operator"], "Idempotency-Key": "other-request"})
    assert (first.status_code, second.status_code) == (201, 409)
    assert call_id in second.json()["detail"]["message"]
    other = new_ticket(client, world, content="第二个电话")
    moved = client.patch(f"/api/tickets/{other['id']}", json={"call_id": call_id}, headers=world["operator"])
    assert moved.status_code == 409
    assert count_tickets(app) == 2


# Every free-text field of every request body, with a value one character too long.
TOO_LONG = [
    ("post", "/api/tickets", {"content": "停" * 10_001}, "content"),
    ("post", "/api/tickets", {"content": "停" * 5_000_000}, "content"),
    ("post", "/api/tickets", {"content": "x", "caller_name": "李" * 101}, "caller_name"),
    ("post", "/api/tickets", {"content": "x", "address": "路" * 301}, "address"),
    ("post", "/api/tickets", {"content": "x", "topic": "t" * 101}, "topic"),
    ("post", "/api/tickets", {"content": "x", "language": "k" * 11}, "language"),
    ("post", "/api/tickets", {"content": "x", "call_id": "c" * 201}, "call_id"),
    ("post", "/api/tickets", {"content": "x", "recording_ref": "r" * 501}, "recording_ref"),
    ("post", "/api/tickets", {"content": "x", "transcript_ref": "r" * 501}, "transcript_ref"),
    ("post", "/api/tickets", {"content": "x", "name_recording_ref": "r" * 501}, "name_recording_ref"),
    ("post", "/api/tickets", {"content": "x", "address_recording_ref": "r" * 501}, "address_recording_ref"),
    ("post", "/api/tickets", {"content": "x", "phone": "1" * 41}, "phone"),
    ("patch", "/api/tickets/{id}", {"content": "停" * 10_001}, "content"),
    ("post", "/api/tickets/{id}/transitions", {"action": "dispatch", "note": "n" * 2_001}, "note"),
    ("patch", "/api/tickets/{id}/level", {"level": 1, "note": "n" * 2_001}, "note"),
    ("post", "/api/units", {"name": "u" * 101}, "name"),
    ("post", "/api/units", {"name": "u", "areas": ["a" * 101]}, "areas"),
    ("post", "/api/units", {"name": "u", "areas": ["a"] * 101}, "areas"),
    ("post", "/api/units", {"name": "u", "working_hours": "08:00-09:00" + ",08:00-09:00" * 9}, "working_hours"),
    ("post", "/api/knowledge", {"question": "q" * 501, "answer": "a"}, "question"),
    ("post", "/api/knowledge", {"question": "q", "answer": "a" * 10_001}, "answer"),
    ("post", "/api/knowledge", {"question": "q", "answer": "a", "keywords": ["k" * 51]}, "keywords"),
    ("put", "/api/holidays/2026-03-09", {"is_working_day": False, "note": "n" * 201}, "note"),
    ("post", "/api/tokens", {"name": "n" * 101, "role": "operator"}, "name"),
]


def refusals(client, world, cases: list[tuple[str, str, Any, str]], ticket_id: int) -> list[str]:
    """Sends each case as the admin; what did not come back as a 422 naming the field (empty: all did)."""
    wrong = []
    for method, path, body, field in cases:
        response = client.request(method, path.replace("{id}", str(ticket_id)), json=body, headers=world["admin"])
        named = response.status_code == 422 and field in {
            str(part) for error in response.json()["detail"] for part in error["loc"]}
        if not named:
            wrong.append(f"{method} {path} {field}: {response.status_code} {response.text[:200]}")
    return wrong


def test_oversized_fields_are_422_naming_the_field(client, world, app):
    ticket = new_ticket(client, world)
    assert refusals(client, world, TOO_LONG, ticket["id"]) == []
    assert count_tickets(app) == 1
    after = client.get(f"/api/tickets/{ticket['id']}", headers=world["operator"]).json()
    assert (after["version"], after["content"], [e["action"] for e in after["events"]]) == (1, ticket["content"],
                                                                                              ["create"])


def request_schemas(openapi: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The component schemas used as request bodies."""
    names = set()
    for operations in openapi["paths"].values():
        for operation in operations.values():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = body.get("schema", {}).get("$ref", "")
            if ref:
                names.add(ref.rsplit("/", 1)[-1])
    return {name: openapi["components"]["schemas"][name] for name in names}


def string_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Every string schema inside `schema` (through anyOf and array items)."""
    if schema.get("type") == "string":
        return [schema]
    found = []
    for option in schema.get("anyOf", []):
        found += string_schemas(option)
    if "items" in schema:
        found += string_schemas(schema["items"])
    return found


def test_the_openapi_documents_a_limit_on_every_free_text_field(client):
    openapi = client.get("/openapi.json").json()
    schemas = request_schemas(openapi)
    assert {"TicketCreate", "TicketFields", "TransitionRequest", "LevelOverride", "UnitIn", "KnowledgeIn",
            "HolidayIn", "TokenIn"} <= set(schemas)
    unbounded = []
    for name, schema in schemas.items():
        for field, prop in schema["properties"].items():
            for string in string_schemas(prop):
                if "enum" not in string and "const" not in string and string.get("format") != "date-time" \
                        and "maxLength" not in string:
                    unbounded.append(f"{name}.{field}")
            if prop.get("type") == "array" and "maxItems" not in prop:
                unbounded.append(f"{name}.{field}[]")
    assert unbounded == []
    create = schemas["TicketCreate"]["properties"]
    assert create["content"]["maxLength"] == 10_000
    q = next(p for p in openapi["paths"]["/api/tickets"]["get"]["parameters"] if p["name"] == "q")
    assert q["schema"]["anyOf"][0]["maxLength"] == 200


def test_patch_cannot_move_a_dispatched_ticket_to_another_unit(client, world):
    ticket = dispatched(client, world, "water")
    moved = client.patch(f"/api/tickets/{ticket['id']}", json={"unit_id": world["roads"]}, headers=world["operator"])
    assert moved.status_code == 409
    assert "return_misrouted" in moved.json()["detail"]["allowed_actions"]
    cleared = client.patch(f"/api/tickets/{ticket['id']}", json={"unit_id": None}, headers=world["operator"])
    assert cleared.status_code == 409
    detail = client.get(f"/api/tickets/{ticket['id']}", headers=world["operator"]).json()
    assert (detail["unit_id"], [e["action"] for e in detail["events"]]) == (world["water"], ["create", "dispatch"])
    # the way to hand it over: back to the centre, then a recorded dispatch to the other unit
    for body in ({"action": "return_misrouted", "note": "不属我局"}, {"action": "dispatch", "unit_id": world["roads"]}):
        assert client.post(f"/api/tickets/{ticket['id']}/transitions", json=body,
                           headers=world["operator"]).status_code == 200
    detail = client.get(f"/api/tickets/{ticket['id']}", headers=world["operator"]).json()
    assert (detail["unit_id"], detail["events"][-1]["action"]) == (world["roads"], "dispatch")
    proposal = new_ticket(client, world)  # before dispatch the unit is a proposal the operator corrects
    corrected = client.patch(f"/api/tickets/{proposal['id']}", json={"unit_id": world["roads"]},
                             headers=world["operator"])
    assert corrected.status_code == 200 and corrected.json()["unit_id"] == world["roads"]


HOSTILE = [
    ("post", "/api/tickets", {"content": "停水\x00了"}, "content"),
    ("post", "/api/tickets", {"content": "x", "caller_name": "李\x07"}, "caller_name"),
    ("post", "/api/tickets", {"content": "x", "unit_id": 2**63}, "unit_id"),
    ("post", "/api/tickets", {"content": "x", "unit_id": 0}, "unit_id"),
    ("post", "/api/tickets", {"content": "x", "call_time": "0001-01-01T00:00:00"}, "call_time"),
    ("post", "/api/tickets", {"content": "x", "call_time": "9999-12-31T23:59:59-12:00"}, "call_time"),
    ("post", "/api/tickets/{id}/transitions", {"action": "dispatch", "unit_id": 2**40}, "unit_id"),
    ("post", "/api/tickets/{id}/transitions", {"action": "sign", "expected_version": -1}, "expected_version"),
    ("get", "/api/tickets/99999999999999999999", None, "ticket_id"),
    ("get", "/api/tickets/by-number/26%00", None, "number"),
    ("get", "/api/tickets?q=%00", None, "q"),
    ("get", "/api/tickets?page=99999999999", None, "page"),
    ("get", "/api/tickets?unit_id=99999999999", None, "unit_id"),
    ("get", "/api/tickets?created_from=0001-01-01T00:00:00", None, "created_from"),
    ("get", "/api/stats/rates?start=0001-01-01T00:00:00%2B14:00", None, "start"),
    ("get", "/api/knowledge?q=%00", None, "q"),
    ("get", "/api/units/99999999999", None, "unit_id"),
    ("delete", "/api/tokens/99999999999", None, "token_id"),
]


def test_hostile_values_are_422_naming_the_field_not_500(client, world, app):
    ticket = new_ticket(client, world)
    assert refusals(client, world, HOSTILE, ticket["id"]) == []
    assert count_tickets(app) == 1
