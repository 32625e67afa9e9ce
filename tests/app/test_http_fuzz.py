"""Property-based fuzz of the node's whole HTTP API from its own OpenAPI document (schemathesis on hypothesis),
on SQLite and PostgreSQL: every operation gets schema-valid and schema-violating requests, sent without a
token and with each role's token. Whatever comes in:
- no answer is a 5xx but a deliberate 503 (and nothing raises through the app);
- without a token nothing but /api/health answers 2xx;
- a role outside an operation's roles never gets a 2xx;
- unit staff never receive anything of another unit's ticket, nor the citizen's identity on their own
  confidential ticket, nor call ids and file references.

Bounded and deterministic: hypothesis is derandomized (the same requests on every run), each
(operation, identity) pair gets HTTP_FUZZ_EXAMPLES random examples (default 4), and each operation up to
HTTP_FUZZ_COVERAGE_CASES of schemathesis' boundary cases as the admin (default 15); raise both for a
deeper run.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from app.http import build_http_app
from app.wiring import Application
from console import ConsoleSettings
from node_fakes import RecordsOnlyNode
from tests.tickets.conftest import db_url, migrated_postgres_url, postgres_databases, rules  # noqa: F401
from tickets import db, service
from tickets.auth import issue_token
from tickets.lifecycle import Action

EXAMPLES = int(os.environ.get("HTTP_FUZZ_EXAMPLES", "4"))
COVERAGE_CASES = int(os.environ.get("HTTP_FUZZ_COVERAGE_CASES", "15"))
ANY, OPERATORS, ADMIN = {"operator", "unit_staff", "admin"}, {"operator", "admin"}, {"admin"}
# Who may use each operation of the tickets and calls API (the console's own pages check their sign-in).
ROLES: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/tickets"): ANY, ("POST", "/api/tickets"): OPERATORS,
    ("GET", "/api/tickets/by-number/{number}"): ANY, ("GET", "/api/tickets/{ticket_id}"): ANY,
    ("PATCH", "/api/tickets/{ticket_id}"): OPERATORS, ("POST", "/api/tickets/{ticket_id}/transitions"): ANY,
    ("POST", "/api/tickets/{ticket_id}/investigation"): ANY, ("PATCH", "/api/tickets/{ticket_id}/level"): OPERATORS,
    ("GET", "/api/units"): ANY, ("POST", "/api/units"): ADMIN, ("GET", "/api/units/{unit_id}"): ANY,
    ("PATCH", "/api/units/{unit_id}"): ADMIN, ("DELETE", "/api/units/{unit_id}"): ADMIN,
    ("GET", "/api/knowledge"): ANY, ("POST", "/api/knowledge"): ANY, ("GET", "/api/knowledge/{entry_id}"): ANY,
    ("PATCH", "/api/knowledge/{entry_id}"): ANY, ("DELETE", "/api/knowledge/{entry_id}"): OPERATORS,
    ("GET", "/api/knowledge-review"): ANY, ("POST", "/api/knowledge/{entry_id}/review"): OPERATORS,
    ("GET", "/api/tickets/{ticket_id}/routing"): OPERATORS,
    ("GET", "/api/holidays"): ANY, ("PUT", "/api/holidays/{day}"): ADMIN, ("DELETE", "/api/holidays/{day}"): ADMIN,
    ("GET", "/api/stats/rates"): OPERATORS, ("GET", "/api/stats/rates/by-unit"): OPERATORS,
    ("GET", "/api/stats/counts"): OPERATORS, ("GET", "/api/stats/hot-topics"): OPERATORS,
    ("GET", "/api/stats/overdue"): OPERATORS, ("GET", "/api/tokens"): ADMIN, ("POST", "/api/tokens"): ADMIN,
    ("DELETE", "/api/tokens/{token_id}"): ADMIN, ("GET", "/api/calls"): OPERATORS,
    ("GET", "/api/notifications"): ANY, ("POST", "/api/notifications/{notification_id}/read"): ANY,
    ("GET", "/api/supervision"): OPERATORS, ("GET", "/api/reports/{period}"): OPERATORS,
}
PUBLIC = {("GET", "/api/health")}
IDENTITIES = (None, "unit_staff", "operator", "admin")


@dataclass
class World:
    """The seeded data: tokens per role, the staff's unit, and what unit staff must never receive."""

    client: TestClient
    tokens: dict[str, str]
    token_ids: set[int]
    other_unit_ticket_ids: set[int]
    never_for_staff: list[str]  # strings that must not occur in any answer to unit staff


