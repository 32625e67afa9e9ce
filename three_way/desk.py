"""The three-way desk: sets conferences up, keeps the live ones, and hands each finished one to its owner.

Two ways in:
- `connect(citizen, unit, ...)`: a citizen already on the line (the 12345 flow) is put in a conference, hears
  the hold message while the unit's seats are rung in order (three_way.seats), can still press the escape
  digit (0: a human operator instead), and talks with the seat that accepts while the IVR listens and records.
  It returns when the conference is over for the citizen (the seat left, or the citizen did), with the
  citizen's call handed back to the flow.
- `start(case, citizen=..., operator=...)`: an operator's request from the API; the IVR dials the citizen,
  the operator and the unit's seats itself and bridges them, in a thread of its own, returning at once.

Seats are rung only while the unit is on duty (its working hours, on a working day of the statutory
calendar); the numbers dialled come from the caller (the API checks them against the directory).
Resources: one thread per conference being set up by `start` (none for `connect`: the citizen's thread
waits), a ticker on the media clock while someone is in, the parties' calls; all given back when it ends.
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from three_way.conference import Conference, ConferenceView, utcnow
from three_way.duty import Seat, SeatDirectory, UnitSeats
from three_way.ports import Audio, Dialler, LegSession, MediaClock, RecordingFactory, WorkingDays
from three_way.seats import SeatAttempt, SeatDialler, SeatResult

log = logging.getLogger(__name__)

WAIT_SLICE_SECONDS = 0.2  # the citizen's thread checks for the escape digit and the seats' progress this often


class Reason(StrEnum):
    JOINED = "joined"  # a seat accepted and talked with the citizen
    NO_SEATS = "no_seats"  # the unit is unknown or has no remote seats
    OFF_DUTY = "off_duty"  # outside the unit's hours, or not a working day
    NOBODY_ACCEPTED = "nobody_accepted"  # every seat was busy, did not answer, declined...
    ESCAPED = "escaped"  # the citizen pressed the escape digit while waiting
    CITIZEN_LEFT = "citizen_left"  # the citizen hung up before a seat joined
    CITIZEN_UNREACHABLE = "citizen_unreachable"  # start(): the citizen's phone did not answer


@dataclass(frozen=True)
class Case:
    """What the conference is about, for the announcement's owner and for linking its records."""

    unit: str
    ticket: str | None = None  # the ticket number
    started_by: str = "flow"  # "flow", or the API principal's name


@dataclass(frozen=True)
class Outcome:
    conference_id: str | None
    reason: Reason
    seat: Seat | None = None
    attempts: tuple[SeatAttempt, ...] = ()

    @property
    def joined(self) -> bool:
        return self.reason is Reason.JOINED

    def summary(self) -> str:
        tried = ", ".join(f"{a.seat.number} {a.outcome.value}" for a in self.attempts)
        return f"{self.reason.value}" + (f" ({tried})" if tried else "")


Finished = Callable[[ConferenceView, Case, Outcome], None]


