"""IvrSwitchboard (the `Switchboard` port) through the real SIP server: a simulated caller dials the real IVR
node; for a transfer the node dials a plain pyVoIP phone (a SIP stack we did not write) and bridges the two;
for a three-way call the node rings the unit's seats (softphones answering with a tone, pressing keys)
through three_way's desk while the caller hears the hold message, and hands the caller back to the flow
when the seat leaves."""
from __future__ import annotations

import math
import struct
import threading
import time
from datetime import date, datetime, timezone

import pytest

from app.adapters.switchboard_adapter import IvrSwitchboard
from ivr.session import CallEnded
from ivr.softphone.audio import tone_share
from three_way.desk import ThreeWayDesk
from three_way.duty import Seat, UnitSeats, WorkingHours

pytestmark = pytest.mark.sip
RATE = 8000
TUESDAY_10AM = datetime(2026, 9, 29, 2, 0, tzinfo=timezone.utc)
NATIONAL_DAY = datetime(2026, 10, 1, 2, 0, tzinfo=timezone.utc)


def tone(frequency: float, seconds: float) -> bytes:
    n = int(RATE * seconds)
    return struct.pack(f"<{n}h", *(int(8000 * math.sin(2 * math.pi * frequency * i / RATE)) for i in range(n)))


class StatutoryDays:
    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day != date(2026, 10, 1)


class Directory:
    def __init__(self, seats: dict[str, list[Seat]]) -> None:
        self.seats = seats

    def seats_of(self, unit: str) -> UnitSeats | None:
        if unit not in self.seats:
            return None
        return UnitSeats(unit, self.seats[unit], WorkingHours.parse("08:30-17:30"))


class SwitchboardApp:
    """The IVR's on_call: hand the caller to the switchboard and keep what it returned."""

    def __init__(self) -> None:
        self.switchboard: IvrSwitchboard | None = None
        self.action = None
        self.results: list = []
        self.done = threading.Event()

    def on_call(self, session) -> None:
        try:
            self.results.append(self.action(self.switchboard, session))
        except CallEnded:
            self.results.append("caller hung up")
        finally:
            self.done.set()


@pytest.fixture
def ivr_switchboard(ivr_node_factory):
    app = SwitchboardApp()
    node = ivr_node_factory(app.on_call)

    def switchboard(seats: dict[str, list[Seat]], now: datetime = TUESDAY_10AM) -> IvrSwitchboard:
        desk = ThreeWayDesk(node, node.media_clock, Directory(seats), StatutoryDays(), call_ended=(CallEnded,),
                            now=lambda: now, ring_timeout=15, key_timeout=5)
        app.switchboard = IvrSwitchboard(node, desk, ring_timeout=15)
        return app.switchboard

    yield node, app, switchboard


def test_transfer_bridges_the_caller_to_the_number_and_ends_the_caller_when_the_other_side_hangs_up(
        ivr_switchboard, softphone, pyvoip_callee, _free_tester_extensions):
    node, app, switchboard = ivr_switchboard
    desk = next(_free_tester_extensions)
    callee = pyvoip_callee(desk, hangup_after=6)  # plays 2 s of 700 Hz, hangs up 6 s after answering
    switchboard({})
    app.action = lambda switchboard, session: switchboard.transfer(session, desk)

    call = softphone.dial("12345")
    assert call.wait_answered(15), call.summary()
    assert call.wait_for_audio(0.5, timeout=20), "the caller never heard the other party"

    assert call.wait_ended(30), "the caller's leg stayed up after the other side hung up"
    assert app.done.wait(15) and app.results == [True]
    assert callee.ended.wait(15)
    assert tone_share(call.heard(), 700) > 0.8
    # (this pyVoIP callee reads nothing once it hung up itself; the other direction is what the three-way
    # test below checks, on the same conference bridge)
    assert node.media_clock.ticker_count == 0


def test_a_seat_talks_with_the_caller_who_is_handed_back_to_the_flow_when_the_seat_leaves(
        ivr_switchboard, softphone_factory, _free_tester_extensions):
    node, app, switchboard = ivr_switchboard
    nobody = next(_free_tester_extensions)  # not registered: the first seat cannot be reached
    seat = softphone_factory(answer=True, tone=1200)
    switchboard({"自来水公司": [Seat(nobody), Seat(seat.extension, "ko")]})
    announced: list[str] = []
    after: list[bool] = []

    def action(switchboard, session):
        result = switchboard.three_way(session, "自来水公司",
                                       lambda language: announced.append(language) or tone(400, 0.5),
                                       hold=tone(300, 0.4), escape_digit="0", ticket="2609900001")
        after.append(session.ended)
        session.play(tone(600, 1.0), barge_in=False)  # the flow goes on: "was your question answered?"
        session.hangup()
        return result

    app.action = action
    caller = softphone_factory(tone=440)
    call = caller.dial("12345")
    assert call.wait_answered(15), call.summary()
    seat_call = seat.wait_incoming(30)
    assert seat_call is not None
    time.sleep(1.0)  # hears the announcement
    seat_call.send_dtmf("1")
    time.sleep(3.0)
    assert tone_share(seat_call.heard()[-RATE * 2:], 440) > 0.8  # the caller, not itself
    seat_call.hangup()
    assert app.done.wait(20)
    result = app.results[0]
    assert (result.outcome, result.seat) == ("joined", seat.extension) and result.conference_id
    assert announced == ["ko"] and after == [False]
    assert call.wait_ended(15)
    heard = call.heard()
    assert tone_share(heard, 1200) > 0.2 and tone_share(heard, 300) > 0.01  # the seat, and the hold message
    assert tone_share(heard[-RATE * 2 * 2:], 600) > 0.3  # back in the flow after the seat left


def test_off_duty_or_unknown_unit_rings_nobody(ivr_switchboard, softphone_factory):
    node, app, switchboard = ivr_switchboard
    seat = softphone_factory(answer=True)
    board = switchboard({"自来水公司": [Seat(seat.extension)]}, now=NATIONAL_DAY)
    assert not board.seats_on_duty("自来水公司") and not board.seats_on_duty("没有这个单位")
    app.action = lambda switchboard, session: switchboard.three_way(session, "自来水公司", lambda language: b"")
    call = softphone_factory().dial("12345")
    assert call.wait_answered(15)
    assert app.done.wait(15) and app.results[0].outcome == "off_duty"
    assert seat.wait_incoming(1) is None


def test_zero_while_the_seats_ring_lets_the_caller_go_to_the_operator(ivr_switchboard, softphone_factory):
    node, app, switchboard = ivr_switchboard
    seat = softphone_factory(answer=True)  # answers and never presses a key
    switchboard({"自来水公司": [Seat(seat.extension)]})
    app.action = lambda switchboard, session: switchboard.three_way(
        session, "自来水公司", lambda language: tone(400, 3.0), escape_digit="0")
    call = softphone_factory().dial("12345")
    assert call.wait_answered(15)
    seat_call = seat.wait_incoming(30)
    assert seat_call is not None
    call.send_dtmf("0")
    assert app.done.wait(10) and app.results[0].outcome == "escaped"
    assert seat_call.wait_ended(15)  # the seat is let go once its announcement is over