@pytest.fixture
def world(db_url, rules, tmp_path) -> Iterator[World]:  # noqa: F811 - db_url and rules are fixtures
    session_factory = db.open_database(db_url)
    secrets: list[str] = []
    with session_factory.begin() as session:
        water = service.create_unit(session, {"name": "市水务局"})
        roads = service.create_unit(session, {"name": "市住建局"})
        tokens, token_ids = {}, set()
        for role, unit in (("operator", None), ("unit_staff", water.id), ("admin", None)):
            record, tokens[role] = issue_token(session, f"fuzz {role}", role, unit)
            token_ids.add(record.id)
        others = []
        for unit, content, name, phone, confidential, call_id in (
                (water, "我家停水两天了", "李保密", "13911112222", True, "c0ffee00c0ffee00c0ffee00c0ffee00"),
                (water, "水压太低", "王公开", "13733334444", False, "c0ffee01c0ffee01c0ffee01c0ffee01"),
                (roads, "住建局的秘密案件ROADSONLY", "赵其他", "13655556666", False, "c0ffee02c0ffee02c0ffee02c0ffee02")):
            ticket, _ = service.create_ticket(session, {
                "content": content, "caller_name": name, "phone": phone, "address": f"{name}的家",
                "confidential": confidential, "unit_id": unit.id, "call_id": call_id,
                "recording_ref": f"/var/recordings/{call_id}.wav"}, rules=rules, actor="seed")
            service.transition(session, ticket.id, Action.DISPATCH, actor="seed", rules=rules)
            secrets += [call_id, f"/var/recordings/{call_id}.wav"]
            if unit is roads:
                others.append(ticket.id)
                secrets += [content, name, phone, ticket.number]
            elif confidential:
                secrets += [name, phone, f"{name}的家"]
    app = build_http_app(session_factory, rules, Application(RecordsOnlyNode([]), stop=lambda: None),
                         ConsoleSettings(session_secret=b"fuzz-session-secret-0123", flows_dir=tmp_path))
    with TestClient(app, raise_server_exceptions=False) as client:  # a 500 is reported with the rest
        yield World(client, tokens, token_ids, set(others), secrets)
    engine = session_factory.kw["bind"]
    assert engine.pool.checkedout() == 0  # every request gave its connection back
    engine.dispose()


def ticket_like(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in `value` that has a ticket's id and number."""
    if isinstance(value, dict):
        if "number" in value and "id" in value and "unit_id" in value:
            yield value
        for item in value.values():
            yield from ticket_like(item)
    elif isinstance(value, list):
        for item in value:
            yield from ticket_like(item)


def violations(world: World, identity: str | None, method: str, path: str, response: Any) -> list[str]:
    """What is wrong with this answer (empty when it is right)."""
    code = response.status_code
    problems = []
    if code >= 500 and code != 503:  # 503: a service this node does not run (three-way without a call flow)
        problems.append(f"server error {code}: {response.text[:300]}")
    if 200 <= code < 300 and identity is None and (method, path) not in PUBLIC and path.startswith("/api/"):
        problems.append(f"answered {code} without a token")
    allowed = ROLES.get((method, path))
    if allowed is not None and identity is not None and identity not in allowed and 200 <= code < 300:
        problems.append(f"{identity} got {code} on an operation for {sorted(allowed)}")
    if identity == "unit_staff":
        problems += [f"unit staff received {secret!r}" for secret in world.never_for_staff if secret in response.text]
        content_type = (response.headers.get("content-type") or [""])[0]  # schemathesis: header -> values
        if content_type.startswith("application/json") and response.text:
            for ticket in ticket_like(json.loads(response.text)):
                if ticket["id"] in world.other_unit_ticket_ids:
                    problems.append(f"unit staff received another unit's ticket {ticket['id']}")
    return problems


def send(world: World, case: Any, identity: str | None) -> list[str]:
    """Send one generated request as `identity`; what is wrong with the answer."""
    method, path = case.operation.method.upper(), case.operation.path
    if method == "DELETE" and path == "/api/tokens/{token_id}" and \
            case.path_parameters.get("token_id") in world.token_ids:
        return []  # revoking the fuzz's own tokens would only test that revocation works (it is tested)
    headers = {"Authorization": f"Bearer {world.tokens[identity]}"} if identity else {}
    request = f"{identity or 'anonymous'} {method} {case.formatted_path} query={case.query} body={str(case.body)[:120]}"
    try:
        response = case.call(headers={**(case.headers or {}), **headers})
    except Exception as error:  # noqa: BLE001 - an exception out of the app is what this test looks for
        return [f"{request}: raised {type(error).__name__}: {str(error)[:200]}"]
    return [f"{request}: {problem}" for problem in violations(world, identity, method, path, response)]


def fuzz_operation(world: World, operation: Any, identity: str | None) -> list[str]:
    """Hypothesis' random phase: schema-valid and schema-violating requests."""
    strategy = (operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
                | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    found: list[str] = []

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: Any) -> None:
        found.extend(send(world, case, identity))

    check()
    return found


def boundary_cases(schema: Any, operation: Any) -> list[Any]:
    """Schemathesis' coverage phase (boundaries, missing and wrong types), thinned evenly to COVERAGE_CASES."""
    cases = list(schema.iter_coverage_cases(operation, generation_modes=list(GenerationMode),
                                            generation_config=schema.config.generation_for(operation=operation)))
    step = max(1, len(cases) // COVERAGE_CASES)
    return cases[::step][:COVERAGE_CASES]


@pytest.mark.timeout(900)  # bounded by the example counts; a loaded shared machine is slow, not stuck
def test_generated_requests_never_500_and_roles_hold(world):
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in operations} >= set(ROLES) | PUBLIC
    problems = []
    for operation in operations:
        for identity in IDENTITIES:
            problems += fuzz_operation(world, operation, identity)
        for case in boundary_cases(schema, operation):  # as the admin: past every role check
            problems += send(world, case, "admin")
    assert problems == [], "\n".join(problems)
