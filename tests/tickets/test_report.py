"""The periodic report on the real databases: its period bounds on the hotline's calendar, its figures from
the statistics (the same before and after archiving), the units that let deadlines pass, the same JSON from
the API and the command line (its `main`, in-process), and its errors."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

import ticket_steps
from ticket_api_helpers import ADMIN_TOKEN, auth
from tickets import report, service
from tickets.__main__ import main
from tickets.api import ApiSettings, create_app
from tickets.lifecycle import Action
from tickets.scheduler import Scheduler

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 20, tzinfo=SHANGHAI)


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=SHANGHAI)


def test_periods_are_shanghai_days_and_monday_weeks():
    assert report.bounds("daily", date(2026, 3, 4)) == (at(4, 0), at(5, 0))
    assert report.bounds("weekly", date(2026, 3, 4)) == (at(2, 0), at(9, 0))
    assert report.bounds("weekly", date(2026, 3, 8)) == (at(2, 0), at(9, 0))  # Sunday ends the week
    with pytest.raises(ValueError, match="period: one of daily, weekly"):
        report.bounds("monthly", MONDAY)


@pytest.fixture
def week(session_factory, rules):
    """Tickets of the week of 2 March 2026: the water unit replies in time once and lets one pass; one
    consultation answered at once, one not accepted; one ticket of the next week."""
    with session_factory.begin() as session:
        water = service.create_unit(session, {"name": "市水务局"})

        def make(day, content, topic, **fields):
            ticket, _ = service.create_ticket(session, {"content": content, "topic": topic, "level": 3, **fields},
                                              rules=rules, actor="op", now=at(day))
            return ticket.id

        replied = make(2, "停水", "供水", unit_id=water.id)
        ticket_steps.walk(session, rules, replied, at(2), (Action.DISPATCH, 1, {}), (Action.SIGN, 2, {}),
                          (Action.START, 3, {}), (Action.REPLY, 4, {}),
                          (Action.CALLBACK, 30, {"callback_result": "满意"}), (Action.CLOSE, 31, {}))
        late = make(3, "水压低", "供水", unit_id=water.id)
        ticket_steps.walk(session, rules, late, at(3), (Action.DISPATCH, 0, {}))
        answered = make(4, "社保卡怎么补办", "社保")
        ticket_steps.walk(session, rules, answered, at(4), (Action.ANSWER_DIRECTLY, 0, {}))
        rejected = make(5, "外省的事", "其他")
        ticket_steps.walk(session, rules, rejected, at(5), (Action.REJECT, 0, {"rejection_reason": "out_of_jurisdiction"}))
        make(10, "下周的", "供水")
    Scheduler(session_factory).run_once(at(6, 12))  # the late ticket's unit_reply (due 5 March) is supervised
    return {"water": water.id, "replied": replied, "answered": answered, "rejected": rejected}


def test_weekly_report_figures_and_archiving_changes_none(session_factory, rules, week):
    with session_factory() as session:
        before = report.build(session, "weekly", date(2026, 3, 5), NOW)
    assert (before["period"], before["start"], before["end"]) == (
        "weekly", "2026-03-02T00:00:00+08:00", "2026-03-09T00:00:00+08:00")
    rates = before["rates"]
    assert (rates["received"], rates["not_accepted"], rates["responded_in_time"], rates["resolved"],
            rates["callbacks_reached"], rates["satisfied"]) == (4, 1, 3, 2, 1, 1)
    assert (rates["response_rate"], rates["resolution_rate"], rates["satisfaction_rate"]) == (0.75, 0.6667, 1.0)
    assert [(r["unit_name"], r["received"], r["response_rate"]) for r in before["rates_by_unit"]] == [
        ("市水务局", 2, 0.5)]
    assert before["hot_topics"] == [{"topic": "供水", "count": 2}, {"topic": "其他", "count": 1},
                                    {"topic": "社保", "count": 1}]
    assert before["overdue_units"] == [{"unit_id": week["water"], "unit_name": "市水务局", "supervised": 1,
                                        "tickets_supervised": 1, "overdue_at_end": 1}]
    with session_factory.begin() as session:
        for ticket_id in (week["replied"], week["answered"], week["rejected"]):
            service.transition(session, ticket_id, Action.ARCHIVE, actor="op", rules=rules, now=at(19))
    with session_factory() as session:
        assert report.build(session, "weekly", date(2026, 3, 5), NOW) == before
        daily = report.build(session, "daily", date(2026, 3, 6), NOW)
    # the 督办 fired on 6 March; the ticket was received on the 3rd, so the day has no rates
    assert daily["rates"]["received"] == 0 and daily["overdue_units"][0]["supervised"] == 1


def test_api_and_command_line_give_the_same_report(db_url, session_factory, rules, week, capsys):
    app = create_app(ApiSettings(database_url=db_url, bootstrap_admin_token=ADMIN_TOKEN), rules)
    try:
        with TestClient(app) as client:
            answer = client.get("/api/reports/weekly?date=2026-03-04", headers=auth(ADMIN_TOKEN))
            assert client.get("/api/reports/monthly?date=2026-03-04", headers=auth(ADMIN_TOKEN)).status_code == 422
            bad = client.get("/api/reports/daily?date=9999-12-31", headers=auth(ADMIN_TOKEN))
            assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "date"]
    finally:
        app.state.tickets.session_factory.kw["bind"].dispose()
    assert answer.status_code == 200
    capsys.readouterr()
    assert main(["report", "--period", "weekly", "--date", "2026-03-04", "--database", db_url]) == 0
    from_cli, from_api = json.loads(capsys.readouterr().out), answer.json()
    assert from_cli.pop("generated_at") != "" and from_api.pop("generated_at") != ""
    assert from_cli == from_api and from_api["rates"]["received"] == 4


def test_the_command_refuses_a_bad_date_and_a_database_without_tickets(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--period", "daily", "--date", "2026-02-30"])
    assert exit_.value.code == 2 and "not a date (YYYY-MM-DD): '2026-02-30'" in capsys.readouterr().err
    assert main(["report", "--period", "daily", "--date", "2026-03-02",
                 "--database", f"sqlite:///{tmp_path / 'empty.sqlite3'}"]) == 2
    assert "cannot read the tickets database" in capsys.readouterr().err
