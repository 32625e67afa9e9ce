"""End to end: the simulated caller dials 12345 through the real Kamailio, the real IVR node answers.

The IVR side runs the probe application of tests/conftest.py (`ivr` fixture: play a greeting, collect
digits, tap the caller's audio) on the CallSession contract, so each assertion is about content: the caller
heard *this* greeting (normalised cross-correlation against the prompt), the IVR got *these* digits, the IVR
recorded *what the caller said*, and a BYE from either side ends both ends within a second. Both G.711 laws.
"""

from __future__ import annotations

import time

import pytest

from ivr.softphone.audio import similarity, synthesize

pytestmark = pytest.mark.sip

CALLER_TEXT = "My water pipe burst this morning and the street is flooded."


@pytest.fixture(scope="module")
def caller_speech() -> bytes:
    return synthesize(CALLER_TEXT)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_caller_hears_the_greeting_and_the_ivr_gets_digits_and_voice(softphone, ivr, greeting, caller_speech, codec):
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
    match = similarity(call.heard(keep_gaps=False), greeting)
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
