"""The notifications over HTTP: unit staff see and mark read their unit's, the supervisor the 督办 and 推诿
ones and the supervision list, reviewers nothing; a unit's webhook URL is set but never shown."""
from datetime import timedelta

from ticket_api_helpers import auth, new_ticket
from tickets import service
from tickets.auth import issue_token
from tickets.scheduler import Scheduler


def dispatch(client, world, unit):
    ticket = new_ticket(client, world, level=3)
    response = client.post(f"/api/tickets/{ticket['id']}/transitions", json={"action": "dispatch", "unit_id": unit},
                           headers=world["operator"])
    assert response.status_code == 200, response.text
    return ticket


def test_who_sees_which_notifications_and_marks_them_read(app, client, world):
    with app.state.tickets.session_factory.begin() as session:
        supervisor = auth(issue_token(session, "监督员", "supervisor")[1])
        reviewer = auth(issue_token(session, "reviewer", "reviewer")[1])
    water, roads = dispatch(client, world, world["water"]), dispatch(client, world, world["roads"])
    # ten days on: both tickets missed the unit's 2 working days and the 7 days' response: 督办 twice, 推诿
    Scheduler(app.state.tickets.session_factory).run_once(service.utcnow() + timedelta(days=10))

    mine = client.get("/api/notifications", headers=world["staff"]).json()
    assert sorted((n["ticket_number"], n["kind"], n["deadline_kind"]) for n in mine["items"]) == [
        (water["number"], "evasion", None), (water["number"], "supervise", "response"),
        (water["number"], "supervise", "unit_reply")]
    assert {n["unit_id"] for n in mine["items"]} == {world["water"]} and mine["unread"] == 3
    assert [n["id"] for n in mine["items"]] == sorted((n["id"] for n in mine["items"]), reverse=True)

    everything = client.get("/api/notifications", headers=world["operator"]).json()
    assert everything["unread"] == 6 and {n["ticket_number"] for n in everything["items"]} == {
        water["number"], roads["number"]}
    theirs = next(n["id"] for n in everything["items"] if n["ticket_number"] == roads["number"])
    assert client.post(f"/api/notifications/{theirs}/read", headers=world["staff"]).status_code == 404

    first = mine["items"][0]["id"]
    read = client.post(f"/api/notifications/{first}/read", headers=world["staff"]).json()
    assert (read["acknowledged_by"], read["id"]) == ("water staff", first)
    again = client.post(f"/api/notifications/{first}/read", headers=world["operator"]).json()
    assert again["acknowledged_at"] == read["acknowledged_at"] and again["acknowledged_by"] == "water staff"
    unread = client.get("/api/notifications?unread=true", headers=world["staff"]).json()
    assert unread["unread"] == 2 and first not in [n["id"] for n in unread["items"]]
    page = client.get(f"/api/notifications?limit=1&before_id={first}", headers=world["staff"]).json()
    assert [n["id"] for n in page["items"]] == [mine["items"][1]["id"]]

    supervised = client.get("/api/notifications?kind=remind", headers=supervisor).json()
    assert supervised["items"] == [] and supervised["unread"] == 5  # 督办 and 推诿 only, every unit
    listing = client.get("/api/supervision", headers=supervisor).json()
    assert [(t["number"], sorted(t["missed_deadlines"]), t["evasion_flagged_at"] is not None) for t in listing] == [
        (water["number"], ["response", "unit_reply"], True), (roads["number"], ["response", "unit_reply"], True)]
    assert client.get("/api/supervision", headers=world["staff"]).status_code == 403
    assert client.get("/api/notifications", headers=reviewer).status_code == 403
    assert client.get("/api/notifications").status_code == 401
    bad = client.get("/api/notifications?kind=nag", headers=world["staff"])
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "kind"]


def test_a_units_webhook_is_set_by_the_administrator_and_never_shown(client, world):
    created = client.post("/api/units", json={"name": "市供热公司", "webhook_url": "https://hooks.example/unit?k=s3cret"},
                          headers=world["admin"])
    assert created.status_code == 201 and created.json()["webhook_configured"] is True
    assert "s3cret" not in client.get(f"/api/units/{created.json()['id']}", headers=world["staff"]).text
    bad = client.patch(f"/api/units/{world['water']}", json={"webhook_url": "ftp://files/x"}, headers=world["admin"])
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "webhook_url"]
    cleared = client.patch(f"/api/units/{created.json()['id']}", json={"webhook_url": None}, headers=world["admin"])
    assert cleared.json()["webhook_configured"] is False
