"""The shipped 12345 flow's three-way path on the real node through the real Kamailio, with the composition's
real parts: the ticket database (SQLite), the member-unit directory and holiday calendar, three_way's desk,
the prompt cache (espeak-ng), recordings. Callers and seats are softphones.

One part is scripted: what the caller says is "understood" as a water-supply complaint (`WaterComplaint`),
because espeak-ng's Korean is not recognised by the small Korean model (try it: the words come out wrong),
and a request must be understood for its topic to name a unit. Real Vosk on the phone path is what
tests/test_hotline_e2e.py covers; here the claim is the telephony and the tickets.

Shown: a seat that declines passes the call to the next one, which talks with the citizen (each hears the
other's tone), and the citizen's "yes, answered" closes the ticket as answered by the unit; every seat
declining, or a holiday (no seat rung at all), transfers the ticket to the unit (转办) under its reply
deadline, and the citizen hears that ticket's number and deadline."""
from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from three_way_fakes import wait_for

from app.adapters.calendar_adapter import DatabaseCalendar
from app.adapters.recordings_adapter import WavRecordings
from app.adapters.switchboard_adapter import IvrSwitchboard
from app.adapters.tickets_adapter import DatabaseTickets
from app.conferences import build_desk
from asr import Endpointer, ListeningTurn, TurnResult
from callflows.bundle import load_bundle
from callflows.handler import FlowCallHandler
from callflows.interpreter import CallServices
from callflows.prompts import PromptLibrary
from callflows.registry import FlowRegistry
from callflows.templates import render
from ivr.session import CallEnded
from ivr.softphone.audio import similarity, tone_share
from pcm import read_wav
from tickets import db, service
from tickets.service import TicketRules
from tts import PromptSynthesizer

pytestmark = pytest.mark.sip

ROOT = Path(__file__).resolve().parents[2]
FLOW = ROOT / "callflows" / "flows" / "hotline12345.yaml"
SHANGHAI = ZoneInfo("Asia/Shanghai")
RATE = 8000
UNIT = "自来水公司"


class ScriptedAnswer(ListeningTurn):
    """asr's real endpointer (the caller's real audio finds the answer's end), no decoding: the text is
    scripted (None: a menu answer not understood)."""

    def __init__(self, endpointer: Endpointer, text: str | None) -> None:
        super().__init__(endpointer, None)
        self.text = text

    @property
    def recognising(self) -> bool:
        return True

    def result(self) -> TurnResult:
        heard = super().result()
        return TurnResult(heard.audio, self.text if heard.audio else None, heard.audio is not None)


class WaterComplaint:
    """The Speech port, scripted: every utterance is the same Korean water-supply complaint; menu answers
    are not recognised (the caller presses keys)."""

    TEXT = "우리 집이 사흘째 단수입니다. 민원입니다."

    def has_model(self, language: str) -> bool:
        return language == "ko"

    def listen(self, language: str, *, phrases=None, recognise: bool = True, timeout: float, max_length: float,
               end_silence: float, on_partial=None) -> ListeningTurn:
        endpointer = Endpointer(timeout=timeout, end_silence=end_silence, max_length=max_length)
        if not recognise:
            return ListeningTurn(endpointer, None)
        return ScriptedAnswer(endpointer, None if phrases else self.TEXT)


