"""three_way.seats with a scripted dialler and sessions: seats rung in order, each hearing the announcement in
its own language; 1 accepts (also during the announcement), 2 declines and the next seat is rung; busy, no
answer, no key, a hang-up during the announcement; cancel stops the ringing; declined seats are hung up.
(Through the real Kamailio: tests/three_way/test_three_way_sip.py.)"""
from __future__ import annotations

import threading
import time

from three_way_fakes import FakeCallEnded, FakeSession, ScriptedDialler

from three_way.duty import Seat
from three_way.seats import SeatDialler, SeatOutcome


def announcement(language: str) -> str:
    return f"announcement-{language}"


def seat_session(*keys: str, during_announcement: bool = False) -> FakeSession:
    """A seat that presses `keys` once the announcement started (or, with during_announcement, over it)."""
    session = FakeSession()

    def on_play(audio):
        for key in keys:
            session.press(key)
        return keys[0] if during_announcement and keys else None

    session.on_play = on_play
    return session


def dialler_for(script, **options) -> tuple[SeatDialler, ScriptedDialler]:
    dialler = ScriptedDialler(script, **{k: v for k, v in options.items() if k == "ring_seconds"})
    seats = SeatDialler(dialler, call_ended=(FakeCallEnded,), ring_timeout=5, key_timeout=0.3,
                        **{k: v for k, v in options.items() if k != "ring_seconds"})
    return seats, dialler


def test_a_decline_rings_the_next_seat_which_accepts_in_its_own_language():
    decliner, acceptor = seat_session("2"), seat_session("1")
    seats, dialler = dialler_for({"1002": "busy", "1003": decliner, "1004": acceptor})
    progress: list[tuple[str, str]] = []
    result = seats.ring([Seat("1002"), Seat("1003"), Seat("1004", "ko"), Seat("1005")], announcement,
                        cancel=threading.Event(), progress=lambda seat, state: progress.append((seat.number, state)))
    assert result.accepted and result.session is acceptor and result.seat == Seat("1004", "ko")
    assert dialler.dialled == ["1002", "1003", "1004"]  # 1005 never rung
    assert decliner.played == ["announcement-zh"] and acceptor.played == ["announcement-ko"]
    assert decliner.hangups == 1 and acceptor.hangups == 0
    assert [(a.seat.number, a.outcome) for a in result.attempts] == [
        ("1002", SeatOutcome.BUSY), ("1003", SeatOutcome.DECLINED), ("1004", SeatOutcome.ACCEPTED)]
    assert progress == [("1002", "ringing"), ("1002", "busy"), ("1003", "ringing"), ("1003", "announcing"),
                        ("1003", "declined"), ("1004", "ringing"), ("1004", "announcing"), ("1004", "accepted")]


def test_a_key_pressed_during_the_announcement_counts():
    eager = seat_session("1", during_announcement=True)
    seats, _ = dialler_for({"1002": eager})
    result = seats.ring([Seat("1002")], announcement, cancel=threading.Event())
    assert result.accepted and eager.played == ["announcement-zh"]


def test_nobody_accepts_every_outcome_is_listed():
    silent = seat_session()
    other_keys = seat_session("5", "#")
    leaves = FakeSession()
    leaves.on_play = lambda audio: leaves.hang_up_remote()
    seats, dialler = dialler_for({"1": "no_answer", "2": silent, "3": other_keys, "4": leaves, "5": "failed"})
    result = seats.ring([Seat(n) for n in "12345"], announcement, cancel=threading.Event())
    assert not result.accepted and result.session is None
    assert [a.outcome for a in result.attempts] == [SeatOutcome.NO_ANSWER, SeatOutcome.NO_KEY, SeatOutcome.NO_KEY,
                                                    SeatOutcome.HUNG_UP, SeatOutcome.FAILED]
    assert silent.played == ["announcement-zh"] * 2  # said again once before giving up
    assert silent.hangups == 1 and other_keys.hangups == 1
    assert result.summary() == "1 no_answer, 2 no_key, 3 no_key, 4 hung_up, 5 failed"


def test_cancel_stops_the_ringing_at_once_and_no_further_seat_is_rung():
    seats, dialler = dialler_for({"1002": "no_answer", "1003": seat_session("1")}, ring_seconds=10)
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()
    result = seats.ring([Seat("1002"), Seat("1003")], announcement, cancel=cancel)
    assert time.monotonic() - started < 2
    assert not result.accepted and [a.outcome for a in result.attempts] == [SeatOutcome.CANCELLED]
    assert dialler.dialled == ["1002"]


def test_cancel_while_a_seat_decides_hangs_it_up():
    slow = FakeSession()  # answers, hears the announcement, thinks...
    seats, _ = dialler_for({"1002": slow})
    seats.key_timeout = 5
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    result = seats.ring([Seat("1002")], announcement, cancel=cancel)
    assert [a.outcome for a in result.attempts] == [SeatOutcome.CANCELLED] and slow.hangups == 1


def test_no_seats_means_nothing_is_rung():
    seats, dialler = dialler_for({})
    result = seats.ring([], announcement, cancel=threading.Event())
    assert not result.accepted and result.summary() == "no seat rung" and dialler.dialled == []