class ThreeWayDesk:
    """`dialler` places calls (ivr.node.IvrNode), `clock` is its media clock, `directory` gives a unit's
    seats, `calendar` the working days; `recordings(conference_id)` opens that conference's recordings;
    `on_finished(view, case, outcome)` runs once per conference after it ended (store it, transcribe it)."""

    def __init__(self, dialler: Dialler, clock: MediaClock, directory: SeatDirectory, calendar: WorkingDays, *,
                 call_ended: tuple[type[BaseException], ...],
                 recordings: Callable[[str], RecordingFactory] | None = None,
                 on_finished: Finished | None = None, now: Callable[[], datetime] = utcnow,
                 ring_timeout: float = 20.0, key_timeout: float = 8.0, tones: bool = True,
                 keep_ended: int = 200) -> None:
        self.dialler = dialler
        self.clock = clock
        self.directory = directory
        self.calendar = calendar
        self.call_ended = call_ended
        self.recordings = recordings
        self.on_finished = on_finished
        self.now = now
        self.ring_timeout = ring_timeout
        self.tones = tones
        self.seats = SeatDialler(dialler, call_ended=call_ended, ring_timeout=ring_timeout, key_timeout=key_timeout)
        self._keep_ended = keep_ended
        self._conferences: OrderedDict[str, tuple[Conference, Case]] = OrderedDict()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    # ---- looking things up

    def on_duty(self, unit: str) -> UnitSeats | None:
        """The unit's seats when someone can be rung now, else None."""
        seats = self.directory.seats_of(unit)
        if seats is None or not seats.on_duty(self.now(), self.calendar):
            return None
        return seats

    def get(self, conference_id: str) -> tuple[Conference, Case] | None:
        with self._lock:
            return self._conferences.get(conference_id)

    def live(self) -> list[Conference]:
        with self._lock:
            return [conference for conference, _ in self._conferences.values() if conference.ended_at is None]

    @property
    def setup_threads(self) -> int:
        """Threads of `start` still setting up or waiting on a conference (0 when all are over)."""
        with self._lock:
            return len(self._threads)

    # ---- a citizen on the line (the call flow)

    def connect(self, citizen: LegSession, citizen_number: str, case: Case, announcement: Callable[[str], Audio],
                *, hold: bytes | None = None, escape_digit: str | None = None) -> Outcome:
        """Ring the case's unit and bridge the seat that accepts with `citizen`; returns when it is over for
        the citizen, whose call is handed back. Raises the call-ended exception when the citizen hung up
        before a seat joined (after that, the flow notices the hang-up at its next step)."""
        seats = self.directory.seats_of(case.unit)
        if seats is None or not seats.seats:
            return Outcome(None, Reason.NO_SEATS)
        if not seats.on_duty(self.now(), self.calendar):
            return Outcome(None, Reason.OFF_DUTY)
        conference = self._new_conference(case, hold)
        outcome = Outcome(conference.conference_id, Reason.CITIZEN_LEFT)
        try:
            conference.join(citizen, role="citizen", number=citizen_number, owned=False)
            ringing = _Ringing(self, conference, seats, announcement)
            escaped = ringing.wait(citizen, escape_digit)
            result = ringing.result
            if escaped:
                outcome = Outcome(conference.conference_id, Reason.ESCAPED)
            elif result is not None and result.accepted:
                assert result.session is not None and result.seat is not None and ringing.seat_leg is not None
                outcome = Outcome(conference.conference_id, Reason.JOINED, result.seat, result.attempts)
                conference.join(result.session, role="seat", number=result.seat.number, leg_id=ringing.seat_leg)
                while not conference.wait_finished(1.0):
                    pass
            else:
                outcome = Outcome(conference.conference_id, Reason.NOBODY_ACCEPTED,
                                  attempts=result.attempts if result is not None else ())
        finally:
            self._finish(conference, case, outcome)
        return outcome

    # ---- an operator's request (the API)

    def start(self, case: Case, *, citizen: str, operator: str | None, announcement: Callable[[str], Audio],
              hold: bytes | None = None, operator_listen_only: bool = False) -> Conference:
        """Dial the citizen, the operator and the unit's seats and bridge them; returns the conference at once
        (follow it with `get`). Numbers must have been checked by the caller: this dials what it is given."""
        conference = self._new_conference(case, hold)
        citizen_leg = conference.add_party("citizen", citizen)
        operator_leg = conference.add_party("operator", operator) if operator else None
        runner = threading.Thread(target=self._run_started,
                                  args=(conference, case, citizen_leg, operator_leg, announcement,
                                        operator_listen_only),
                                  name=f"three-way-{conference.conference_id[:8]}", daemon=True)
        self._track(runner)
        runner.start()
        return conference

    def _run_started(self, conference: Conference, case: Case, citizen_leg: str, operator_leg: str | None,
                     announcement: Callable[[str], Audio], operator_listen_only: bool) -> None:
        outcome = Outcome(conference.conference_id, Reason.NOBODY_ACCEPTED)
        try:
            stop = conference.finished_event
            operator = None
            if operator_leg is not None:
                operator = threading.Thread(target=self._dial_into,
                                            args=(conference, operator_leg, stop, operator_listen_only),
                                            name=f"three-way-op-{conference.conference_id[:8]}", daemon=True)
                operator.start()
            if not self._dial_into(conference, citizen_leg, stop):
                outcome = Outcome(conference.conference_id, Reason.CITIZEN_UNREACHABLE)
                conference.end(outcome.reason.value)  # also cancels the operator's ringing
            else:
                outcome = self._ring_for_started(conference, case, announcement, stop)
            if operator is not None:
                operator.join()
            while not conference.wait_finished(1.0):
                pass
        except Exception:
            log.exception("three-way conference %s failed", conference.conference_id)
        finally:
            self._finish(conference, case, outcome)
            self._untrack(threading.current_thread())

    def _ring_for_started(self, conference: Conference, case: Case, announcement: Callable[[str], Audio],
                          stop: threading.Event) -> Outcome:
        seats = self.directory.seats_of(case.unit)
        if seats is None or not seats.seats:
            return Outcome(conference.conference_id, Reason.NO_SEATS)
        if not seats.on_duty(self.now(), self.calendar):
            return Outcome(conference.conference_id, Reason.OFF_DUTY)
        result, seat_leg = self._ring(conference, seats, announcement, stop)
        if not result.accepted:
            return Outcome(conference.conference_id, Reason.NOBODY_ACCEPTED, attempts=result.attempts)
        assert result.session is not None and result.seat is not None
        try:
            conference.join(result.session, role="seat", number=result.seat.number, leg_id=seat_leg)
        except RuntimeError:  # the conference ended while the seat was deciding
            result.session.hangup()
        return Outcome(conference.conference_id, Reason.JOINED, result.seat, result.attempts)

    def _dial_into(self, conference: Conference, leg_id: str, stop: threading.Event,
                   listen_only: bool = False) -> bool:
        """Dial a party added with add_party and join it when it answers; False when it did not."""
        leg = next(leg for leg in conference.view().legs if leg.leg_id == leg_id)
        dialled = self.dialler.dial(leg.number, self.ring_timeout, cancel=stop)
        if dialled.status != "answered" or dialled.session is None:
            conference.missed(leg_id, "cancelled" if stop.is_set() else dialled.status)
            return False
        try:
            conference.join(dialled.session, role=leg.role, number=leg.number, leg_id=leg_id,
                            listen_only=listen_only)
        except RuntimeError:  # ended meanwhile
            dialled.session.hangup()
            return False
        return True

    # ---- shared

    def _ring(self, conference: Conference, seats: UnitSeats, announcement: Callable[[str], Audio],
              cancel: threading.Event) -> tuple[SeatResult, str | None]:
        """Ring the seats, showing each attempt as a leg of the conference; the accepting seat's leg id."""
        legs: dict[str, str] = {}

        def progress(seat: Seat, state: str) -> None:
            if state == "ringing":
                legs[seat.number] = conference.add_party("seat", seat.number)
            elif state == "announcing":
                conference.announcing(legs[seat.number])
            elif state != "accepted":
                conference.missed(legs[seat.number], state)

        result = self.seats.ring(seats.seats, announcement, cancel=cancel, progress=progress)
        return result, legs[result.seat.number] if result.seat is not None else None

    def _new_conference(self, case: Case, hold: bytes | None) -> Conference:
        conference_id = uuid.uuid4().hex
        conference = Conference(self.clock, call_ended=self.call_ended, conference_id=conference_id,
                                recordings=self.recordings(conference_id) if self.recordings else None,
                                hold_audio=hold, tones=self.tones, now=self.now)
        with self._lock:
            self._conferences[conference.conference_id] = (conference, case)
            ended = [key for key, (c, _) in self._conferences.items() if c.ended_at is not None]
            for key in ended[: max(0, len(ended) - self._keep_ended)]:
                del self._conferences[key]
        return conference

    def _finish(self, conference: Conference, case: Case, outcome: Outcome) -> None:
        conference.end(outcome.reason.value)
        if self.on_finished is not None:
            try:
                self.on_finished(conference.view(), case, outcome)
            except Exception:
                log.exception("three-way conference %s: on_finished failed", conference.conference_id)

    def _track(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.add(thread)

    def _untrack(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.discard(thread)

    def stop(self) -> None:
        """End every live conference (node shutdown): owned calls hung up, set-up threads finish."""
        for conference in self.live():
            conference.end("shutdown")
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(5)


class _Ringing:
    """The seats rung in a helper thread while the citizen's thread watches for the escape digit and for a
    hang-up. When the citizen escapes or leaves, the citizen's side stops waiting at once (a seat may be in
    the middle of the announcement); the helper then hangs up whatever seat it still reaches, and ends."""

    def __init__(self, desk: ThreeWayDesk, conference: Conference, seats: UnitSeats,
                 announcement: Callable[[str], Audio]) -> None:
        self.desk = desk
        self.conference = conference
        self.cancel = threading.Event()
        self.result: SeatResult | None = None
        self.seat_leg: str | None = None
        self._abandoned = False
        self._handoff = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(seats, announcement),
                                        name=f"three-way-ring-{conference.conference_id[:8]}", daemon=True)
        desk._track(self._thread)
        self._thread.start()

    def _run(self, seats: UnitSeats, announcement: Callable[[str], Audio]) -> None:
        try:
            result, seat_leg = self.desk._ring(self.conference, seats, announcement, self.cancel)
            with self._handoff:
                if not self._abandoned:
                    self.result, self.seat_leg = result, seat_leg
                    return
            if result.session is not None:  # accepted just as the citizen escaped or left
                result.session.hangup()
        finally:
            self.desk._untrack(threading.current_thread())

    def wait(self, citizen: LegSession, escape_digit: str | None) -> bool:
        """Until the seats were rung (False), or the citizen pressed `escape_digit` (True); re-raises the
        call-ended exception when the citizen hung up. Either way out early, the helper is abandoned."""
        try:
            while self._thread.is_alive():
                digit = citizen.next_digit(WAIT_SLICE_SECONDS)
                if digit is not None and digit == escape_digit:
                    self._abandon()
                    return True
        except BaseException:
            self._abandon()
            raise
        self._thread.join()
        return False

    def _abandon(self) -> None:
        with self._handoff:
            self._abandoned = True
            taken, self.result = self.result, None
        self.cancel.set()
        if taken is not None and taken.session is not None:
            taken.session.hangup()
