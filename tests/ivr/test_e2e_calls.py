"""End to end: the simulated caller dials 12345 through the real Kamailio, the real IVR node answers.

The IVR side runs a small application on the CallSession contract (play a greeting, collect digits, tap the
caller's audio) so each assertion is about content: the caller heard *this* greeting (normalised
cross-correlation against the prompt), the IVR got *these* digits, the IVR recorded *what the caller said*,
and a BYE from either side ends both ends within a second. Both G.711 laws.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest

from ivr.session import CallEnded
from ivr.softphone.audio import similarity, synthesize

pytestmark = pytest.mark.sip

GREETING_TEXT = "Welcome to the twelve three four five city hotline. Please enter your choice."
CALLER_TEXT = "My water pipe burst this morning and the street is flooded."


@dataclass
class IvrSideCall:
    """What the IVR application saw of one call."""

    caller: str = ""
    codec: str = ""
    digits: str = ""
    heard: bytearray = field(default_factory=bytearray)
    greeting_done: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    ended_at: float | None = None
    hung_up_at: float | None = None
    error: BaseException | None = None


class EchoApplication:
    """IVR application for these tests: greet, collect up to 3 digits ending with #, then either hang up
    (when `hang_up` is set) or listen until the caller leaves."""

    def __init__(self, greeting: bytes) -> None:
        self.greeting = greeting
        self.calls: list[IvrSideCall] = []
        self.hang_up = False
        self.new_call = threading.Event()

    def on_call(self, session) -> None:
        seen = IvrSideCall(caller=session.caller, codec=session.codec)
        self.calls.append(seen)
        self.new_call.set()
        session.add_tap(seen.heard.extend)
        try:
            session.play(self.greeting, barge_in=False)
            seen.greeting_done.set()
            seen.digits = session.collect_digits(max_digits=3, first_digit_timeout=15, inter_digit_timeout=5,
                                                 terminator="#")
            if self.hang_up:
                time.sleep(0.5)
                seen.hung_up_at = time.monotonic()
                session.hangup()
            else:
                while True:
                    session.read_frame(timeout=0.5)
                    if session.ended:
                        raise CallEnded()
        except CallEnded:
            pass
        except BaseException as exc:  # surfaced by the test, never swallowed
            seen.error = exc
        finally:
            seen.ended_at = time.monotonic()
            seen.ended.set()


@pytest.fixture(scope="module")
def greeting() -> bytes:
    return synthesize(GREETING_TEXT)


@pytest.fixture(scope="module")
def caller_speech() -> bytes:
    return synthesize(CALLER_TEXT)


@pytest.fixture
def ivr(sip_server, greeting):
    from ivr.node import IvrNode

    app = EchoApplication(greeting)
    node = IvrNode(sip_server.host, sip_server.port, sip_server.ivr_extension,
                   sip_server.password(sip_server.ivr_extension), on_call=app.on_call, local_ip="127.0.0.1")
    node.start()
    yield app
    node.stop()


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_caller_hears_the_greeting_and_the_ivr_gets_digits_and_voice(softphone, ivr, greeting, caller_speech,
                                                                     codec):
    call = softphone.dial("12345", codec=codec)
    assert call.wait_answered(15), call.summary()
    assert ivr.new_call.wait(5)
    seen = ivr.calls[-1]
    call.play(caller_speech, wait=True)  # spoken over the greeting, as callers do
    assert seen.greeting_done.wait(30)
    call.send_dtmf("42#")
    deadline = time.monotonic() + 10
    while seen.digits == "" and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    call.hangup()
    bye_sent = time.monotonic()
    assert seen.ended.wait(5)

    assert seen.error is None, seen.error
    assert (seen.codec, seen.digits) == (codec, "42")
    assert seen.caller.startswith(softphone.extension) or softphone.extension in seen.caller
    assert seen.ended_at - bye_sent < 1.0
    match = similarity(call.heard(), greeting)
    assert match.similarity > 0.8, match
    ivr_heard = similarity(bytes(seen.heard), caller_speech)
    assert ivr_heard.similarity > 0.8, ivr_heard
    summary = call.summary()
    assert (summary.answered, summary.sip_status, summary.codec, summary.digits_sent, summary.ended_by) == (
        True, 200, codec, "42#", "caller")


def test_ivr_hangup_ends_the_caller_within_a_second(softphone, ivr):
    ivr.hang_up = True
    call = softphone.dial("12345")
    assert call.wait_answered(15)
    assert ivr.new_call.wait(5)
    seen = ivr.calls[-1]
    assert seen.greeting_done.wait(30)
    call.send_dtmf("7#")
    assert seen.ended.wait(10)
    assert call.wait_ended(5)
    assert call.ended_at - seen.hung_up_at < 1.0
    assert (seen.digits, call.summary().ended_by) == ("7", "remote")
