"""IvrSwitchboard (the `Switchboard` port) through the real SIP server: a simulated caller dials the real
IVR node, the node dials a plain pyVoIP phone (the other party / the member unit's seat), and each side
must hear the other's tone through the bridge; when one side hangs up, the other leg is ended too."""
from __future__ import annotations

import math
import struct
import threading
import time

import numpy as np
import pytest

from app.adapters.switchboard_adapter import IvrSwitchboard

pytestmark = pytest.mark.sip
RATE = 8000


def tone(frequency: float, seconds: float) -> bytes:
    n = int(RATE * seconds)
    return struct.pack(f"<{n}h", *(int(8000 * math.sin(2 * math.pi * frequency * i / RATE)) for i in range(n)))


def dominant_frequency(samples: np.ndarray) -> float:
    """The strongest frequency of the loud 20 ms frames of `samples` (silence and line noise left out)."""
    frames = samples[: samples.size // 160 * 160].reshape(-1, 160)
    if not frames.size:
        return 0.0
    energy = np.sqrt((frames ** 2).mean(axis=1))
    loud = frames[energy > 0.3 * energy.max()].ravel()
    if loud.size < RATE // 10 or energy.max() < 5:
        return 0.0
    spectrum = np.abs(np.fft.rfft((loud - loud.mean()) * np.hanning(loud.size)))
    return float(np.fft.rfftfreq(loud.size, 1 / RATE)[spectrum.argmax()])


def pcm16(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)


def pcm8_unsigned(audio: bytes) -> np.ndarray:
    return np.frombuffer(audio, dtype=np.uint8).astype(np.float64) - 128


class SwitchboardApp:
    """The IVR's on_call: hand the caller to the switchboard and keep what it returned."""

    def __init__(self) -> None:
        self.switchboard: IvrSwitchboard | None = None
        self.action = None
        self.results: list[bool] = []
        self.done = threading.Event()

    def on_call(self, session) -> None:
        try:
            self.results.append(self.action(self.switchboard, session))
        finally:
            self.done.set()


@pytest.fixture
def ivr_switchboard(sip_server):
    from ivr.node import IvrNode

    app = SwitchboardApp()
    node = IvrNode(sip_server.host, sip_server.port, sip_server.ivr_extension,
                   sip_server.password(sip_server.ivr_extension), on_call=app.on_call, local_ip="127.0.0.1")
    node.start()
    yield node, app
    node.stop()


def test_transfer_bridges_the_caller_to_the_number_and_ends_the_caller_when_the_other_side_hangs_up(
        ivr_switchboard, softphone, pyvoip_callee, _free_tester_extensions):
    node, app = ivr_switchboard
    desk = next(_free_tester_extensions)
    callee = pyvoip_callee(desk, hangup_after=6)  # plays 2 s of 700 Hz, hangs up 6 s after answering
    app.switchboard = IvrSwitchboard(node, ring_timeout=15)
    app.action = lambda switchboard, session: switchboard.transfer(session, desk)

    call = softphone.dial("12345")
    assert call.wait_answered(15), call.summary()
    assert call.wait_for_audio(0.5, timeout=20), "the caller never heard the other party"

    assert call.wait_ended(30), "the caller's leg stayed up after the other side hung up"
    assert app.done.wait(15) and app.results == [True]
    assert callee.ended.wait(15)
    assert abs(dominant_frequency(pcm16(call.heard())) - 700) < 20
    # (this pyVoIP callee stops reading when it hangs up itself; the caller-to-seat direction is checked
    # in the three-way test below, whose seat listens until the caller leaves)


def test_three_way_rings_the_units_seats_in_order_announces_and_bridges(
        ivr_switchboard, softphone, pyvoip_callee, _free_tester_extensions):
    node, app = ivr_switchboard
    nobody = next(_free_tester_extensions)  # not registered: the first seat cannot be reached
    seat = next(_free_tester_extensions)
    callee = pyvoip_callee(seat)
    asked: list[str] = []

    def seats_for(unit: str) -> list[str]:
        asked.append(unit)
        return [nobody, seat]

    app.switchboard = IvrSwitchboard(node, seats_for=seats_for, ring_timeout=15)
    announcement = tone(400, 0.4)
    app.action = lambda switchboard, session: switchboard.three_way(session, "自来水公司", announcement)

    call = softphone.dial("12345")
    assert call.wait_answered(15), call.summary()
    assert call.wait_for_audio(0.5, timeout=30), "the caller never heard the seat"
    call.play(tone(1000, 1.0), wait=True)
    time.sleep(0.5)  # let the last frames cross the bridge
    call.hangup()

    assert callee.ended.wait(15), "the seat's leg stayed up after the caller hung up"
    assert app.done.wait(15) and app.results == [True]
    assert asked == ["自来水公司"]
    heard_by_seat = pcm8_unsigned(callee.audio)
    assert abs(dominant_frequency(heard_by_seat[: RATE // 2]) - 400) < 20  # the announcement came first
    assert abs(dominant_frequency(heard_by_seat[RATE // 2:]) - 1000) < 20
    assert abs(dominant_frequency(pcm16(call.heard())) - 700) < 20


def test_three_way_with_no_reachable_seat_returns_false_and_keeps_the_caller(
        ivr_switchboard, softphone, _free_tester_extensions):
    node, app = ivr_switchboard
    nobody = next(_free_tester_extensions)
    app.switchboard = IvrSwitchboard(node, seats_for=lambda unit: [nobody], ring_timeout=5)
    still_up: list[bool] = []

    def action(switchboard, session):
        reached = switchboard.three_way(session, "供电局", tone(400, 0.4))
        still_up.append(not session.ended)
        session.hangup()
        return reached

    app.action = action
    call = softphone.dial("12345")
    assert call.wait_answered(15), call.summary()
    assert app.done.wait(30) and app.results == [False]
    assert still_up == [True]
    assert call.wait_ended(15)
