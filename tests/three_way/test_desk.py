"""three_way.desk with fakes of its ports: a citizen in the flow is connected with the seat that accepts
(after a decline), escapes with 0 while the seats ring, hangs up while they ring or while talking; a unit
without seats or off duty rings nobody; an operator's request dials citizen, operator and seats itself;
every conference is handed to on_finished once, and no set-up thread outlives it."""
from __future__ import annotations

import threading
import time
from datetime import date, datetime, timezone

import pytest
from three_way_fakes import FakeCallEnded, FakeSession, ManualClock, MemoryRecordings, ScriptedDialler, wait_for

from three_way.conference import LegState
from three_way.desk import Case, Reason, ThreeWayDesk
from three_way.duty import Seat, UnitSeats, WorkingHours
from three_way.seats import SeatOutcome

TUESDAY_10AM = datetime(2026, 9, 29, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
NATIONAL_DAY = datetime(2026, 10, 1, 2, 0, tzinfo=timezone.utc)


class Calendar:
    def __init__(self, holidays: set[date] = frozenset()) -> None:
        self.holidays = holidays

    def is_working_day(self, day: date) -> bool:
        return day not in self.holidays and day.weekday() < 5


class Directory:
    def __init__(self, units: dict[str, list[Seat]]) -> None:
        self.units = units

    def seats_of(self, unit: str) -> UnitSeats | None:
        seats = self.units.get(unit)
        return UnitSeats(unit, seats, WorkingHours.parse("08:30-17:30")) if seats is not None else None


def seat_pressing(key: str, delay: float = 0.0) -> FakeSession:
    session = FakeSession(f"seat-{key}")
    session.on_play = lambda audio: threading.Timer(delay, session.press, args=(key,)).start() if delay \
        else session.press(key)
    return session


class Recorder:
    def __init__(self) -> None:
        self.finished: list = []
        self.done = threading.Event()

    def __call__(self, view, case, outcome) -> None:
        self.finished.append((view, case, outcome))
        self.done.set()


def make_desk(script, units=None, now=TUESDAY_10AM, ring_seconds=0.0, holidays=frozenset()):
    dialler = ScriptedDialler(script, ring_seconds=ring_seconds)
    recorder = Recorder()
    recordings = MemoryRecordings()
    desk = ThreeWayDesk(dialler, ManualClock(), Directory(units or {}), Calendar(holidays),
                        call_ended=(FakeCallEnded,), recordings=lambda conference_id: recordings,
                        on_finished=recorder, now=lambda: now, ring_timeout=5, key_timeout=0.5, tones=False)
    return desk, dialler, recorder


def announce(language: str) -> str:
    return f"case in {language}"


def in_thread(action) -> tuple[threading.Thread, list]:
    results: list = []

    def run() -> None:
        try:
            results.append(action())
        except BaseException as exc:
            results.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, results


def test_the_seat_that_accepts_after_a_decline_talks_with_the_citizen_who_is_handed_back_when_it_leaves():
    decliner, acceptor = seat_pressing("2"), seat_pressing("1")
    desk, dialler, recorder = make_desk({"1002": decliner, "1003": acceptor},
                                        {"自来水公司": [Seat("1002"), Seat("1003", "ko")]})
    assert desk.on_duty("自来水公司") is not None and desk.on_duty("供电局") is None
    citizen = FakeSession("citizen")
    thread, results = in_thread(lambda: desk.connect(citizen, "13800000000", Case("自来水公司", "2609900001"),
                                                     announce, hold=b"\1\0" * 160, escape_digit="0"))
    assert wait_for(lambda: acceptor.taps), "the accepting seat never joined"
    conference = desk.live()[0]
    assert sorted(conference.joined()) == ["citizen", "seat-2"]
    assert acceptor.played == ["case in ko"] and decliner.played == ["case in zh"] and decliner.hangups == 1
    acceptor.hang_up_remote()
    thread.join(5)
    outcome = results[0]
    assert outcome.reason is Reason.JOINED and outcome.seat == Seat("1003", "ko")
    assert [a.outcome for a in outcome.attempts] == [SeatOutcome.DECLINED, SeatOutcome.ACCEPTED]
    assert not citizen.ended and citizen.hangups == 0
    view, case, finished = recorder.finished[0]
    assert case.ticket == "2609900001" and finished == outcome
    assert [(leg.leg_id, leg.state, leg.reason) for leg in view.legs] == [
        ("citizen", LegState.LEFT, "conference_ended"), ("seat", LegState.MISSED, "declined"),
        ("seat-2", LegState.LEFT, "hung_up")]
    assert desk.live() == [] and desk.setup_threads == 0 and conference.clock.tickers == []
    assert desk.get(conference.conference_id)[0] is conference  # still shown after the end


@pytest.mark.parametrize("units,now,reason", [
    ({}, TUESDAY_10AM, Reason.NO_SEATS),
    ({"自来水公司": []}, TUESDAY_10AM, Reason.NO_SEATS),
    ({"自来水公司": [Seat("1002")]}, NATIONAL_DAY, Reason.OFF_DUTY),
    ({"自来水公司": [Seat("1002")]}, datetime(2026, 9, 29, 12, 0, tzinfo=timezone.utc), Reason.OFF_DUTY),  # 20:00
])
def test_no_seat_is_rung_without_seats_or_off_duty(units, now, reason):
    desk, dialler, recorder = make_desk({"1002": seat_pressing("1")}, units, now=now,
                                        holidays={date(2026, 10, 1)})
    outcome = desk.connect(FakeSession(), "1", Case("自来水公司"), announce)
    assert outcome.reason is reason and outcome.conference_id is None
    assert dialler.dialled == [] and recorder.finished == []


def test_nobody_accepting_returns_every_attempt():
    desk, dialler, recorder = make_desk({"1002": "busy", "1003": seat_pressing("2")},
                                        {"u": [Seat("1002"), Seat("1003")]})
    citizen = FakeSession()
    outcome = desk.connect(citizen, "1", Case("u"), announce)
    assert outcome.reason is Reason.NOBODY_ACCEPTED
    assert outcome.summary() == "nobody_accepted (1002 busy, 1003 declined)"
    assert not citizen.ended and recorder.finished[0][2] == outcome


def test_the_citizen_presses_0_while_the_seats_ring_and_is_let_go_at_once():
    slow = seat_pressing("1", delay=3.0)  # answers, and takes its time to accept
    desk, dialler, recorder = make_desk({"1002": slow}, {"u": [Seat("1002")]})
    citizen = FakeSession()
    threading.Timer(0.3, citizen.press, args=("0",)).start()
    started = time.monotonic()
    outcome = desk.connect(citizen, "1", Case("u"), announce, escape_digit="0")
    assert outcome.reason is Reason.ESCAPED and time.monotonic() - started < 2
    assert wait_for(lambda: desk.setup_threads == 0, 10)
    assert slow.ended and slow.taps == []  # the seat was let go, never bridged
    assert not citizen.ended


def test_the_citizen_hanging_up_while_the_seats_ring_ends_it_and_is_raised():
    desk, dialler, recorder = make_desk({"1002": "no_answer"}, {"u": [Seat("1002")]}, ring_seconds=5)
    citizen = FakeSession()
    threading.Timer(0.3, citizen.hang_up_remote).start()
    with pytest.raises(FakeCallEnded):
        desk.connect(citizen, "1", Case("u"), announce)
    assert recorder.finished[0][2].reason is Reason.CITIZEN_LEFT
    assert wait_for(lambda: desk.setup_threads == 0)
    assert dialler.dialled == ["1002"]


def test_the_citizen_hanging_up_while_talking_hangs_up_the_seat():
    seat = seat_pressing("1")
    desk, _, recorder = make_desk({"1002": seat}, {"u": [Seat("1002")]})
    citizen = FakeSession()
    thread, results = in_thread(lambda: desk.connect(citizen, "1", Case("u"), announce))
    assert wait_for(lambda: seat.taps)
    citizen.hang_up_remote()
    thread.join(5)
    assert results[0].reason is Reason.JOINED  # the flow notices the hang-up at its next step
    assert seat.ended and seat.hangups == 1


def test_an_operators_request_dials_everyone_and_the_two_left_stay_connected():
    citizen, operator, seat = FakeSession("c"), FakeSession("o"), seat_pressing("1")
    desk, dialler, recorder = make_desk({"13800000000": citizen, "1003": operator, "1002": seat},
                                        {"u": [Seat("1002")]})
    conference = desk.start(Case("u", "2609900001", "operator ann"), citizen="13800000000", operator="1003",
                            announcement=announce)
    assert wait_for(lambda: len(conference.joined()) == 3)
    assert sorted(dialler.dialled) == ["1002", "1003", "13800000000"]
    seat.hang_up_remote()
    time.sleep(0.1)
    assert sorted(conference.joined()) == ["citizen", "operator"]  # two remain: still talking
    operator.hang_up_remote()
    assert recorder.done.wait(5)
    assert citizen.ended and citizen.hangups == 1  # the conference dialled it: hung up at the end
    view, case, outcome = recorder.finished[0]
    assert outcome.reason is Reason.JOINED and case.started_by == "operator ann"
    assert {leg.leg_id: leg.reason for leg in view.legs} == {"citizen": "conference_ended", "operator": "hung_up",
                                                             "seat": "hung_up"}
    assert wait_for(lambda: desk.setup_threads == 0)


def test_an_operators_request_for_a_citizen_who_does_not_answer_ends_and_lets_the_operator_go():
    operator = FakeSession("o")
    desk, dialler, recorder = make_desk({"13800000000": "no_answer", "1003": operator}, {"u": [Seat("1002")]})
    conference = desk.start(Case("u"), citizen="13800000000", operator="1003", announcement=announce)
    assert recorder.done.wait(5)
    assert recorder.finished[0][2].reason is Reason.CITIZEN_UNREACHABLE
    assert "1002" not in dialler.dialled
    assert wait_for(lambda: operator.ended)  # joined alone, then hung up with the conference
    assert wait_for(lambda: desk.setup_threads == 0)
    assert conference.view().state == "ended"


def test_stop_ends_live_conferences():
    citizen, seat = FakeSession("c"), seat_pressing("1")
    desk, _, recorder = make_desk({"13800000000": citizen, "1002": seat}, {"u": [Seat("1002")]})
    conference = desk.start(Case("u"), citizen="13800000000", operator=None, announcement=announce)
    assert wait_for(lambda: len(conference.joined()) == 2)
    desk.stop()
    assert citizen.ended and seat.ended and desk.setup_threads == 0 and desk.live() == []
