"""three_way.conference with fakes of its ports (a hand-ticked media clock, scripted sessions): parties join
and leave, who hears what, the hold message for a party alone, join/leave tones, mute and listen-only,
the end rules (two remain -> stay connected; fewer -> finished), owned legs hung up and others handed back,
recordings mixed and per leg on one timeline, states and events, and nothing left ticking."""
from __future__ import annotations

import pytest
from three_way_fakes import FakeCallEnded, FakeSession, ManualClock, MemoryRecordings, constant, first_sample

from three_way.conference import JOIN_TONE, LEAVE_TONE, Conference, ConferenceState, LegState
from pcm import FRAME_BYTES, SILENCE_FRAME
from three_way.mixer import Mixer

HOLD = constant(77) * 3


def make(**options) -> tuple[Conference, ManualClock, list]:
    clock = ManualClock()
    events: list = []
    options.setdefault("tones", False)
    options.setdefault("mixer", Mixer(prebuffer_frames=1))
    conference = Conference(clock, call_ended=(FakeCallEnded,), on_event=events.append, **options)
    return conference, clock, events


def speak(clock: ManualClock, said: dict[FakeSession, int], ticks: int = 1) -> None:
    """Every session says its value for `ticks` frames, the clock ticking after each frame."""
    for _ in range(ticks):
        for session, value in said.items():
            session.say(constant(value))
        clock.tick()


def test_three_parties_each_hear_the_other_two_and_the_conference_ends_when_fewer_than_two_remain():
    conference, clock, events = make()
    citizen, seat, operator = FakeSession("c"), FakeSession("s"), FakeSession("o")
    conference.join(citizen, role="citizen", number="13800000000", owned=False)
    assert conference.state is ConferenceState.WAITING and len(clock.tickers) == 1
    seat_leg = conference.add_party("seat", "1002")
    assert [leg.state for leg in conference.view().legs] == [LegState.JOINED, LegState.RINGING]
    conference.announcing(seat_leg)
    assert conference.join(seat, role="seat", number="1002", leg_id=seat_leg) == "seat"
    assert conference.state is ConferenceState.ACTIVE
    conference.join(operator, role="operator", number="1003")
    speak(clock, {citizen: 1, seat: 10, operator: 100})
    assert [first_sample(s.heard[-1]) for s in (citizen, seat, operator)] == [110, 101, 11]

    seat.hang_up_remote()  # two remain: they stay connected
    assert not conference.finished
    speak(clock, {citizen: 1, operator: 100})
    assert [first_sample(s.heard[-1]) for s in (citizen, operator)] == [100, 1]
    operator.hang_up_remote()  # the citizen alone: finished
    assert conference.finished

    conference.end("parties left")
    assert conference.state is ConferenceState.ENDED and clock.tickers == []
    assert citizen.hangups == 0 and not citizen.ended  # handed back to its call flow
    legs = {leg.leg_id: leg for leg in conference.view().legs}
    assert (legs["seat"].state, legs["seat"].reason) == (LegState.LEFT, "hung_up")
    assert (legs["citizen"].state, legs["citizen"].reason) == (LegState.LEFT, "conference_ended")
    assert legs["citizen"].stats.frames_mixed == 2
    kinds = [(e.kind, e.leg_id) for e in events]
    assert kinds == [("created", None), ("joined", "citizen"), ("ringing", "seat"), ("announcing", "seat"),
                     ("joined", "seat"), ("active", None), ("joined", "operator"), ("left", "seat"),
                     ("left", "operator"), ("left", "citizen"), ("ended", None)]
    assert citizen.taps == [] and seat.taps == []


def test_end_hangs_up_owned_legs_and_hands_back_the_others():
    conference, clock, _ = make()
    citizen, seat = FakeSession("c"), FakeSession("s")
    conference.join(citizen, role="citizen", number="1", owned=False)
    conference.join(seat, role="seat", number="2")
    citizen.hang_up_remote()
    assert conference.finished
    conference.end("citizen left")
    assert seat.hangups == 1 and seat.ended
    conference.end("again")  # idempotent
    assert seat.hangups == 1 and conference.view().end_reason == "citizen left"
    with pytest.raises(RuntimeError, match="has ended"):
        conference.join(FakeSession(), role="seat", number="3")


def test_a_party_alone_hears_the_hold_message_on_a_loop_until_someone_joins():
    conference, clock, _ = make(hold_audio=HOLD)
    citizen, seat = FakeSession("c"), FakeSession("s")
    conference.join(citizen, role="citizen", number="1", owned=False)
    clock.tick(7)
    assert [first_sample(f) for f in citizen.heard] == [0, 77, 77, 77, 77, 77, 77]  # starts on the 2nd tick
    conference.join(seat, role="seat", number="2")
    speak(clock, {seat: 5}, ticks=2)
    assert [first_sample(f) for f in citizen.heard[-2:]] == [5, 5]  # the hold message stopped at once


