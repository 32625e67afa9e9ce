"""The shipped 12345 flow against the real ticket database (SQLite and PostgreSQL) and the real scheduler:
what the procedures require of a call's ticket. The caller is scripted (callflow_fakes); the SIP and Vosk
path of the same flow is tests/test_hotline_e2e.py's."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import callflows
from callflows.bundle import load_bundle
from tests.app.test_adapters_tickets import session_factory, stored, tickets  # noqa: F401 - the database fixtures
from tests.callflows.callflow_fakes import Harness, Keys, Quiet, Say, ScriptedCall
from tickets import service
from tickets.models import utcnow
from tickets.scheduler import RoundReport, Scheduler

HOTLINE = Path(callflows.__file__).parent / "flows" / "hotline12345.yaml"
CALLER = "13904330001"
ANSWER = "신분증과 사진을 가지고 가까운 파출소에서 신청하십시오."


def test_a_consultation_answered_from_the_knowledge_base_ends_answered_and_is_never_reminded(
        tickets, session_factory):
    with session_factory.begin() as session:
        service.create_knowledge(session, {"question": "거주증 신청", "answer": ANSWER, "keywords": ["거주증"],
                                           "language": "ko"})
    call = ScriptedCall(
        Keys("2"), Quiet(1.5),  # Korean, pressed during the greeting; no key at the emergency guidance
        Say("거주증은 어떻게 신청하는지 문의드립니다", 2.5), Quiet(2),  # the request in own words
        Say("네", 0.5), Quiet(1),  # yes, a consultation
        caller=CALLER, call_id="call-kb")
    result = Harness(tickets=tickets).run(load_bundle(HOTLINE), call)

    assert result.outcome == "completed"
    assert f"ko:{ANSWER}" in call.texts()
    ticket = stored(session_factory, "call-kb")
    assert (ticket.status, ticket.handling_mode, ticket.request_type, ticket.unit_id) == ("answered", "答复", "咨询",
                                                                                          None)
    assert ticket.answer == ANSWER
    [response] = ticket.deadlines
    assert response.kind == "response" and response.met_at == ticket.closed_at <= response.due_at
    scheduler = Scheduler(session_factory)
    for days in (1, 3, 7, 8, 20, 40):
        assert scheduler.run_once(utcnow() + timedelta(days=days)) == RoundReport()
    with session_factory() as session:
        actions = [e.action for e in service.get_ticket(session, ticket.id).events]
    assert "remind" not in actions and "supervise" not in actions
    assert actions[-2:] == ["submit", "answer_directly"]
