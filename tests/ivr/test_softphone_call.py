"""The softphone through the real Kamailio against pyVoIP as the callee (a SIP stack we did not write).

pyVoIP decodes our RFC 4733 events with its own parser, so the digits it reports prove the wire format.
"""

from __future__ import annotations

import math
import struct
import time

import pytest

from ivr.softphone import SoftphoneError
from ivr.softphone.audio import similarity
from tests.conftest import PYVOIP_CALLEE_TONE

pytestmark = pytest.mark.sip

TONE = b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(16000))


def test_wrong_password_is_a_clear_registration_error(softphone_factory, sip_server):
    with pytest.raises(SoftphoneError, match=r"could not register at 127\.0\.0\.1:\d+: .*403"):
        softphone_factory(sip_server.tester_extensions[-1], "not-the-password")


def test_calling_an_unregistered_extension_reports_404(softphone):
    call = softphone.dial("1999")
    assert call.wait_answered(10) is False
    summary = call.summary()
    assert (summary.answered, summary.sip_status, summary.ended_by) == (False, 404, None)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_call_carries_digits_and_audio_both_ways(softphone_factory, pyvoip_callee, codec):
    far = pyvoip_callee("1020")
    phone = softphone_factory()
    call = phone.dial("1020", codec=codec)
    assert call.wait_answered(15)
    call.play(TONE)
    call.send_dtmf("1#9")
    call.hangup()
    assert far.ended.wait(5)
    summary = call.summary()
    assert (summary.answered, summary.sip_status, summary.codec, summary.digits_sent, summary.ended_by) == (
        True, 200, codec, "1#9", "caller")
    assert far.digits == "1#9"
    # pyVoIP hands out 8-bit unsigned audio; compare its shape with our tone
    heard_by_callee = bytes((b - 128) & 0xFF for b in far.audio)  # to signed 8-bit
    heard16 = b"".join(struct.pack("<h", (v - 256 if v > 127 else v) * 256) for v in heard_by_callee)
    assert similarity(heard16, TONE[:8000]).similarity > 0.9
    if codec == "PCMU":  # pyVoIP 1.6.8 sends μ-law even in PCMA calls, so only PCMU can be compared this way
        callee_tone = b"".join(struct.pack("<h", (v - 128) * 256) for v in PYVOIP_CALLEE_TONE)
        assert similarity(call.heard(keep_gaps=False), callee_tone[:8000]).similarity > 0.9


def test_hangup_by_the_far_end_ends_the_call_within_a_second(softphone, pyvoip_callee):
    far = pyvoip_callee("1019", hangup_after=1.0)
    call = softphone.dial("1019")
    assert call.wait_answered(15)
    assert far.ended.wait(10)
    bye_seen = time.monotonic()
    assert call.wait_ended(1.0)
    assert time.monotonic() - bye_seen < 1.0
    assert call.summary().ended_by == "remote"
    assert 0.8 < call.summary().connected_seconds < 5
