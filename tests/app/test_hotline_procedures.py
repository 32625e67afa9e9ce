"""The shipped 12345 flow against the real ticket database (SQLite and PostgreSQL) and the real scheduler:
what the procedures require of a call's ticket. The caller is scripted (callflow_fakes); the SIP and Vosk
path of the same flow is tests/test_hotline_e2e.py's."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import callflows
from callflows.bundle import load_bundle
from callflows.templates import render
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


def test_a_report_kept_confidential_and_an_appeal_read_back_with_the_appeal_deadline(tickets, session_factory):
    """举报 asks "需要为您保密吗？" and key 1 stores the ticket confidential; 申诉 is key 7 of the type menu and
    the caller hears the appeal's resolution deadline (7 working days), not a level's."""
    bundle = load_bundle(HOTLINE)
    report = ScriptedCall(Quiet(3.0), Say("有人在小区里倒卖假药", 2.0), Quiet(2), Keys("5"), Keys("1"),
                          Say("王芳", 1.0), Quiet(1.5), Say("龙井路8号", 1.5), Quiet(2), Keys("1"),
                          caller=CALLER, call_id="call-report")
    assert Harness(tickets=tickets).run(bundle, report).outcome == "completed"
    assert "zh:需要为您保密吗？需要请说是或按1，不需要请说不是或按2。" in report.texts()
    ticket = stored(session_factory, "call-report")
    assert (ticket.request_type, ticket.confidential, ticket.status) == ("举报", True, "received")

    appeal = ScriptedCall(Quiet(3.0), Say("对处理结果不服", 2.0), Quiet(2), Keys("7"),
                          Say("王芳", 1.0), Quiet(1.5), Say("龙井路8号", 1.5), Quiet(2), Keys("1"),
                          caller=CALLER, call_id="call-appeal")
    assert Harness(tickets=tickets).run(bundle, appeal).outcome == "completed"
    ticket = stored(session_factory, "call-appeal")
    assert ticket.request_type == "申诉" and not ticket.confidential
    due = {deadline.kind: deadline.due_at for deadline in ticket.deadlines}
    assert set(due) == {"appeal_review", "appeal_investigation", "appeal_resolution"}
    flow = bundle.main
    heard = render(flow.nodes["read_back"].prompt.texts["zh"],
                   {"ticket_number": ticket.number, "deadline": due["appeal_resolution"]}, "zh", bundle.labels_for(flow))
    assert appeal.texts()[-2] == f"zh:{heard}"
    assert due["appeal_resolution"] - ticket.received_at > timedelta(days=7)  # 7 working days, not 7 days flat
