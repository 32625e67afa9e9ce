"""Seat dialling: ring a member unit's remote seats in order until one accepts the case.

Each seat is rung for `ring_timeout` seconds. A seat that answers hears the announcement in its own language
(12345 三方通话, the request type, topic and ticket number) and presses ACCEPT_KEY (1) to take the call or
DECLINE_KEY (2) to pass it on; a key pressed during the announcement counts at once. Without a key the
announcement is repeated once, then the seat counts as not answering. Busy, no answer, a decline, no key or
a hang-up during the announcement: the next seat is rung. `cancel` (the citizen pressed 0 or hung up) stops
at once while ringing, and after the announcement being played, hanging the seat up.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from three_way.duty import Seat
from three_way.ports import Audio, Dialler, LegSession

log = logging.getLogger(__name__)

ACCEPT_KEY = "1"
DECLINE_KEY = "2"
KEY_POLL_SECONDS = 0.2  # how soon a cancel is noticed while waiting for the seat's key


class SeatOutcome(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    NO_KEY = "no_key"  # answered, heard the announcement, pressed nothing
    HUNG_UP = "hung_up"  # answered and hung up before deciding
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"  # not registered, unreachable, refused
    CANCELLED = "cancelled"  # stopped by the citizen's side


@dataclass(frozen=True)
class SeatAttempt:
    seat: Seat
    outcome: SeatOutcome


@dataclass(frozen=True)
class SeatResult:
    """Every seat tried, in order; `session` is the accepting seat's call (None when nobody accepted)."""

    attempts: tuple[SeatAttempt, ...]
    seat: Seat | None = None
    session: LegSession | None = None

    @property
    def accepted(self) -> bool:
        return self.session is not None

    def summary(self) -> str:
        """Why nobody took the call, for the ticket's history ("1002 declined, 1003 no_answer")."""
        return ", ".join(f"{a.seat.number} {a.outcome.value}" for a in self.attempts) or "no seat rung"


Progress = Callable[[Seat, str], None]
"""progress(seat, state): 'ringing', 'announcing', then the SeatOutcome's value."""


class SeatDialler:
    """Rings seats through `dialler` (ivr.node.IvrNode); `call_ended` is the sessions' call-ended exception."""

    def __init__(self, dialler: Dialler, *, call_ended: tuple[type[BaseException], ...],
                 ring_timeout: float = 20.0, key_timeout: float = 8.0, announcements: int = 2) -> None:
        self.dialler = dialler
        self.call_ended = call_ended
        self.ring_timeout = ring_timeout
        self.key_timeout = key_timeout
        self.announcements = announcements

    def ring(self, seats: Sequence[Seat], announcement: Callable[[str], Audio], *,
             cancel: threading.Event, progress: Progress = lambda seat, state: None) -> SeatResult:
        """Ring `seats` in order; `announcement(language)` gives the case's announcement in a language."""
        attempts: list[SeatAttempt] = []
        for seat in seats:
            if cancel.is_set():
                break
            progress(seat, "ringing")
            outcome, session = self._try(seat, announcement, cancel, progress)
            attempts.append(SeatAttempt(seat, outcome))
            progress(seat, outcome.value)
            log.info("seat %s: %s", seat.number, outcome.value)
            if outcome is SeatOutcome.ACCEPTED:
                return SeatResult(tuple(attempts), seat, session)
        return SeatResult(tuple(attempts))

    def _try(self, seat: Seat, announcement: Callable[[str], Audio], cancel: threading.Event,
             progress: Progress) -> tuple[SeatOutcome, LegSession | None]:
        dialled = self.dialler.dial(seat.number, self.ring_timeout, cancel=cancel)
        session = dialled.session
        if dialled.status != "answered" or session is None:
            if cancel.is_set():
                return SeatOutcome.CANCELLED, None
            return SeatOutcome(dialled.status), None
        progress(seat, "announcing")
        outcome = self._ask(session, announcement(seat.language), cancel)
        if outcome is SeatOutcome.ACCEPTED:
            return outcome, session
        session.hangup()
        return outcome, None

    def _ask(self, session: LegSession, audio: Audio, cancel: threading.Event) -> SeatOutcome:
        """Announce, then wait for 1 or 2 (other keys are ignored); the announcement is repeated without one."""
        try:
            for _ in range(self.announcements):
                session.play(audio, barge_in=True)  # a key stops it and stays queued for next_digit
                deadline = time.monotonic() + self.key_timeout
                while (remaining := deadline - time.monotonic()) > 0:
                    if cancel.is_set():
                        return SeatOutcome.CANCELLED
                    key = session.next_digit(min(remaining, KEY_POLL_SECONDS))
                    if key == ACCEPT_KEY:
                        return SeatOutcome.CANCELLED if cancel.is_set() else SeatOutcome.ACCEPTED
                    if key == DECLINE_KEY:
                        return SeatOutcome.DECLINED
            return SeatOutcome.NO_KEY
        except self.call_ended:
            return SeatOutcome.HUNG_UP
