"""The IVR node under several simultaneous callers, through the real Kamailio with real RTP, for what the
single-call tests (test_node.py, test_e2e_calls.py) do not show:

- calls in parallel stay apart: each caller hears the greeting, each detail record holds exactly that
  caller's digits, and the node runs one media thread for all of them (not pyVoIP's three per call);
- a hang-up from either side frees the call's RTP port and its application thread;
- barge-in over the real path: a key pressed during a long prompt stops it, and that digit starts the
  collected number;
- garbage sent to the node's SIP port in the middle of a call does not disturb that call.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest

from ivr.node import CallRecord, IvrNode
from ivr.session import CallEnded, CallSession
from ivr.softphone.audio import similarity, synthesize

pytestmark = pytest.mark.sip

PARALLEL_CALLS = 4


def wait_until(predicate: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def ivr_threads(prefix: str, ignore: frozenset[threading.Thread] = frozenset()) -> list[threading.Thread]:
    """Live threads named `prefix`..., except `ignore` (left over from earlier tests in this process)."""
    return [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive() and t not in ignore]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def heard_share(heard: bytes, prompt: bytes, chunk_seconds: float = 1.0) -> float:
    """Share of the prompt's 1 s pieces found in `heard` (cross-correlation > 0.8 each). Piecewise, so a
    stall of a loaded machine (a gap in the middle of the prompt) does not hide that the prompt was heard."""
    size = int(chunk_seconds * 16000)
    pieces = [prompt[i:i + size] for i in range(0, len(prompt) - size + 1, size)]
    voiced = [piece for piece in pieces if max(abs(int.from_bytes(piece[j:j + 2], "little", signed=True))
                                               for j in range(0, len(piece), 2)) > 1000]
    return sum(similarity(heard, piece).similarity > 0.8 for piece in voiced) / len(voiced)


def ivr_rtp_port(call) -> int:
    """The IVR's RTP port, as its SDP answer told the caller."""
    return call._call.media.remote[1]


@pytest.fixture(scope="module")
def greeting() -> bytes:
    return synthesize("Welcome to the city service hotline. Please enter your reference number.")


class GreetAndCollect:
    """Greets, collects digits up to '#', notes them in the record, then waits for the caller to leave."""

    def __init__(self, greeting: bytes) -> None:
        self.greeting = greeting
        self.records: list[CallRecord] = []
        self.lock = threading.Lock()

    def on_call(self, session: CallSession) -> None:
        try:
            session.play(self.greeting, barge_in=False)
            session.details["entered"] = session.collect_digits(max_digits=6, first_digit_timeout=30,
                                                                inter_digit_timeout=10)
            while True:
                session.read_frame(timeout=0.5)
        except CallEnded:
            pass

    def on_record(self, record: CallRecord) -> None:
        with self.lock:
            self.records.append(record)


