"""The `Switchboard` port over the IVR node and the three-way desk (three_way).

pyVoIP has no REFER, so a transfer is done by the IVR itself: it dials the other party and puts both calls
in a two-party conference on the node's media clock until either side hangs up, then hangs up the other.
A three-way call with a member unit's remote seats is three_way's desk: the seats are rung in order while
the caller hears the hold message, the seat that accepts talks with the caller, and the IVR stays in as the
listening party (recording both sides for the transcript).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from callflows.ports import Audio, ThreeWayResult
from ivr.node import IvrNode
from ivr.session import CallEnded, CallSession
from pcm import to_pcm
from three_way.conference import Conference
from three_way.desk import Case, ThreeWayDesk

log = logging.getLogger(__name__)


class IvrSwitchboard:
    """`callflows.ports.Switchboard` dialling through `node`; `ring_timeout` is how long a transfer rings."""

    def __init__(self, node: IvrNode, desk: ThreeWayDesk, *, ring_timeout: float = 30.0) -> None:
        self.node = node
        self.desk = desk
        self.ring_timeout = ring_timeout

    def transfer(self, call: CallSession, number: str) -> bool:
        result = self.node.dial(number, self.ring_timeout)
        if result.status != "answered" or result.session is None:
            log.info("dialling %s: %s (SIP %s)", number, result.status, result.sip_status)
            return False
        bridge(self.node, call, result.session)
        return True

    def seats_on_duty(self, unit: str) -> bool:
        return self.desk.on_duty(unit) is not None

    def three_way(self, call: CallSession, unit: str, announcement: Callable[[str], Audio], *,
                  hold: Audio | None = None, escape_digit: str | None = None,
                  ticket: str | None = None) -> ThreeWayResult:
        outcome = self.desk.connect(call, call.caller, Case(unit, ticket), announcement,
                                    hold=to_pcm(hold) if hold is not None else None, escape_digit=escape_digit)
        return ThreeWayResult(outcome.reason.value, outcome.seat.number if outcome.seat else None,
                              outcome.conference_id)


def bridge(node: IvrNode, a: CallSession, b: CallSession) -> None:
    """Connect two calls until either side hangs up; then end both. What either said before is dropped, so
    they hear each other without that backlog as a delay."""
    conference = Conference(node.media_clock, call_ended=(CallEnded,), tones=False)
    try:
        conference.join(a, role="caller", number=a.caller)
        conference.join(b, role="callee", number=b.called)
        while not conference.wait_finished(1.0):
            pass
    finally:
        conference.end("transfer over")
