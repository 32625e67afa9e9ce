"""A conference as a whole: its parties (legs) and their states, the mixing on the node's media clock, the
recordings (mixed and per leg), and its events — what a PBX conference room (Asterisk ConfBridge,
FreeSWITCH mod_conference) gives an operator.

    conference = Conference(node.media_clock, call_ended=(CallEnded,), recordings=open_recording)
    conference.join(citizen_session, role="citizen", number="13800000000", owned=False)
    seat = conference.add_party("seat", "1002")          # visible as ringing while it is dialled
    conference.join(seat_session, role="seat", number="1002", leg_id=seat)
    conference.wait_finished(timeout)                    # fewer than two parties left
    conference.end("seat left")                          # owned legs hung up, the rest handed back

Rules:
- the conference mixes while at least one party is in; a party alone hears `hold_audio` on a loop (ConfBridge's
  music on hold when alone) and, with `tones`, everyone hears a rising tone when a party joins and a falling one
  when a party leaves;
- any party may leave (hang up, or be removed); the others stay connected while two remain. Once it has had
  two parties, the conference is *finished* when fewer than two remain (or when the last one leaves before
  that); the owner then calls `end()`, which hangs up the legs the conference dialled (`owned`) and hands the
  others back (e.g. the citizen returns to the call flow);
- no thread per leg: parties' frames reach the mixer through their session's tap on the media thread, and
  `tick()` runs on the node's media clock, writing each party's next frame and the recordings;
- recordings: 'mixed' (everything said) from the first join to the end, and one per leg (what that party
  said into the conference: silence while muted or listen-only), each starting at the conference's start so
  all files share one timeline (a transcript's word times line up across speakers).
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum

import numpy as np

from pcm import SAMPLE_RATE, SILENCE_FRAME
from three_way.mixer import LegStats, Mixer
from three_way.ports import LegSession, MediaClock, RecordingFactory, RecordingSink

log = logging.getLogger(__name__)

MIXED = "mixed"  # the recording label of the whole conference


def _tone(*hz: float, seconds: float = 0.12, amplitude: float = 3000.0) -> bytes:
    """Short beeps in sequence (join: rising, leave: falling), 10 ms fades so they do not click."""
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    return b"".join((amplitude * fade * np.sin(2 * np.pi * f * t)).astype("<i2").tobytes() for f in hz)


JOIN_TONE = _tone(600, 900)
LEAVE_TONE = _tone(900, 600)


class ConferenceState(StrEnum):
    WAITING = "waiting"  # fewer than two parties have joined yet
    ACTIVE = "active"  # two or more parties are talking
    ENDED = "ended"


class LegState(StrEnum):
    RINGING = "ringing"
    ANNOUNCING = "announcing"  # a seat hears the case and decides
    JOINED = "joined"
    LEFT = "left"  # was in; `reason` says why it left
    MISSED = "missed"  # never joined; `reason` says why (busy, no_answer, declined...)


@dataclass(frozen=True)
class LegView:
    """A party as the API shows it."""

    leg_id: str
    role: str
    number: str
    state: LegState
    reason: str | None
    muted: bool
    listen_only: bool
    joined_at: datetime | None
    left_at: datetime | None
    recording: str | None
    stats: LegStats | None


@dataclass(frozen=True)
class ConferenceEvent:
    at: datetime
    kind: str  # created ringing announcing missed joined left muted unmuted listen_only speaking active ended
    leg_id: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class ConferenceView:
    conference_id: str
    state: ConferenceState
    created_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    legs: list[LegView]
    events: list[ConferenceEvent]
    recordings: dict[str, str]  # label ('mixed' or leg id) -> path


@dataclass(eq=False)
class _Leg:
    leg_id: str
    role: str
    number: str
    state: LegState
    reason: str | None = None
    session: LegSession | None = None
    owned: bool = True
    muted: bool = False
    listen_only: bool = False
    joined_at: datetime | None = None
    left_at: datetime | None = None
    tap: Callable[[bytes], None] | None = None
    recording: RecordingSink | None = None
    stats: LegStats | None = None


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Conference:
    """One conference room; thread-safe. `call_ended` is the sessions' call-ended exception class(es)."""

    def __init__(self, clock: MediaClock, *, call_ended: tuple[type[BaseException], ...],
                 conference_id: str | None = None, recordings: RecordingFactory | None = None,
                 hold_audio: bytes | None = None, tones: bool = True,
                 on_event: Callable[[ConferenceEvent], None] | None = None,
                 now: Callable[[], datetime] = utcnow, mixer: Mixer | None = None) -> None:
        self.conference_id = conference_id or uuid.uuid4().hex
        self.clock = clock
        self.call_ended = call_ended
        self.hold_audio = hold_audio
        self.tones = tones
        self.on_event = on_event
        self.now = now
        self.mixer = mixer or Mixer()
        self.created_at = now()
        self.ended_at: datetime | None = None
        self.end_reason: str | None = None
        self._open_recording = recordings
        self._mixed_recording: RecordingSink | None = None
        self._recording_paths: dict[str, str] = {}
        self._state = ConferenceState.WAITING
        self._legs: dict[str, _Leg] = {}
        self._events: list[ConferenceEvent] = []
        self._lock = threading.RLock()  # re-entered when a session ends inside one of our calls
        self._finished = threading.Event()
        self._ticking = False
        self._ticks = 0  # 20 ms ticks since the first join: the recordings' timeline
        self._emit("created")

    # ---- information

    @property
    def state(self) -> ConferenceState:
        return self._state

    @property
    def finished(self) -> bool:
        """Fewer than two parties remain after it had two (or the last party left): time for `end()`."""
        return self._finished.is_set()

    def wait_finished(self, timeout: float) -> bool:
        return self._finished.wait(timeout)

    @property
    def finished_event(self) -> threading.Event:
        """Set once finished (or ended): pass it as the `cancel` of dialling done for this conference."""
        return self._finished

    def joined(self) -> list[str]:
        with self._lock:
            return [leg.leg_id for leg in self._legs.values() if leg.state is LegState.JOINED]

    def view(self) -> ConferenceView:
        with self._lock:
            legs = [self._leg_view(leg) for leg in self._legs.values()]
            return ConferenceView(self.conference_id, self._state, self.created_at, self.ended_at,
                                  self.end_reason, legs, list(self._events), dict(self._recording_paths))

    def _leg_view(self, leg: _Leg) -> LegView:
        stats = self.mixer.stats(leg.leg_id) if leg.state is LegState.JOINED else leg.stats
        recording = leg.recording.path if leg.recording is not None else None
        return LegView(leg.leg_id, leg.role, leg.number, leg.state, leg.reason, leg.muted, leg.listen_only,
                       leg.joined_at, leg.left_at, str(recording) if recording else None, stats)

    # ---- parties

    def add_party(self, role: str, number: str) -> str:
        """A party being dialled: shown as ringing until it joins or is missed. Returns its leg id. (Once the
        conference ended, a dialling that raced with the end is shown as missed at once.)"""
        with self._lock:
            leg = _Leg(self._new_id(role), role, number, LegState.RINGING)
            self._legs[leg.leg_id] = leg
            ended = self._state is ConferenceState.ENDED
        if ended:
            self.missed(leg.leg_id, "conference_ended")
        else:
            self._emit("ringing", leg.leg_id, number)
        return leg.leg_id

    def announcing(self, leg_id: str) -> None:
        with self._lock:
            self._legs[leg_id].state = LegState.ANNOUNCING
        self._emit("announcing", leg_id)

    def missed(self, leg_id: str, reason: str) -> None:
        """A dialled party that will not join (busy, no_answer, declined, cancelled...)."""
        with self._lock:
            leg = self._legs[leg_id]
            if leg.state is LegState.JOINED:
                raise ValueError(f"leg {leg_id} has joined; use leave()")
            leg.state, leg.reason, leg.left_at = LegState.MISSED, reason, self.now()
        self._emit("missed", leg_id, reason)

    def join(self, session: LegSession, *, role: str, number: str, leg_id: str | None = None,
             owned: bool = True, muted: bool = False, listen_only: bool = False) -> str:
        """Bring a connected call in. `owned`: the conference hangs it up at the end (a dialled seat or
        operator); otherwise it is handed back (the citizen, whose call flow continues)."""
        with self._lock:
            self._check_open()
            if leg_id is None:
                leg_id = self._new_id(role)
                self._legs[leg_id] = _Leg(leg_id, role, number, LegState.RINGING)
            leg = self._legs[leg_id]
            if leg.state in (LegState.JOINED, LegState.LEFT):
                raise ValueError(f"leg {leg_id} has already joined")
            others = self.joined()
            leg.state, leg.session, leg.owned = LegState.JOINED, session, owned
            leg.muted, leg.listen_only, leg.joined_at = muted, listen_only, self.now()
            self.mixer.add_leg(leg_id, muted=muted, listen_only=listen_only)
            self._open_recordings(leg)
            for other in others:
                self.mixer.clear_prompt(other)  # no more hold message: someone to talk to
                if self.tones:
                    self.mixer.play_to(other, JOIN_TONE)
            leg.tap = lambda frame, leg_id=leg_id: self.mixer.push(leg_id, frame)
            if not self._ticking:
                self._ticking = True
                self.clock.add_ticker(self.tick)
        _drain(session, self.call_ended)  # what it said before joining is not conference audio
        session.add_tap(leg.tap)
        session.on_end(lambda _session, leg_id=leg_id: self._hung_up(leg_id))
        self._emit("joined", leg_id, f"{role} {number}")
        if len(others) == 1:  # the second party: the conversation starts
            self._set_state(ConferenceState.ACTIVE)
        if session.ended:  # hung up while we were joining it
            self._hung_up(leg_id)
        return leg_id

    def leave(self, leg_id: str, reason: str = "left") -> None:
        """Take a party out of the conference (its call stays up; see `remove` to hang it up)."""
        with self._lock:
            leg = self._legs.get(leg_id)
            if leg is None or leg.state is not LegState.JOINED:
                return
            leg.state, leg.reason, leg.left_at = LegState.LEFT, reason, self.now()
            leg.stats = self.mixer.remove_leg(leg_id)
            if leg.recording is not None:
                leg.recording.close()
            remaining = self.joined()
            if self.tones and self._state is not ConferenceState.ENDED:
                for other in remaining:
                    self.mixer.play_to(other, LEAVE_TONE)
            had_two = self._state is ConferenceState.ACTIVE
        if leg.session is not None and leg.tap is not None:
            leg.session.remove_tap(leg.tap)
        self._emit("left", leg_id, reason)
        if (had_two and len(remaining) < 2) or not remaining:
            self._finished.set()

    def remove(self, leg_id: str, reason: str = "removed") -> None:
        """Take a party out and hang its call up (an operator removing a participant)."""
        with self._lock:
            leg = self._legs.get(leg_id)
            if leg is None:
                raise KeyError(f"no leg {leg_id!r} in conference {self.conference_id}")
            session = leg.session
        self.leave(leg_id, reason)
        if session is not None:
            session.hangup()

    def set_muted(self, leg_id: str, muted: bool) -> None:
        self._set_flag(leg_id, "muted", muted, "muted" if muted else "unmuted")

    def set_listen_only(self, leg_id: str, listen_only: bool) -> None:
        self._set_flag(leg_id, "listen_only", listen_only, "listen_only" if listen_only else "speaking")

    def _set_flag(self, leg_id: str, name: str, value: bool, event: str) -> None:
        with self._lock:
            leg = self._legs.get(leg_id)
            if leg is None or leg.state is not LegState.JOINED:
                raise KeyError(f"no party {leg_id!r} in conference {self.conference_id}")
            setattr(leg, name, value)
            getattr(self.mixer, f"set_{name}")(leg_id, value)
        self._emit(event, leg_id)

    def _hung_up(self, leg_id: str) -> None:
        self.leave(leg_id, "hung_up")

    # ---- the end

    def end(self, reason: str = "ended") -> None:
        """Stop mixing; hang up owned legs, hand the others back, close the recordings. Idempotent."""
        with self._lock:
            if self._state is ConferenceState.ENDED:
                return
            self._state = ConferenceState.ENDED
            self.ended_at, self.end_reason = self.now(), reason
            ticking, self._ticking = self._ticking, False
            staying = [leg for leg in self._legs.values() if leg.state is LegState.JOINED]
        if ticking:
            self.clock.remove_ticker(self.tick)
        for leg in staying:
            self.leave(leg.leg_id, "conference_ended")
        for leg in staying:
            if leg.owned and leg.session is not None:
                leg.session.hangup()
            elif leg.session is not None:
                _drain(leg.session, self.call_ended)  # a handed-back call starts afresh
        with self._lock:
            if self._mixed_recording is not None:
                self._mixed_recording.close()
        self._finished.set()
        self._emit("ended", None, reason)

    # ---- the media clock

    def tick(self) -> None:
        """One 20 ms step on the media thread: mix, send each party its frame, write the recordings."""
        with self._lock:
            if not self._ticking:
                return  # removed while this tick was under way
            result = self.mixer.mix(with_mixed=self._mixed_recording is not None)
            alone = len(result.outputs) == 1
            for leg_id, frame in result.outputs.items():
                leg = self._legs[leg_id]
                if leg.session is None or leg.session.ended:
                    continue  # its end callback takes it out
                try:
                    leg.session.write_frame(frame)
                except self.call_ended:
                    continue
                if leg.recording is not None:
                    leg.recording.write(result.inputs[leg_id])
                if alone and self.hold_audio and not self.mixer.prompt_frames(leg_id):
                    self.mixer.play_to(leg_id, self.hold_audio)
            if self._mixed_recording is not None:
                self._mixed_recording.write(result.mixed)
            self._ticks += 1

    # ---- helpers

    def _open_recordings(self, leg: _Leg) -> None:
        """The mixed recording starts with the first party; a leg's recording is padded with silence to the
        conference's timeline (lock held)."""
        if self._open_recording is None:
            return
        if self._mixed_recording is None:
            self._mixed_recording = self._open_safely(MIXED)
        leg.recording = self._open_safely(leg.leg_id)
        if leg.recording is not None and self._ticks:
            leg.recording.write(SILENCE_FRAME * self._ticks)

    def _open_safely(self, label: str) -> RecordingSink | None:
        """A recording that cannot be opened (disk full) is logged; the conversation goes on without it."""
        assert self._open_recording is not None
        try:
            sink = self._open_recording(label)
        except OSError:
            log.exception("conference %s: cannot open the %s recording", self.conference_id, label)
            return None
        self._recording_paths[label] = str(sink.path)
        return sink

    def _new_id(self, role: str) -> str:
        """'seat', then 'seat-2', ... (readable in the API and the recordings' names)."""
        taken = sum(1 for leg in self._legs.values() if leg.role == role)
        return role if taken == 0 else f"{role}-{taken + 1}"

    def _check_open(self) -> None:
        if self._state is ConferenceState.ENDED:
            raise RuntimeError(f"conference {self.conference_id} has ended")

    def _set_state(self, state: ConferenceState) -> None:
        with self._lock:
            if self._state is ConferenceState.ENDED or self._state is state:
                return
            self._state = state
        self._emit(state.value)

    def _emit(self, kind: str, leg_id: str | None = None, detail: str = "") -> None:
        event = ConferenceEvent(self.now(), kind, leg_id, detail)
        with self._lock:
            self._events.append(event)
        log.info("conference %s: %s %s %s", self.conference_id, kind, leg_id or "", detail)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a broken listener must not break the conference
                log.exception("conference %s: event listener failed", self.conference_id)


def _drain(session: LegSession, call_ended: tuple[type[BaseException], ...]) -> None:
    """Throw away the frames and keys a session queued (they belong to before or during the conference)."""
    try:
        while session.read_frame(0) is not None:
            pass
        while session.next_digit(0) is not None:
            pass
    except call_ended:
        pass