class Hotline:
    def __init__(self, tmp: Path, node_factory) -> None:
        url = f"sqlite:///{tmp / 'tickets.sqlite3'}"
        db.upgrade(url)
        self.session_factory = db.make_session_factory(db.make_engine(url))
        self.prompts = PromptLibrary(PromptSynthesizer(tmp / "prompts"))
        self.bundle = load_bundle(FLOW)
        handler: list[FlowCallHandler] = []
        self.node = node_factory(lambda session: handler[0](session))
        self.desk = build_desk(self.node, self.session_factory, tmp / "recordings", None, ring_timeout=15)
        self.desk.seats.key_timeout = 6
        services = CallServices(speech=WaterComplaint(), tickets=DatabaseTickets(self.session_factory,
                                                                                  TicketRules.default()),
                                switchboard=IvrSwitchboard(self.node, self.desk),
                                recordings=WavRecordings(tmp / "recordings"), prompts=self.prompts,
                                calendar=DatabaseCalendar(self.session_factory))
        handler.append(FlowCallHandler(FlowRegistry(FLOW.parent), "hotline12345", services,
                                       initial_vars={"operator_number": "1003"}, call_ended=(CallEnded,)))

    def unit(self, seats: list[str], *, working_today: bool) -> None:
        today = datetime.now(SHANGHAI).date()
        with self.session_factory.begin() as session:
            service.create_unit(session, {"name": UNIT, "categories": ["水电气热"], "seat_numbers": seats,
                                          "working_hours": "00:00-24:00"})
            service.set_holiday_override(session, today, working_today, "test")

    def prompt(self, node: str, values: dict | None = None) -> bytes:
        flow = self.bundle.main
        text = render(flow.nodes[node].prompt.texts["ko"], values or {}, "ko", self.bundle.labels_for(flow))
        return read_wav(self.prompts.text(text, "ko"))

    def ticket(self, caller: str):
        with self.session_factory() as session:
            found = service.list_tickets(session, service.TicketQuery(text=caller))[0]
            ticket = found[0]
            return {"number": ticket.number, "status": ticket.status, "unit": ticket.unit.name if ticket.unit else None,
                    "handling_mode": ticket.handling_mode, "events": [(e.action, e.note) for e in ticket.events],
                    "unit_reply": next((d.due_at for d in ticket.deadlines if d.kind == "unit_reply"), None)}


@pytest.fixture
def hotline(tmp_path, ivr_node_factory) -> Hotline:
    return Hotline(tmp_path, ivr_node_factory)


