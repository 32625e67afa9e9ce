"""The IVR node through the real Kamailio on loopback, with the simulated caller (and plain pyVoIP phones as
callees of outbound calls).

Each test asserts content: which digit the detail record holds, that the caller heard *this* prompt and the
IVR's recording holds *what the caller said* (normalised cross-correlation), which SIP status a refused call
got, which host:port a registration error names.
"""

from __future__ import annotations

import socket
import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from ivr.demo_flow import GREETING, DemoFlow
from ivr.local_sip_server import free_udp_port
from ivr.node import CallRecord, IvrNode, RegistrationError
from ivr.session import CallEnded, CallSession, to_pcm
from ivr.softphone.audio import similarity, synthesize
from recordings.wav_writer import record_caller

pytestmark = pytest.mark.sip

CALLER_TEXT = "My water pipe burst this morning and the street is flooded."


def wait_until(predicate: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def listen_until_ended(session: CallSession) -> None:
    """An application that keeps the call up until the other side leaves."""
    try:
        while True:
            session.read_frame(timeout=0.5)
    except CallEnded:
        pass


@pytest.fixture(scope="module")
def caller_speech() -> bytes:
    return synthesize(CALLER_TEXT)


@pytest.fixture
def node_factory(sip_server) -> Iterator[Callable[..., IvrNode]]:
    """make(on_call, extension=12345, **node options) -> a started IvrNode; all stopped after the test."""
    nodes: list[IvrNode] = []

    def make(on_call: Callable[[CallSession], None], extension: str | None = None, **options) -> IvrNode:
        extension = extension or sip_server.ivr_extension
        node = IvrNode(sip_server.host, sip_server.port, extension, sip_server.password(extension),
                       on_call=on_call, local_ip="127.0.0.1", **options)
        nodes.append(node)
        node.start()
        return node

    yield make
    for node in nodes:
        node.stop()


class DemoWithRecording:
    """What server.py wires: the demo flow, the caller's leg recorded, detail records collected."""

    def __init__(self, root: Path) -> None:
        self.flow = DemoFlow(root / "prompts", digit_timeout=15)
        self.flow.prepare()
        self.recordings_root = root / "recordings"
        self.records: list[CallRecord] = []

    def on_call(self, session: CallSession) -> None:
        record_caller(session, self.recordings_root)
        self.flow.on_call(session)

    @property
    def greeting_pcm(self) -> bytes:
        return to_pcm(self.flow.prompt("greeting", GREETING))


def read_wav(path: str) -> bytes:
    with wave.open(path, "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        return wav.readframes(wav.getnframes())


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_demo_flow_keeps_the_choice_and_records_the_caller(tmp_path, softphone, node_factory, caller_speech,
                                                           codec):
    demo = DemoWithRecording(tmp_path)
    node = node_factory(demo.on_call)
    node.on_record = demo.records.append

    call = softphone.dial("12345", codec=codec)
    assert call.wait_answered(15), call.summary()
    call.play(caller_speech, wait=True)
    assert wait_until(lambda: similarity(call.heard(), demo.greeting_pcm).similarity > 0.8, 30), \
        similarity(call.heard(), demo.greeting_pcm)
    call.send_dtmf("2")
    assert call.wait_ended(30), "the demo flow hangs up after the goodbye"
    assert wait_until(lambda: demo.records, 10)

    record = demo.records[0]
    assert (record.caller, record.called, record.codec, record.digits) == (softphone.extension, "12345", codec,
                                                                           "2")
    assert record.details == {"choice": "2", "choice_name": "complaint"}
    assert (record.ended_by, record.error, record.direction) == ("ivr", None, "inbound")
    assert record.started_at <= record.answered_at <= record.ended_at
    assert call.summary().ended_by == "remote"
    recorded = read_wav(record.recording_path)
    match = similarity(recorded, caller_speech)
    assert match.similarity > 0.8, match
    assert node.health().active_calls == 0


def test_caller_hanging_up_mid_prompt_keeps_what_was_collected(tmp_path, softphone, node_factory):
    demo = DemoWithRecording(tmp_path)
    node = node_factory(demo.on_call)
    node.on_record = demo.records.append

    call = softphone.dial("12345")
    assert call.wait_answered(15)
    assert call.wait_for_audio(0.5, timeout=10)
    call.send_dtmf("9")  # barges into the greeting; not a menu choice → "invalid choice" prompt, menu again
    time.sleep(1.0)
    call.hangup()
    assert wait_until(lambda: demo.records, 10)

    record = demo.records[0]
    assert (record.digits, record.details, record.error, record.ended_by) == ("9", {}, None, "caller")
    assert record.ended_at is not None
    assert len(read_wav(record.recording_path)) > 0  # a finished, readable WAV despite the hang-up
    assert node.health().active_calls == 0


def test_calls_beyond_the_maximum_get_busy_and_the_node_stays_healthy(softphone_factory, node_factory):
    node = node_factory(listen_until_ended, max_calls=1)
    first, second = softphone_factory(), softphone_factory()

    call = first.dial("12345")
    assert call.wait_answered(15)
    assert wait_until(lambda: node.health().active_calls == 1, 5)
    refused = second.dial("12345")
    assert not refused.wait_answered(15)
    assert refused.summary().sip_status == 486
    health = node.health()
    assert (health.registration, health.active_calls, health.capacity) == ("registered", 1, 1)

    call.hangup()
    assert wait_until(lambda: node.health().active_calls == 0, 5)
    again = second.dial("12345")
    assert again.wait_answered(15), again.summary()
    again.hangup()


def test_unreachable_registrar_names_host_and_port(sip_server):
    port = free_udp_port()
    node = IvrNode("127.0.0.1", port, "12345", "secret", on_call=listen_until_ended, register_timeout=2)
    with pytest.raises(RegistrationError, match=rf"127\.0\.0\.1:{port}"):
        node.start()
    assert node.health().registration == "failed"


def test_rejected_credentials_name_the_sip_status(sip_server):
    node = IvrNode(sip_server.host, sip_server.port, "12345", "wrong-password", on_call=listen_until_ended,
                   register_timeout=3)
    with pytest.raises(RegistrationError, match=rf"{sip_server.host}:{sip_server.port}.*403"):
        node.start()


def test_malformed_sip_datagrams_do_not_stop_the_next_call(softphone, node_factory):
    digits: list[str] = []

    def collect(session: CallSession) -> None:
        digits.append(session.collect_digits(max_digits=4, first_digit_timeout=15))

    node = node_factory(collect)
    garbage = [b"\xff\xfe\x00garbage", b"INVITE\r\n\r\n", b"SIP/2.0 banana\r\nVia: nowhere\r\n\r\n"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in garbage:
            sock.sendto(datagram, ("127.0.0.1", node.sip_port))
    assert wait_until(lambda: node.health().malformed_sip_datagrams == len(garbage), 5), node.health()

    call = softphone.dial("12345")
    assert call.wait_answered(15), call.summary()
    call.send_dtmf("314#")
    assert wait_until(lambda: digits, 10)
    assert digits == ["314"]
    assert call.wait_ended(5)


def dominant_frequency(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples - samples.mean()))
    return float(np.argmax(spectrum) * 8000 / samples.size)


@pytest.fixture
def free_extension(_free_tester_extensions) -> Callable[[], str]:
    return lambda: next(_free_tester_extensions)


def test_dial_answered_gives_a_session_with_audio_both_ways(node_factory, pyvoip_callee, free_extension):
    extension = free_extension()
    callee = pyvoip_callee(extension)
    node = node_factory(listen_until_ended)
    tone = (np.sin(2 * np.pi * 440 * np.arange(8000 * 3) / 8000) * 8000).astype("<i2").tobytes()

    result = node.dial(extension, timeout=15)
    assert (result.status, result.sip_status) == ("answered", 200)
    session = result.session
    session.write_frame(tone)
    heard = bytearray()
    deadline = time.monotonic() + 10
    while len(heard) < 8000 * 2 and time.monotonic() < deadline:  # one second of the callee's tone
        frame = session.read_frame(timeout=1)
        if frame is not None and np.abs(np.frombuffer(frame, "<i2")).max() > 1000:
            heard += frame
    session.hangup()
    assert callee.ended.wait(5)

    assert abs(dominant_frequency(bytes(heard)) - 700) < 10  # the callee's 700 Hz tone, at 16 bits
    callee_heard = np.frombuffer(callee.audio, dtype=np.uint8).astype(np.int16) - 128
    callee_pcm = (callee_heard * 256).astype("<i2").tobytes()
    assert abs(dominant_frequency(callee_pcm) - 440) < 10
    assert wait_until(lambda: node.recent_calls(), 5)
    record = node.recent_calls()[-1]
    assert (record.direction, record.called, record.ended_by) == ("outbound", extension, "ivr")


def test_dial_busy_no_answer_and_failed(node_factory, softphone_factory, free_extension, sip_server):
    from pyVoIP.VoIP import VoIPPhone

    node = node_factory(listen_until_ended)

    busy_phone = softphone_factory()  # a softphone refuses incoming calls with 486
    busy = node.dial(busy_phone.extension, timeout=10)
    assert (busy.status, busy.sip_status, busy.session) == ("busy", 486, None)

    silent_extension = free_extension()
    rang = threading.Event()
    silent = VoIPPhone(sip_server.host, sip_server.port, silent_extension, sip_server.password(silent_extension),
                       myIP="127.0.0.1", sipPort=free_udp_port(), rtpPortLow=40000, rtpPortHigh=49000,
                       callCallback=lambda call: rang.set())  # rings, never answers
    silent.start()
    try:
        assert wait_until(lambda: silent.get_status().name == "REGISTERED", 10)
        started = time.monotonic()
        unanswered = node.dial(silent_extension, timeout=3)
        assert (unanswered.status, unanswered.session) == ("no_answer", None)
        assert 3 <= time.monotonic() - started < 8
        assert rang.is_set()
    finally:
        silent.stop()

    nobody = node.dial("1999", timeout=10)  # not registered: the SIP server answers 404
    assert (nobody.status, nobody.sip_status) == ("failed", 404)
    assert node.health().active_calls == 0
