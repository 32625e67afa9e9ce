"""`python -m tickets due --rule KIND` and the API agree on every deadline kind at every level, with times
across the 2026 National Day holiday (调休 Sunday 27 September and Saturday 10 October are working days),
on SQLite and PostgreSQL. The command runs in-process (its `main`, the code `python -m tickets` runs;
test_cli.py runs it as a process)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from ticket_steps import reply_and_approve, walk
from tickets import service
from tickets.__main__ import main
from tickets.lifecycle import Action

SHANGHAI = ZoneInfo("Asia/Shanghai")
RECEIVED = datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI)  # the last working day before the holiday
DISPATCHED = datetime(2026, 9, 30, 17, 0, tzinfo=SHANGHAI)


def command_due(capsys, started_at: str, kind: str, level: int) -> tuple[str, bool]:
    capsys.readouterr()
    assert main(["due", "--received", started_at, "--rule", kind,
                 *(["--level", str(level)] if kind == "response" else [])]) == 0
    printed = capsys.readouterr()
    return printed.out.strip(), "no data" in printed.err


def test_the_command_and_the_api_agree_on_every_kind_across_national_day(app, client, world, rules, capsys):
    with app.state.tickets.session_factory.begin() as session:
        ids = []
        for level in (1, 2, 3, 4):
            ticket, _ = service.create_ticket(session, {"content": "路灯坏了", "level": level, "request_type": "求助"},
                                              rules=rules, actor="op", now=RECEIVED)
            ids.append(ticket.id)
        for request_type in ("投诉", "申诉"):
            ticket, _ = service.create_ticket(session, {"content": "对处理不满", "request_type": request_type},
                                              rules=rules, actor="op", now=RECEIVED)
            ids.append(ticket.id)
        worked = ids[2]
        walk(session, rules, worked, DISPATCHED, (Action.DISPATCH, 0, {"unit_id": world["water"]}),
             (Action.SIGN, 0, {}), (Action.START, 0, {}))
        reply_and_approve(session, rules, worked, datetime(2026, 10, 9, 10, 0, tzinfo=SHANGHAI))
    tickets = [client.get(f"/api/tickets/{ticket_id}", headers=world["operator"]).json() for ticket_id in ids]
    checked = set()
    for ticket in tickets:
        for deadline in ticket["deadlines"]:
            due, warned = command_due(capsys, deadline["started_at"], deadline["kind"], ticket["level"])
            assert datetime.fromisoformat(due) == datetime.fromisoformat(deadline["due_at"]), deadline
            assert warned is deadline["statutory_data_missing"] is False
            checked.add((deadline["kind"], ticket["level"] if deadline["kind"] == "response" else None))
    assert checked == {("response", 1), ("response", 2), ("response", 3), ("response", 4), ("unit_reply", None),
                       ("complaint_review", None), ("appeal_review", None), ("appeal_investigation", None),
                       ("appeal_resolution", None), ("callback", None)}
    unit_reply = next(d for d in tickets[2]["deadlines"] if d["kind"] == "unit_reply")
    assert datetime.fromisoformat(unit_reply["due_at"]) == datetime(2026, 10, 9, 23, 59, 59, tzinfo=SHANGHAI)
    appeal = {d["kind"]: datetime.fromisoformat(d["due_at"]) for d in tickets[5]["deadlines"]}
    assert appeal["appeal_investigation"] == datetime(2026, 10, 10, 23, 59, 59, tzinfo=SHANGHAI)