def wait_heard(call, reference: bytes, timeout: float = 90.0) -> None:
    """Until `reference` (the start of a prompt, as the IVR's own cache has it) was heard."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if similarity(call.heard(keep_gaps=False), reference).similarity >= 0.8:
            return
        assert not call.ended, "the call ended first"
        time.sleep(0.3)
    raise AssertionError("prompt not heard")


def state_the_request(hotline: Hotline, call) -> None:
    """Korean (2 during the greeting), the request after its question, then confirm the type (1) and decline
    confidentiality (2: a complaint kept confidential is not offered the unit's seat)."""
    assert call.wait_for_audio(0.3, timeout=30)
    call.send_dtmf("2")
    wait_heard(call, hotline.prompt("ask_request"))
    call.play(tone(300, 1.5))  # "speech" (understood as the water complaint)
    wait_heard(call, hotline.prompt("confirm_type", {"request_type": "投诉", "level": 2})[: RATE * 2 * 2])
    call.send_dtmf("1")
    wait_heard(call, hotline.prompt("ask_confidential")[: RATE * 2 * 2])
    call.send_dtmf("2")


def accept_the_offer(hotline: Hotline, call) -> int:
    """"Connect you with 自来水公司 now?" -> 1; returns where the call's audio stood then."""
    wait_heard(call, hotline.prompt("offer_unit", {"unit": UNIT})[: RATE * 2 * 2])
    call.send_dtmf("1")
    return len(call.heard())


def tone(hz: float, seconds: float) -> bytes:
    import numpy as np
    t = np.arange(int(RATE * seconds)) / RATE
    return (6000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def seat_in_thread(phone, key: str, hang_up_after: float | None = None) -> list:
    calls: list = []

    def run() -> None:
        call = phone.wait_incoming(60)
        calls.append(call)
        if call is None:
            return
        time.sleep(1.0)  # the announcement starts
        call.send_dtmf(key)
        if hang_up_after is not None:
            time.sleep(hang_up_after)
            call.hangup()

    threading.Thread(target=run, daemon=True).start()
    return calls


def test_a_declining_seat_passes_to_the_next_who_answers_the_citizen_on_the_spot(hotline, softphone_factory):
    decliner = softphone_factory(answer=True, tone=1200)
    acceptor = softphone_factory(answer=True, tone=1200)
    hotline.unit([decliner.extension, acceptor.extension], working_today=True)
    declined = seat_in_thread(decliner, "2")
    accepted = seat_in_thread(acceptor, "1", hang_up_after=5.0)
    citizen = softphone_factory(tone=None)
    call = citizen.dial("12345")
    assert call.wait_answered(15)
    state_the_request(hotline, call)
    offer = accept_the_offer(hotline, call)
    assert wait_for(lambda: accepted and accepted[0] is not None and not accepted[0].ended, 60)
    call.start_tone(440)  # the citizen talks with the seat
    assert wait_for(lambda: accepted[0].ended, 30)
    call.stop_tone()
    assert tone_share(accepted[0].heard()[-RATE * 2 * 2:], 440) > 0.5  # the seat heard the citizen
    assert tone_share(call.heard()[offer:], 1200) > 0.05  # the citizen heard the seat
    assert declined[0].wait_ended(5) and declined[0].summary().digits_sent == "2"
    wait_heard(call, hotline.prompt("ask_answered")[: RATE * 2 * 2])  # "was your question answered?"
    call.send_dtmf("1")
    assert call.wait_ended(60)
    ticket = hotline.ticket(citizen.extension)
    assert (ticket["status"], ticket["handling_mode"], ticket["unit"]) == ("answered", "答复", UNIT)
    assert ticket["events"][-1][0] == "answer_directly"
    assert ticket["events"][-1][1].startswith(f"answered on the spot by {UNIT} in a three-way call")
    assert wait_for(lambda: hotline.node.health().active_calls == 0)
    assert hotline.node.media_clock.ticker_count == 0 and hotline.desk.setup_threads == 0


@pytest.mark.parametrize("holiday", [False, True], ids=["all-seats-decline", "holiday"])
def test_nobody_takes_it_the_ticket_goes_to_the_unit_and_the_citizen_hears_its_number(
        hotline, softphone_factory, holiday):
    seats = [softphone_factory(answer=True), softphone_factory(answer=True)]
    hotline.unit([seat.extension for seat in seats], working_today=not holiday)
    declines = [seat_in_thread(seat, "2") for seat in seats]
    citizen = softphone_factory()
    call = citizen.dial("12345")
    assert call.wait_answered(15)
    state_the_request(hotline, call)
    if holiday:  # no offer: the usual questions (name, address: "speech"), call back on this number
        for question in ("ask_name", "ask_address"):
            wait_heard(call, hotline.prompt(question)[: RATE * 2])
            call.play(tone(300, 1.0))
        wait_heard(call, hotline.prompt("callback_choice", {"caller": citizen.extension})[: RATE * 2 * 2])
        call.send_dtmf("1")
    else:
        accept_the_offer(hotline, call)
    assert call.wait_ended(120), "the IVR did not finish the call"
    ticket = hotline.ticket(citizen.extension)
    assert (ticket["status"], ticket["handling_mode"], ticket["unit"]) == ("dispatched", "转办", UNIT)
    assert ticket["unit_reply"] is not None  # the unit's 2 working days, from the dispatch
    values = {"unit": UNIT, "ticket_number": ticket["number"], "deadline": ticket["unit_reply"]}
    heard = call.heard(keep_gaps=False)
    assert similarity(heard, hotline.prompt("read_back_unit", values)).similarity >= 0.8
    other = dict(values, ticket_number=str(int(ticket["number"]) + 1))
    assert similarity(heard, hotline.prompt("read_back_unit", other)).similarity < 0.8
    if holiday:
        assert all(seat.wait_incoming(0.1) is None for seat in seats) and declines == [[], []]
    else:
        assert [d[0].summary().digits_sent for d in declines] == ["2", "2"]
        assert ticket["events"][-1] == ("dispatch", "三方通话: nobody_accepted")
