"""Satisfaction callbacks (回访) end to end: the node's dialler places the due attempt through the real
Kamailio, the softphone in answer mode is the citizen, the shipped callback flow runs on the real session
(real RTP, asr's real endpointer for the recorded reason), and the outcome lands on the ticket in the
database. The clock is injected: retries two hours apart and the quiet hours are crossed without sleeping.
A citizen who calls 12345 while their callback is pending answers the survey in the intake flow."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

import asr
from app.adapters.calendar_adapter import DatabaseCalendar
from app.adapters.recordings_adapter import WavRecordings
from app.adapters.speech_adapter import VoskSpeech
from app.adapters.tickets_adapter import DatabaseTickets
from app.callbacks import CallbackDialler
from app.config import CallbackSettings
from app.wiring import recorded
from callflows.bundle import load_bundle
from callflows.handler import FlowCallHandler
from callflows.interpreter import CallServices
from callflows.prompts import PromptLibrary
from callflows.registry import FlowRegistry
from ivr.session import CallEnded
from tickets import callbacks, db, replies, service
from tickets.calendar import WorkingCalendar
from tickets.lifecycle import Action
from tickets.models import Ticket
from tickets.service import TicketRules
from tts import PromptSynthesizer

pytestmark = pytest.mark.sip

ROOT = Path(__file__).resolve().parents[2]
CALLBACK_FLOW = ROOT / "callflows" / "flows" / "callback.yaml"
SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)  # a Monday morning
RATE = 8000


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class NodesEntered:
    """The flow's observer port (the console's live view uses it): which nodes each call went through."""

    def __init__(self) -> None:
        self.entered: list[str] = []
        self.changed = threading.Condition()

    def node_entered(self, call_id: str, flow: str, node: str) -> None:
        with self.changed:
            self.entered.append(node)
            self.changed.notify_all()

    def partial_transcript(self, call_id: str, text: str) -> None:
        pass

    def final_transcript(self, call_id: str, text: str) -> None:
        pass

    def wait_for(self, node: str, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: node in self.entered, timeout)


class CallbackDesk:
    """A node with the callback dialler over the real parts, and a ticket database on SQLite."""

    def __init__(self, tmp: Path, node_factory, pool: asr.RecognitionPool) -> None:
        url = f"sqlite:///{tmp / 'tickets.sqlite3'}"
        db.upgrade(url)
        self.session_factory = db.make_session_factory(db.make_engine(url))
        self.rules = TicketRules.default()
        self.clock = Clock(T0)
        self.observer = NodesEntered()
        self.recordings = tmp / "recordings"
        # The node answers 12345 like the server's: the call recorded, the intake flow, a pending callback offered.
        node = node_factory(recorded(lambda session: self.dialler.serve_inbound(
            session, lambda extra_vars: self.intake(session, extra_vars)), self.recordings))
        services = CallServices(speech=VoskSpeech(pool), tickets=DatabaseTickets(self.session_factory, self.rules),
                                switchboard=None,  # the callback flow transfers nowhere
                                recordings=WavRecordings(self.recordings),
                                prompts=PromptLibrary(PromptSynthesizer(tmp / "prompts")),
                                calendar=DatabaseCalendar(self.session_factory), observer=self.observer)
        self.settings = CallbackSettings(ring_seconds=8, max_concurrent_calls=2, poll_seconds=1)
        bundle = load_bundle(CALLBACK_FLOW)
        self.intake = FlowCallHandler(FlowRegistry(CALLBACK_FLOW.parent), "hotline12345", services,
                                      initial_vars={"operator_number": "1003"}, call_ended=(CallEnded,))
        self.dialler = CallbackDialler(node, self.session_factory, self.rules, self.settings, lambda: bundle,
                                       services, self.recordings, "node-a", clock=self.clock)

    def replied_ticket(self, phone: str) -> int:
        """A water ticket dispatched, worked on and its reply approved just now (its callback is due)."""
        at = self.clock.now
        with self.session_factory.begin() as session:
            unit = service.create_unit(session, {"name": f"市水务局{phone}"})
            ticket, _ = service.create_ticket(session, {"content": "停水两天了", "phone": phone, "level": 2},
                                              rules=self.rules, actor="op", now=at - timedelta(hours=4))
            for action, extra in ((Action.DISPATCH, {"unit_id": unit.id}), (Action.SIGN, {}), (Action.START, {})):
                service.transition(session, ticket.id, action, actor="op", rules=self.rules, now=at - timedelta(hours=3),
                                   **extra)
            reply = replies.submit_reply(session, ticket.id, {"handling_unit": "市水务局", "handled_at": at,
                                                              "situation": "已修复管道", "result": "已恢复供水"},
                                         actor="unit", rules=self.rules, now=at)
            replies.review_reply(session, reply.id, approve=True, actor="reviewer", rules=self.rules, now=at)
            return ticket.id

    def ticket(self, ticket_id: int) -> Ticket:
        with self.session_factory() as session:
            ticket = session.get(Ticket, ticket_id)
            _ = ticket.events, ticket.deadlines
            session.expunge(ticket)
            return ticket

    def attempts(self, ticket_id: int) -> list:
        with self.session_factory() as session:
            return callbacks.attempts_of(session, ticket_id)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    registry = asr.ModelRegistry(asr.AsrSettings(models_dir=tmp_path_factory.mktemp("models"),
                                                 cache_dir=tmp_path_factory.mktemp("asr-cache")))
    pool = asr.RecognitionPool(registry)
    yield pool
    pool.shutdown()


@pytest.fixture
def desk(tmp_path, ivr_node_factory, pool) -> CallbackDesk:
    return CallbackDesk(tmp_path, ivr_node_factory, pool)


def tone(hz: float, seconds: float) -> bytes:
    t = np.arange(int(RATE * seconds)) / RATE
    return (6000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def answer(desk: CallbackDesk, phone, key: str):
    """The citizen answers, presses `key` while the reply is read (type-ahead), and for 3 says a reason."""
    call = phone.wait_incoming(20)
    assert call is not None, "the callback did not ring"
    assert call.wait_for_audio(0.3, timeout=20)  # the greeting: the media flows both ways
    call.send_dtmf(key)
    if key == "3":
        assert desk.observer.wait_for("ask_reason", 60)
        call.play(tone(300, 1.5), wait=False)  # "还是没有水" as far as the endpointer is concerned
    return call


def test_not_satisfied_reopens_the_ticket_with_a_new_unit_deadline(desk, softphone_factory):
    citizen = softphone_factory(answer=True)
    ticket_id = desk.replied_ticket(citizen.extension)
    [attempt_id] = desk.dialler.run_once()
    call = answer(desk, citizen, "3")
    assert desk.dialler.wait_idle(90)
    assert call.wait_ended(10) and call.summary().digits_sent == "3"
    ticket = desk.ticket(ticket_id)
    assert (ticket.status, ticket.callback_result) == ("dispatched", "不满意")
    [unit_reply] = [d for d in ticket.deadlines if d.kind == "unit_reply" and d.is_open]
    assert (unit_reply.started_at, unit_reply.due_at) == (T0, datetime(2026, 3, 4, 23, 59, 59, tzinfo=SHANGHAI))
    [attempt] = desk.attempts(ticket_id)
    assert (attempt.id, attempt.outcome, attempt.satisfaction, attempt.called_number) == (
        attempt_id, "answered", "不满意", citizen.extension)
    assert Path(attempt.recording_ref).stat().st_size > RATE * 2 * 3  # the whole call, seconds of it
    reason = Path(attempt.reason_ref)
    assert reason.parent.is_relative_to(desk.recordings) and reason.stat().st_size > RATE * 2 * 1  # ~1.5 s said
    assert [e.action for e in ticket.events][-3:] == ["reply_delivered", "callback", "reopen"]


def test_satisfied_closes_the_ticket(desk, softphone_factory):
    citizen = softphone_factory(answer=True)
    ticket_id = desk.replied_ticket(citizen.extension)
    desk.dialler.run_once()
    answer(desk, citizen, "1")
    assert desk.dialler.wait_idle(90)
    ticket = desk.ticket(ticket_id)
    assert (ticket.status, ticket.callback_result, ticket.closed_at) == ("closed", "满意", T0)
    [attempt] = desk.attempts(ticket_id)
    assert (attempt.outcome, attempt.satisfaction, attempt.reason_ref) == ("answered", "满意", None)


def test_not_reached_retried_two_hours_apart_never_at_night_then_unreachable(desk, softphone_factory):
    citizen = softphone_factory()  # refuses every call (486 Busy Here)
    desk.clock.now = T0.replace(hour=17)
    ticket_id = desk.replied_ticket(citizen.extension)
    for hours_later in (0, 2, 4):  # 17:00, 19:00, 21:00 -> the third waits for the morning
        desk.clock.now = T0.replace(hour=17) + timedelta(hours=hours_later)
        dialled = desk.dialler.run_once()
        assert desk.dialler.wait_idle(30)
        if hours_later < 4:
            assert len(dialled) == 1
        else:
            assert dialled == []  # 21:00: quiet hours
    desk.clock.now = T0.replace(hour=19, minute=59) + timedelta(hours=12)  # 07:59 next day: still quiet
    assert desk.dialler.run_once() == []
    desk.clock.now = T0.replace(hour=8) + timedelta(days=1)
    assert len(desk.dialler.run_once()) == 1 and desk.dialler.wait_idle(30)
    attempts = desk.attempts(ticket_id)
    assert [(a.number, a.outcome) for a in attempts] == [(1, "busy"), (2, "busy"), (3, "busy")]
    assert [a.ended_at.astimezone(SHANGHAI).strftime("%d %H:%M") for a in attempts] == [
        "02 17:00", "02 19:00", "03 08:00"]
    ticket = desk.ticket(ticket_id)
    assert (ticket.status, ticket.callback_result) == ("callback_done", "unreachable")
    assert desk.dialler.run_once() == []


def test_a_phone_that_rings_unanswered_is_retried_two_hours_later(desk, sip_server, _free_tester_extensions):
    from pyVoIP.VoIP import VoIPPhone

    from ivr.local_sip_server import free_udp_port

    extension = next(_free_tester_extensions)
    ringing = VoIPPhone(sip_server.host, sip_server.port, extension, sip_server.password(extension),
                        myIP="127.0.0.1", sipPort=free_udp_port(), callCallback=lambda call: None)  # never picks up
    ringing.start()
    try:
        ticket_id = desk.replied_ticket(extension)
        started = time.monotonic()
        assert len(desk.dialler.run_once()) == 1 and desk.dialler.wait_idle(30)
        rang = time.monotonic() - started
    finally:
        ringing.stop()
    first, second = desk.attempts(ticket_id)
    assert (first.outcome, first.satisfaction, first.recording_ref, second.state, second.due_at) == (
        "no_answer", None, None, "pending", T0 + timedelta(hours=2))
    assert desk.settings.ring_seconds <= rang < desk.settings.ring_seconds + 5  # rang its configured time
    assert desk.ticket(ticket_id).status == "replied"


def test_two_nodes_racing_and_a_restart_place_each_attempt_once(desk, ivr_node_factory, softphone_factory,
                                                               _free_tester_extensions):
    citizen = softphone_factory()  # busy: each call it gets is one attempt spent
    ticket_id = desk.replied_ticket(citizen.extension)
    second_node = ivr_node_factory(lambda session: None, extension=next(_free_tester_extensions))
    other = CallbackDialler(second_node, desk.session_factory,
                            desk.rules, desk.settings, lambda: load_bundle(CALLBACK_FLOW), desk.dialler.services,
                            desk.recordings, "node-b", clock=desk.clock)
    barrier = threading.Barrier(2)
    placed: dict[str, list[int]] = {}

    def node_round(name: str, dialler: CallbackDialler) -> None:
        barrier.wait()
        placed[name] = dialler.run_once()
        dialler.wait_idle(30)

    threads = [threading.Thread(target=node_round, args=item) for item in (("a", desk.dialler), ("b", other))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(placed["a"] + placed["b"]) == [a.id for a in desk.attempts(ticket_id)][:1]
    restarted = CallbackDialler(desk.dialler.node, desk.session_factory, desk.rules, desk.settings,
                                lambda: load_bundle(CALLBACK_FLOW), desk.dialler.services, desk.recordings, "node-a",
                                clock=desk.clock)
    assert restarted.run_once() == []  # the next attempt is two hours away, not repeated now
    assert [(a.number, a.state, a.outcome) for a in desk.attempts(ticket_id)] == [(1, "done", "busy"),
                                                                                (2, "pending", None)]


def test_a_citizen_calling_12345_with_a_pending_callback_answers_it_there(desk, softphone_factory):
    citizen = softphone_factory()
    ticket_id = desk.replied_ticket(citizen.extension)
    desk.clock.now = T0.replace(hour=22)  # the callback waits for the morning; the citizen calls tonight
    with desk.session_factory.begin() as session:
        callbacks.request_now(session, ticket_id, actor="operator", policy=desk.dialler.policy,
                              calendar=WorkingCalendar(), now=desk.clock.now)
    call = citizen.dial("12345")
    assert call.wait_answered(15) and call.wait_for_audio(0.3, timeout=20)
    call.send_dtmf("1")  # Mandarin
    for node in ("offer_callback", "ask_satisfaction"):
        assert desk.observer.wait_for(node, 60), desk.observer.entered
        call.send_dtmf("1")  # hear the reply; 满意
    assert call.wait_ended(60)
    deadline = time.monotonic() + 10
    while desk.ticket(ticket_id).status == "replied" and time.monotonic() < deadline:
        time.sleep(0.1)
    ticket = desk.ticket(ticket_id)
    assert (ticket.status, ticket.callback_result) == ("closed", "满意")
    [attempt] = desk.attempts(ticket_id)
    assert (attempt.outcome, attempt.satisfaction, attempt.called_number, attempt.node) == (
        "answered", "满意", None, "node-a")
    assert Path(attempt.recording_ref).stat().st_size > RATE * 2 * 3


def test_a_hang_up_before_the_question_is_retried(desk, softphone_factory):
    citizen = softphone_factory(answer=True)
    ticket_id = desk.replied_ticket(citizen.extension)
    desk.dialler.run_once()
    call = citizen.wait_incoming(20)
    assert call is not None and call.wait_for_audio(0.3, timeout=20)  # the greeting has started
    call.hangup()
    assert desk.dialler.wait_idle(30)
    first, second = desk.attempts(ticket_id)
    assert (first.outcome, first.satisfaction, second.state, second.due_at) == (
        "hung_up", None, "pending", T0 + timedelta(hours=2))
    assert desk.ticket(ticket_id).status == "replied"


def test_a_round_whose_lease_step_fails_still_places_the_due_calls(desk, softphone_factory, monkeypatch, caplog):
    citizen = softphone_factory()
    desk.replied_ticket(citizen.extension)

    def refused(*args, **kwargs):
        raise RuntimeError("a row the rules refuse")

    monkeypatch.setattr(callbacks, "expire_leases", refused)
    assert len(desk.dialler.run_once()) == 1 and desk.dialler.wait_idle(30)
    assert "closing attempts past their lease failed" in caplog.text


def test_a_call_whose_flow_cannot_start_is_hung_up_and_counted(desk, softphone_factory):
    citizen = softphone_factory(answer=True)
    ticket_id = desk.replied_ticket(citizen.extension)
    desk.dialler.flow = lambda: (_ for _ in ()).throw(OSError("flow file unreadable"))
    desk.dialler.run_once()
    call = citizen.wait_incoming(20)
    assert call is not None and call.wait_ended(10)  # not left open until the media time-out
    assert desk.dialler.wait_idle(10)
    first, _ = desk.attempts(ticket_id)
    assert (first.outcome, first.note) == ("failed", "OSError: flow file unreadable")
    assert desk.dialler.node.health().active_calls == 0
