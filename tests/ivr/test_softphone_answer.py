"""The softphone as the called party (a member unit's remote seat in a tester's hands), through the real
Kamailio with real RTP: as a library (`Softphone(answer=True, tone=HZ)`) and as
`python -m ivr.softphone answer ...` in a process of its own; and `call --tone` as the caller."""
from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import time
import wave

import pytest

from ivr.softphone.audio import tone_share

pytestmark = pytest.mark.sip


def tone(hz: float, seconds: float) -> bytes:
    n = int(8000 * seconds)
    return struct.pack(f"<{n}h", *(int(6000 * math.sin(2 * math.pi * hz * i / 8000)) for i in range(n)))


def read_for(session, seconds: float) -> bytes:
    heard = b""
    deadline = time.monotonic() + seconds + 5
    while len(heard) < int(8000 * seconds) * 2 and time.monotonic() < deadline:
        heard += session.read_frame(timeout=1.0) or b""
    return heard


def test_an_answering_softphone_with_a_tone_talks_hears_and_presses_keys(ivr_node_factory, softphone_factory):
    seat = softphone_factory(answer=True, tone=1200)
    node = ivr_node_factory(lambda session: None)
    dialled = node.dial(seat.extension, timeout=15)
    assert dialled.status == "answered"
    call = seat.wait_incoming(10)
    assert call is not None and call.incoming and call.answered
    dialled.session.write_frame(tone(440, 2.0))
    heard_by_ivr = read_for(dialled.session, 1.5)
    assert tone_share(heard_by_ivr[1600:], 1200) > 0.9  # the seat's microphone
    call.send_dtmf("1")
    assert dialled.session.next_digit(5) == "1"
    time.sleep(1.0)
    dialled.session.hangup()
    assert call.wait_ended(10)
    summary = call.summary()
    assert (summary.direction, summary.number, summary.ended_by, summary.tone_hz) == \
        ("incoming", "12345", "remote", 1200)
    assert summary.digits_sent == "1" and summary.answered and summary.sip_status == 200
    assert tone_share(call.heard(), 440) > 0.9
    assert seat.wait_incoming(0.2) is None  # one call came, one was handed out


def test_a_phone_that_does_not_answer_refuses_with_busy(ivr_node_factory, softphone_factory):
    refusing = softphone_factory()
    node = ivr_node_factory(lambda session: None)
    assert node.dial(refusing.extension, timeout=10).status == "busy"
    with pytest.raises(Exception, match="answer=True"):
        refusing.wait_incoming(0.1)


def cli(sip_server, command: str, extension: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, HOTLINE_SOFTPHONE_PASSWORD=sip_server.password(extension))
    return subprocess.Popen([sys.executable, "-m", "ivr.softphone", command, *args,
                             "--server", f"{sip_server.host}:{sip_server.port}", "--extension", extension],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_registered(sip_server, extension: str, node, timeout: float = 20.0):
    """Dial until the CLI phone has registered (Kamailio answers 404 before that)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = node.dial(extension, timeout=10)
        if result.status == "answered":
            return result
        time.sleep(0.3)
    raise AssertionError(f"{extension} never answered")


def test_answer_cli_answers_one_call_plays_its_tone_presses_keys_records_and_prints_json(
        sip_server, ivr_node_factory, _free_tester_extensions, tmp_path):
    extension = next(_free_tester_extensions)
    recording = tmp_path / "seat.wav"
    process = cli(sip_server, "answer", extension, "--tone", "1200", "--dtmf", "1@1", "--record", str(recording),
                  "--json", "--timeout", "30")
    try:
        node = ivr_node_factory(lambda session: None)
        dialled = wait_registered(sip_server, extension, node)
        dialled.session.write_frame(tone(440, 3.0))
        assert dialled.session.next_digit(10) == "1"
        heard_by_ivr = read_for(dialled.session, 1.0)
        time.sleep(1.5)
        dialled.session.hangup()
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    summary = json.loads(out)
    assert summary["direction"] == "incoming" and summary["answered"] is True
    assert summary["digits_sent"] == "1" and summary["ended_by"] == "remote" and summary["tone_hz"] == 1200
    assert tone_share(heard_by_ivr, 1200) > 0.9
    with wave.open(str(recording)) as wav:
        heard = wav.readframes(wav.getnframes())
    assert tone_share(heard, 440) > 0.8 and tone_share(heard, 1200) < 0.01


def test_answer_cli_without_a_call_exits_2_naming_the_wait(sip_server, _free_tester_extensions):
    extension = next(_free_tester_extensions)
    process = cli(sip_server, "answer", extension, "--timeout", "1")
    out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert f"no call came to {extension} within 1 s" in err and out == ""


def test_bad_tone_is_refused_before_registering(sip_server, _free_tester_extensions):
    process = cli(sip_server, "answer", next(_free_tester_extensions), "--tone", "5000")
    out, err = process.communicate(timeout=30)
    assert process.returncode == 64 and "5000 Hz is outside the telephone band" in err


def test_call_cli_with_a_tone_is_heard_by_an_answering_phone(sip_server, softphone_factory,
                                                             _free_tester_extensions):
    seat = softphone_factory(answer=True)
    process = cli(sip_server, "call", next(_free_tester_extensions), seat.extension, "--tone", "440",
                  "--hold", "2", "--json")
    call = seat.wait_incoming(30)
    assert call is not None
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert json.loads(out)["tone_hz"] == 440
    assert call.wait_ended(10)
    assert tone_share(call.heard(), 440) > 0.9
