"""Three-way conferences on the real IVR node through the real Kamailio with real RTP, each party a softphone
with a sine tone as its microphone: citizen 440 Hz, seat 1200 Hz (presses 1), operator 2000 Hz.

A frequency analysis (numpy FFT) of what each phone heard shows the other two tones and not its own; the
IVR's mixed recording holds all three and each per-leg recording its party's tone only. A party hanging up
leaves the other two connected; afterwards the node holds no call, RTP stream, ticker or thread of it."""
from __future__ import annotations

import threading
import time
import wave
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from three_way_fakes import wait_for

from ivr.session import CallEnded
from ivr.softphone.audio import tone_share
from recordings.wav_writer import WavRecording
from three_way.desk import Case, Reason, ThreeWayDesk
from three_way.duty import Seat, UnitSeats, WorkingHours
from three_way.seats import SeatOutcome

pytestmark = pytest.mark.sip
TONES = {"citizen": 440, "seat": 1200, "operator": 2000}
ON_DUTY = datetime(2026, 9, 29, 2, 0, tzinfo=timezone.utc)  # a Tuesday, 10:00 in Shanghai


class Weekdays:
    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5


class Directory:
    def __init__(self, seats: list[Seat]) -> None:
        self.seats = seats

    def seats_of(self, unit: str) -> UnitSeats:
        return UnitSeats(unit, self.seats, WorkingHours.parse("08:30-17:30"))


def wav_recordings(root: Path):
    def for_conference(conference_id: str):
        return lambda label: WavRecording(root / f"{conference_id}-{label}.wav")
    return for_conference


def read_wav(path: str) -> bytes:
    with wave.open(path, "rb") as wav:
        return wav.readframes(wav.getnframes())


def last_seconds(pcm: bytes, seconds: float) -> bytes:
    return pcm[-int(8000 * seconds) * 2:]


def answer_in_thread(phone, digits: str | None = None):
    """The phone answers its next call (and presses `digits`); the call object arrives in the list."""
    calls: list = []

    def run() -> None:
        call = phone.wait_incoming(40)
        calls.append(call)
        if call is not None and digits:
            time.sleep(0.5)
            call.send_dtmf(digits)

    threading.Thread(target=run, daemon=True).start()
    return calls


def three_way_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("three-way", "ivr-call"))]


@pytest.fixture
def tone_phones(softphone_factory):
    return {role: softphone_factory(answer=True, tone=hz) for role, hz in TONES.items()}


def test_each_party_hears_the_other_two_tones_and_not_its_own_and_hanging_up_leaves_the_others(
        ivr_node_factory, tone_phones, tmp_path):
    node = ivr_node_factory(lambda session: None)
    finished = []
    desk = ThreeWayDesk(node, node.media_clock, Directory([Seat(tone_phones["seat"].extension)]), Weekdays(),
                        call_ended=(CallEnded,), recordings=wav_recordings(tmp_path),
                        on_finished=lambda *args: finished.append(args), now=lambda: ON_DUTY, ring_timeout=15)
    calls = {role: answer_in_thread(phone, "1" if role == "seat" else None) for role, phone in tone_phones.items()}
    conference = desk.start(Case("自来水公司", "2609900001", "test"), citizen=tone_phones["citizen"].extension,
                            operator=tone_phones["operator"].extension,
                            announcement=lambda language: b"\0\0" * 8000)
    assert wait_for(lambda: len(conference.joined()) == 3, 40), conference.view().legs
    time.sleep(4.0)  # all three talking
    heard = {role: last_seconds(calls[role][0].heard(), 3.0) for role in TONES}
    for role, own in TONES.items():
        assert tone_share(heard[role], own) < 0.01, f"{role} hears its own tone"
        for other, hz in TONES.items():
            if other != role:
                assert tone_share(heard[role], hz) > 0.2, f"{role} does not hear the {other}"

    calls["seat"][0].hangup()  # the seat leaves mid-conference: citizen and operator stay connected
    assert wait_for(lambda: sorted(conference.joined()) == ["citizen", "operator"])
    time.sleep(2.5)
    citizen_now = last_seconds(calls["citizen"][0].heard(), 1.5)
    assert tone_share(citizen_now, 2000) > 0.8 and tone_share(citizen_now, 1200) < 0.01
    assert not calls["citizen"][0].ended and not calls["operator"][0].ended

    calls["operator"][0].hangup()  # fewer than two: the conference ends, the citizen is hung up
    assert wait_for(lambda: calls["citizen"][0].ended)
    assert wait_for(lambda: finished, 10)
    view, case, outcome = finished[0]
    assert outcome.reason is Reason.JOINED and outcome.attempts[0].outcome is SeatOutcome.ACCEPTED
    assert {leg.leg_id: leg.reason for leg in view.legs} == {"citizen": "conference_ended", "operator": "hung_up",
                                                             "seat": "hung_up"}
    mixed = read_wav(view.recordings["mixed"])
    assert all(tone_share(mixed, hz) > 0.1 for hz in TONES.values())
    for role, own in TONES.items():  # each leg's recording: what that party said, on the common timeline
        leg_audio = read_wav(view.recordings[role])
        assert tone_share(leg_audio, own) > 0.9
        assert len(leg_audio) > 8000 * 2 * 3

    assert wait_for(lambda: node.health().active_calls == 0 and node.media_clock.stream_count == 0)
    assert node.media_clock.ticker_count == 0 and desk.setup_threads == 0
    assert wait_for(lambda: three_way_threads() == []), three_way_threads()


def test_a_seat_that_declines_passes_the_call_to_the_next_one(ivr_node_factory, softphone_factory, tmp_path):
    node = ivr_node_factory(lambda session: None)
    citizen = softphone_factory(answer=True, tone=440)
    decliner = softphone_factory(answer=True, tone=1200)
    acceptor = softphone_factory(answer=True, tone=2000)
    finished = []
    desk = ThreeWayDesk(node, node.media_clock, Directory([Seat(decliner.extension), Seat(acceptor.extension)]),
                        Weekdays(), call_ended=(CallEnded,), on_finished=lambda *args: finished.append(args),
                        now=lambda: ON_DUTY, ring_timeout=15)
    citizen_call = answer_in_thread(citizen)
    declined = answer_in_thread(decliner, "2")
    accepted = answer_in_thread(acceptor, "1")
    conference = desk.start(Case("供电局"), citizen=citizen.extension, operator=None,
                            announcement=lambda language: b"\0\0" * 4000)
    assert wait_for(lambda: len(conference.joined()) == 2, 40), conference.view().legs
    assert declined[0].wait_ended(10)  # the declining seat was hung up
    time.sleep(2.0)
    assert tone_share(last_seconds(citizen_call[0].heard(), 1.0), 2000) > 0.8
    accepted[0].hangup()
    assert wait_for(lambda: finished, 15)
    assert [(a.seat.number, a.outcome) for a in finished[0][2].attempts] == [
        (decliner.extension, SeatOutcome.DECLINED), (acceptor.extension, SeatOutcome.ACCEPTED)]
    assert wait_for(lambda: citizen_call[0].ended)