def test_parallel_calls_stay_apart_on_one_media_thread(softphone_factory, ivr_node_factory, greeting):
    app = GreetAndCollect(greeting)
    earlier = frozenset(threading.enumerate())
    node = ivr_node_factory(app.on_call, on_record=app.on_record)
    phones = [softphone_factory() for _ in range(PARALLEL_CALLS)]
    calls = [phone.dial("12345", codec=("PCMU", "PCMA")[i % 2]) for i, phone in enumerate(phones)]
    assert all(call.wait_answered(20) for call in calls), [c.summary() for c in calls]
    assert wait_until(lambda: node.health().active_calls == PARALLEL_CALLS, 10)
    assert wait_until(lambda: len(ivr_threads("ivr-call-", earlier)) == PARALLEL_CALLS, 5)
    assert len(ivr_threads("ivr-media", earlier)) == 1  # one thread moves every call's RTP

    for call in calls:  # each caller hears the greeting (nearly all of it, even if the machine stalled)
        assert wait_until(lambda: heard_share(call.heard(keep_gaps=False), greeting) >= 0.8, 40, step=0.5), \
            heard_share(call.heard(keep_gaps=False), greeting)
    entered = {phone.extension: f"{i + 1}{i + 1}0{i}" for i, phone in enumerate(phones)}
    senders = [threading.Thread(target=call.send_dtmf, args=(entered[phone.extension] + "#",))
               for phone, call in zip(phones, calls)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(30)
    time.sleep(0.5)
    ports = [ivr_rtp_port(call) for call in calls]
    for call in calls:
        call.hangup()
    assert wait_until(lambda: len(app.records) == PARALLEL_CALLS, 15)

    by_caller = {record.caller: record for record in app.records}
    assert {caller: record.details["entered"] for caller, record in by_caller.items()} == entered
    assert {caller: record.digits for caller, record in by_caller.items()} == {
        caller: digits + "#" for caller, digits in entered.items()}
    assert {record.codec for record in app.records} == {"PCMU", "PCMA"}
    assert all(record.ended_by == "caller" and record.error is None for record in app.records)
    assert wait_until(lambda: not ivr_threads("ivr-call-", earlier), 5)
    assert all(port_is_free(port) for port in ports)
    assert node.health().active_calls == 0


def test_ivr_hangup_frees_the_rtp_port_and_the_call_thread(softphone, ivr_node_factory):
    hung_up = threading.Event()
    earlier = frozenset(threading.enumerate())

    def answer_then_hang_up(session: CallSession) -> None:
        session.next_digit(timeout=20)
        session.hangup()
        hung_up.set()

    node = ivr_node_factory(answer_then_hang_up)
    call = softphone.dial("12345")
    assert call.wait_answered(15)
    port = ivr_rtp_port(call)
    assert not port_is_free(port)
    call.send_dtmf("1")
    assert hung_up.wait(10)
    assert call.wait_ended(5)
    assert call.summary().ended_by == "remote"
    assert wait_until(lambda: port_is_free(port) and not ivr_threads("ivr-call-", earlier), 5)
    assert node.health().active_calls == 0


def test_a_key_pressed_during_a_long_prompt_stops_it_and_starts_the_number(softphone, ivr_node_factory):
    prompt = synthesize("Please listen carefully, as our menu options have changed recently. " * 3)
    outcome: dict[str, object] = {}

    def menu(session: CallSession) -> None:
        started = time.monotonic()
        outcome["interrupted_by"] = session.play(prompt)
        outcome["played_seconds"] = time.monotonic() - started
        outcome["number"] = session.collect_digits(max_digits=4, first_digit_timeout=10, inter_digit_timeout=5)

    ivr_node_factory(menu)
    call = softphone.dial("12345")
    assert call.wait_answered(15)
    assert call.wait_for_audio(1.0, timeout=10)
    call.send_dtmf("5")
    call.send_dtmf("67#")
    assert wait_until(lambda: "number" in outcome, 15), outcome
    call.hangup()

    prompt_seconds = len(prompt) / 16000
    assert (outcome["interrupted_by"], outcome["number"]) == ("5", "567")
    assert outcome["played_seconds"] < prompt_seconds / 2, (outcome, prompt_seconds)


def test_sip_garbage_during_a_call_does_not_disturb_it(softphone, ivr_node_factory):
    digits: list[str] = []
    node = ivr_node_factory(lambda session: digits.append(session.collect_digits(max_digits=3,
                                                                             first_digit_timeout=20)))
    call = softphone.dial("12345")
    assert call.wait_answered(15)
    call.send_dtmf("8")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for datagram in (b"\x00" * 40, b"BYE\r\n\r\n", b"SIP/2.0 xyz\r\n\r\n"):
            sender.sendto(datagram, ("127.0.0.1", node.sip_port))
    assert wait_until(lambda: node.health().malformed_sip_datagrams >= 2, 5), node.health()
    assert not call.ended
    call.send_dtmf("42")
    assert wait_until(lambda: digits, 10)
    assert digits == ["842"]
    assert call.wait_ended(5)
