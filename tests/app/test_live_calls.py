"""The node's live-call store: calls appear when answered, follow the interpreter's observer calls, vanish
when they end; a pick-up presses the operator digit for the caller and sends the transfer to the seat."""
from __future__ import annotations

from datetime import datetime, timezone

from app.live_calls import LiveCallStore, PickUpSwitchboard
from callflows.ports import CallObserver

START = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)


class FakeSession:
    def __init__(self, call_id: str, caller: str) -> None:
        self.call_id, self.caller, self.started_at = call_id, caller, START
        self.details: dict[str, str] = {}
        self.digits: list[str] = []
        self.end_callbacks: list = []

    def deliver_digit(self, digit: str) -> None:
        self.digits.append(digit)

    def on_end(self, callback) -> None:
        self.end_callbacks.append(callback)

    def end(self) -> None:
        for callback in self.end_callbacks:
            callback(self)


class FakeSwitchboard:
    def __init__(self) -> None:
        self.transfers: list[tuple[str, str]] = []

    def transfer(self, call, number: str) -> bool:
        self.transfers.append((call.call_id, number))
        return True

    def three_way(self, call, unit: str, announcement) -> bool:
        return unit == "供水公司"


def test_a_call_is_shown_from_answer_to_hang_up_with_its_node_and_what_was_heard():
    store = LiveCallStore()
    observer: CallObserver = store  # the interpreter's port
    session = FakeSession("a" * 32, "1001")
    before = store.version
    store.watch(session)
    observer.node_entered(session.call_id, "hotline12345", "ask_request")
    observer.partial_transcript(session.call_id, "수도")
    assert store.snapshot() == [{"call_id": "a" * 32, "caller": "1001", "started_at": START.isoformat(),
                                 "flow": "hotline12345", "node": "ask_request", "partial": "수도", "heard": [],
                                 "picked_up_by": "", "picked_up_to": ""}]
    observer.final_transcript(session.call_id, "수도 단수 민원입니다")
    [call] = store.snapshot()
    assert (call["partial"], call["heard"]) == ("", ["수도 단수 민원입니다"])
    assert store.version == before + 4
    session.end()
    assert store.snapshot() == [] and store.version == before + 5


def test_updates_for_unknown_or_ended_calls_are_ignored():
    store = LiveCallStore()
    store.node_entered("nobody", "f", "n")
    store.final_transcript("nobody", "x")
    assert store.snapshot() == [] and store.version == 0 and store.pick_up("nobody", "1003", "op") is False


def test_pick_up_presses_the_operator_digit_and_the_transfer_goes_to_the_operators_seat():
    store = LiveCallStore(operator_digit="0")
    session = FakeSession("b" * 32, "1002")
    store.watch(session)
    switchboard = PickUpSwitchboard(FakeSwitchboard(), store)
    assert store.pick_up(session.call_id, "1004", "话务员小王") is True
    assert session.digits == ["0"] and session.details["picked_up_by"] == "话务员小王 to 1004"
    assert (store.snapshot()[0]["picked_up_by"], store.snapshot()[0]["picked_up_to"]) == ("话务员小王", "1004")
    switchboard.transfer(session, "1003")                 # the flow's operator node transfers...
    switchboard.transfer(session, "1003")                 # ...and a later transfer goes where the flow says
    assert switchboard.inner.transfers == [(session.call_id, "1004"), (session.call_id, "1003")]
    assert switchboard.three_way(session, "供水公司", b"") is True  # everything else is the real switchboard's
