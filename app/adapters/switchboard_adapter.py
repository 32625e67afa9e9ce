"""The `Switchboard` port over the IVR node's outgoing calls.

pyVoIP has no REFER, so a transfer is done by the IVR itself: it dials the other party and bridges the
two sessions, copying 20 ms frames both ways until either side hangs up, then hangs up the other. A
three-way call with a member unit's remote seat is the same bridge after the seat heard the case's
announcement: the hotline's own part is this IVR staying in the middle.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from ivr.node import IvrNode
from ivr.session import CallEnded, CallSession

log = logging.getLogger(__name__)


class IvrSwitchboard:
    """`callflows.ports.Switchboard` dialling through `node` (the running ivr.node.IvrNode).

    `seats_for(unit)` gives a member unit's remote-seat numbers in the order to ring them
    (DatabaseTickets.seat_numbers fits); `ring_timeout` is how long each number may ring, in seconds."""

    def __init__(self, node: IvrNode, *, seats_for: Callable[[str], Sequence[str]] = lambda unit: (),
                 ring_timeout: float = 30.0) -> None:
        self.node = node
        self.seats_for = seats_for
        self.ring_timeout = ring_timeout

    def transfer(self, call: CallSession, number: str) -> bool:
        other = self._dial(number)
        if other is None:
            return False
        bridge(call, other)
        return True

    def three_way(self, call: CallSession, unit: str, announcement: str | Path | bytes) -> bool:
        for number in self.seats_for(unit):
            seat = self._dial(number)
            if seat is None:
                continue
            try:
                seat.play(announcement, barge_in=False)
            except CallEnded:
                log.info("seat %s of %s hung up during the announcement", number, unit)
                continue
            bridge(call, seat)
            return True
        return False

    def _dial(self, number: str) -> CallSession | None:
        result = self.node.dial(number, self.ring_timeout)
        if result.status != "answered" or result.session is None:
            log.info("dialling %s: %s (SIP %s)", number, result.status, result.sip_status)
            return None
        return result.session


def bridge(a: CallSession, b: CallSession) -> None:
    """Copy audio a->b and b->a frame by frame until either side hangs up; then end both. Frames that
    waited in a session's queue before the bridge are dropped, so the parties hear each other without
    that backlog as a delay."""
    for session in (a, b):
        _drop_queued_frames(session)
    stop = threading.Event()
    other_way = threading.Thread(target=_copy_frames, args=(b, a, stop), name=f"bridge-{b.call_id}", daemon=True)
    other_way.start()
    _copy_frames(a, b, stop)
    other_way.join()
    for session in (a, b):
        session.hangup()


def _copy_frames(source: CallSession, sink: CallSession, stop: threading.Event) -> None:
    try:
        while not stop.is_set():
            frame = source.read_frame(timeout=0.2)
            if frame is not None:
                sink.write_frame(frame)
    except CallEnded:
        pass
    finally:
        stop.set()


def _drop_queued_frames(session: CallSession) -> None:
    try:
        while session.read_frame(timeout=0) is not None:
            pass
    except CallEnded:
        pass