def test_join_and_leave_tones_are_heard_by_the_others():
    conference, clock, _ = make(tones=True)
    citizen, seat = FakeSession("c"), FakeSession("s")
    conference.join(citizen, role="citizen", number="1", owned=False)
    conference.join(seat, role="seat", number="2")
    clock.tick(len(JOIN_TONE) // FRAME_BYTES)
    assert b"".join(citizen.heard[-len(JOIN_TONE) // FRAME_BYTES:]) == JOIN_TONE
    assert all(frame == SILENCE_FRAME for frame in seat.heard)  # the newcomer does not hear its own entrance
    operator = FakeSession("o")
    conference.join(operator, role="operator", number="3")
    clock.tick(len(JOIN_TONE) // FRAME_BYTES)
    operator.hang_up_remote()
    clock.tick(len(LEAVE_TONE) // FRAME_BYTES)
    assert b"".join(seat.heard[-len(LEAVE_TONE) // FRAME_BYTES:]) == LEAVE_TONE


def test_mute_and_listen_only_are_shown_and_change_who_is_heard():
    conference, clock, events = make()
    citizen, seat, coach = FakeSession("c"), FakeSession("s"), FakeSession("o")
    conference.join(citizen, role="citizen", number="1", owned=False)
    conference.join(seat, role="seat", number="2")
    conference.join(coach, role="operator", number="3", listen_only=True)
    speak(clock, {citizen: 1, seat: 10, coach: 100})
    assert [first_sample(s.heard[-1]) for s in (citizen, seat, coach)] == [10, 1, 11]
    conference.set_muted("citizen", True)
    speak(clock, {citizen: 1, seat: 10, coach: 100})
    assert [first_sample(s.heard[-1]) for s in (citizen, seat, coach)] == [10, 0, 10]
    conference.set_listen_only("operator", False)
    conference.set_muted("citizen", False)
    speak(clock, {citizen: 1, seat: 10, coach: 100})
    assert [first_sample(s.heard[-1]) for s in (citizen, seat, coach)] == [110, 101, 11]
    assert [e.kind for e in events if e.kind in ("muted", "unmuted", "speaking")] == ["muted", "speaking", "unmuted"]
    with pytest.raises(KeyError):
        conference.set_muted("nobody", True)


def test_remove_hangs_up_that_party_only():
    conference, clock, _ = make()
    sessions = [FakeSession(str(n)) for n in range(3)]
    for n, session in enumerate(sessions):
        conference.join(session, role="party", number=str(n))
    conference.remove("party-2", "removed by operator")
    assert sessions[1].ended and not sessions[0].ended and not conference.finished
    assert {leg.leg_id: leg.reason for leg in conference.view().legs}["party-2"] == "removed by operator"


def test_a_party_that_hung_up_while_joining_is_taken_out_at_once():
    conference, clock, _ = make()
    gone = FakeSession("gone")
    gone.hang_up_remote()
    conference.join(gone, role="seat", number="9")
    assert conference.finished  # nobody left at all
    assert conference.view().legs[0].state is LegState.LEFT


def test_missed_parties_are_shown_with_their_reason():
    conference, clock, events = make()
    leg = conference.add_party("seat", "1002")
    conference.missed(leg, "declined")
    view = conference.view().legs[0]
    assert (view.state, view.reason, view.number) == (LegState.MISSED, "declined", "1002")
    conference.join(FakeSession(), role="seat", number="1003")
    assert [leg.leg_id for leg in conference.view().legs] == ["seat", "seat-2"]


def test_recordings_mixed_and_per_leg_share_the_conferences_timeline():
    recordings = MemoryRecordings()
    conference, clock, _ = make(recordings=recordings)
    citizen, seat = FakeSession("c"), FakeSession("s")
    conference.join(citizen, role="citizen", number="1", owned=False)
    speak(clock, {citizen: 3}, ticks=3)
    conference.join(seat, role="seat", number="2")
    speak(clock, {citizen: 3, seat: 40}, ticks=2)
    conference.set_muted("seat", True)
    speak(clock, {citizen: 3, seat: 40})
    seat.hang_up_remote()
    conference.end("done")
    frames = {label: [first_sample(rec.data[i:i + FRAME_BYTES]) for i in range(0, len(rec.data), FRAME_BYTES)]
              for label, rec in recordings.opened.items()}
    assert frames["mixed"] == [3, 3, 3, 43, 43, 3]
    assert frames["citizen"] == [3, 3, 3, 3, 3, 3]
    assert frames["seat"] == [0, 0, 0, 40, 40, 0]  # padded to the start; silence while muted
    assert all(rec.closed for rec in recordings.opened.values())
    assert conference.view().recordings == {"mixed": "/memory/mixed.wav", "citizen": "/memory/citizen.wav",
                                            "seat": "/memory/seat.wav"}


def test_a_recording_that_cannot_be_opened_does_not_stop_the_conference():
    def broken(label: str):
        raise OSError("disk full")

    conference, clock, _ = make(recordings=broken)
    citizen, seat = FakeSession("c"), FakeSession("s")
    conference.join(citizen, role="citizen", number="1", owned=False)
    conference.join(seat, role="seat", number="2")
    speak(clock, {seat: 9})
    assert first_sample(citizen.heard[-1]) == 9
    assert conference.view().recordings == {}


def test_a_failing_event_listener_is_logged_and_ignored():
    clock = ManualClock()

    def broken(event) -> None:
        raise RuntimeError("listener down")

    conference = Conference(clock, call_ended=(FakeCallEnded,), on_event=broken, tones=False)
    conference.join(FakeSession(), role="citizen", number="1")
    assert conference.joined() == ["citizen"]
