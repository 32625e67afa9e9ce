"""The node's live calls: which calls are in progress, where each is in its flow and what the caller is
saying, for the operator console (console.live) — and picking a call up to an operator's seat.

One store per node, fed from three sides: the call wrapper (`watch`: a call starts, its end callback
removes it), the interpreter (`callflows.ports.CallObserver`: node entered, partial and final transcripts)
and the console (`pick_up`). The multinode work shares the same snapshot through Redis; the console only
needs `version`, `snapshot` and `pick_up`.

Picking up reuses the flow's own rule that the operator digit reaches a human at any prompt: the store
queues that digit on the call as if the caller had pressed it, and `PickUpSwitchboard` sends the transfer
that follows to the picking operator's seat instead of the flow's operator number.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

MAX_HEARD = 20  # final transcripts kept per call for the live view


class LiveSession(Protocol):
    """What the store needs of a call (ivr.session.CallSession fits)."""

    call_id: str
    caller: str
    started_at: datetime | None
    details: dict[str, str]

    def deliver_digit(self, digit: str) -> None: ...
    def on_end(self, callback: Callable[..., None]) -> None: ...


@dataclass
class LiveCall:
    session: LiveSession
    started_at: datetime
    flow: str = ""
    node: str = ""
    partial: str = ""
    heard: list[str] = field(default_factory=list)
    picked_up_by: str = ""  # the operator who picked the call up...
    picked_up_to: str = ""  # ...to this seat

    def to_dict(self) -> dict[str, Any]:
        return {"call_id": self.session.call_id, "caller": self.session.caller,
                "started_at": self.started_at.isoformat(), "flow": self.flow, "node": self.node,
                "partial": self.partial, "heard": list(self.heard), "picked_up_by": self.picked_up_by,
                "picked_up_to": self.picked_up_to}


class LiveCallStore:
    """Thread-safe: calls' threads write, the console's event stream reads."""

    def __init__(self, operator_digit: str = "0", clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.operator_digit = operator_digit
        self.clock = clock
        self._lock = threading.Lock()
        self._calls: dict[str, LiveCall] = {}
        self._seats: dict[str, str] = {}  # call id -> seat an operator picked it up to
        self._version = 0

    # -- the call's lifetime ---------------------------------------------------------------------

    def watch(self, session: LiveSession) -> None:
        """A call was answered: show it until it ends."""
        with self._lock:
            self._calls[session.call_id] = LiveCall(session, session.started_at or self.clock())
            self._version += 1
        session.on_end(lambda _session: self._forget(session.call_id))

    def _forget(self, call_id: str) -> None:
        with self._lock:
            if self._calls.pop(call_id, None) is not None:
                self._version += 1
            self._seats.pop(call_id, None)

    # -- callflows.ports.CallObserver ------------------------------------------------------------

    def _update(self, call_id: str, change: Callable[[LiveCall], None]) -> None:
        with self._lock:
            call = self._calls.get(call_id)
            if call is not None:
                change(call)
                self._version += 1

    def node_entered(self, call_id: str, flow: str, node: str) -> None:
        def change(call: LiveCall) -> None:
            call.flow, call.node = flow, node
        self._update(call_id, change)

    def partial_transcript(self, call_id: str, text: str) -> None:
        def change(call: LiveCall) -> None:
            call.partial = text
        self._update(call_id, change)

    def final_transcript(self, call_id: str, text: str) -> None:
        def change(call: LiveCall) -> None:
            call.partial = ""
            call.heard = [*call.heard, text][-MAX_HEARD:]
        self._update(call_id, change)

    # -- the console (console.live.LiveCalls) ----------------------------------------------------

    @property
    def version(self) -> int:
        return self._version

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [call.to_dict() for call in sorted(self._calls.values(), key=lambda c: c.started_at)]

    def pick_up(self, call_id: str, seat: str, by: str) -> bool:
        """Send the call to `seat` at its next prompt or question; False when it is no longer in progress."""
        with self._lock:
            call = self._calls.get(call_id)
            if call is None:
                return False
            self._seats[call_id] = seat
            call.picked_up_by, call.picked_up_to = by, seat
            call.session.details["picked_up_by"] = f"{by} to {seat}"
            self._version += 1
        call.session.deliver_digit(self.operator_digit)
        return True

    def seat_for(self, call_id: str) -> str | None:
        """The seat an operator picked this call up to (taken: a later transfer goes where the flow says)."""
        with self._lock:
            return self._seats.pop(call_id, None)


class Transfers(Protocol):
    def transfer(self, call: Any, number: str) -> bool: ...


class PickUpSwitchboard:
    """callflows' Switchboard port around the real one: a transfer of a call an operator picked up goes to
    that operator's seat; every other method (three-way calls...) is the real switchboard's, unchanged."""

    def __init__(self, inner: Transfers, store: LiveCallStore) -> None:
        self.inner = inner
        self.store = store

    def transfer(self, call: Any, number: str) -> bool:
        return self.inner.transfer(call, self.store.seat_for(call.call_id) or number)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
