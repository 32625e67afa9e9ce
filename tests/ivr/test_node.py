"""The IVR node through the real Kamailio on loopback with real RTP: the demo flow with recordings and
detail records, capacity (486 beyond max calls), registration errors, malformed SIP, hang-up mid-prompt,
and outbound dialling (answered / busy / no answer / failed).
"""
from __future__ import annotations

import re
import socket
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.demo_flow import GOODBYE, GREETING, DemoFlow
from ivr.local_sip_server import free_udp_port
from ivr.node import CallRecord, IvrNode
from ivr.session import CallEnded, CallSession
from ivr.sip import RegistrationError
from ivr.softphone.audio import similarity, synthesize
from pcm import to_pcm
from recordings.wav_writer import record_caller

pytestmark = pytest.mark.sip

CALLER_TEXT = "The street lights on Harbour Road have been off for three nights."


class Records:
    """on_record hook for the tests: keeps the finished records, lets a test wait for one."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []
        self.arrived = threading.Condition()

    def __call__(self, record: CallRecord) -> None:
        with self.arrived:
            self.records.append(record)
            self.arrived.notify_all()

    def wait(self, count: int = 1, timeout: float = 15.0) -> list[CallRecord]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.records) >= count, timeout), self.records
            return list(self.records)


@pytest.fixture(scope="module")
def prompt_cache(tmp_path_factory) -> Path:
    flow = DemoFlow(tmp_path_factory.mktemp("prompts"))
    flow.prepare()
    return flow.prompts.cache_dir


def demo_with_recording(prompt_cache: Path, recordings_root: Path):
    flow = DemoFlow(prompt_cache)

    def on_call(session: CallSession) -> None:
        record_caller(session, recordings_root)
        flow.on_call(session)
    return on_call


def wav_pcm(path: str) -> bytes:
    with wave.open(path, "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        return wav.readframes(wav.getnframes())


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_demo_flow_answers_records_the_caller_and_stores_the_choice(ivr_node_factory, softphone, prompt_cache,
                                                                    tmp_path, codec):
    records = Records()
    on_call = demo_with_recording(prompt_cache, tmp_path / "recordings")
    node = ivr_node_factory(on_call, on_record=records)
    speech = synthesize(CALLER_TEXT)

    call = softphone.dial("12345", codec=codec)
    assert call.wait_answered(15), call.summary()
    call.play(speech, wait=True)  # over the greeting and the menu
    greeting = to_pcm(DemoFlow(prompt_cache).prompt(GREETING))
    deadline = time.monotonic() + 30
    while similarity(call.heard(keep_gaps=False), greeting).similarity < 0.8 and time.monotonic() < deadline:
        time.sleep(0.5)  # press only once the whole greeting was heard (a key would cut it short)
    call.send_dtmf("2")
    assert call.wait_ended(30), "the IVR hangs up after the goodbye prompt"

    record = records.wait()[0]
    assert (record.direction, record.codec, record.digits, record.details["choice"], record.ended_by,
            record.error) == ("inbound", codec, "2", "2", "ivr", None)
    assert record.caller == softphone.extension and record.called == "12345"
    assert re.fullmatch(r"[0-9a-f]{32}", record.call_id) and record.sip_call_id == call.call_id  # ours, SIP's
    assert record.call_id in record.recording_path
    assert record.started_at <= record.answered_at < record.ended_at
    assert record.recording_path.startswith(str(tmp_path / "recordings"))
    recorded = wav_pcm(record.recording_path)
    match = similarity(recorded, speech)
    assert match.similarity > 0.8, match
    heard = call.heard(keep_gaps=False)
    for name, text in (("greeting", GREETING), ("goodbye", GOODBYE)):
        prompt = to_pcm(DemoFlow(prompt_cache).prompt(text))
        assert similarity(heard, prompt).similarity > 0.8, name
    assert node.health().active_calls == 0
    assert call.summary().ended_by == "remote"


def test_beyond_max_calls_the_ivr_answers_busy_and_stays_healthy(ivr_node_factory, softphone_factory):
    def hold(session: CallSession) -> None:
        session.wait_ended(60)

    node = ivr_node_factory(hold, max_calls=2)
    first, second, third = softphone_factory(), softphone_factory(), softphone_factory()
    calls = [first.dial("12345"), second.dial("12345")]
    assert all(call.wait_answered(15) for call in calls)
    refused = third.dial("12345")
    assert refused.wait_ended(15)
    health = node.health()
    assert (refused.summary().sip_status, refused.summary().answered) == (486, False)
    assert (health.registration, health.active_calls, health.capacity) == ("registered", 2, 2)

    calls[0].hangup()
    deadline = time.monotonic() + 5
    while node.health().active_calls != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.health().active_calls == 1
    again = third.dial("12345")
    assert again.wait_answered(15), again.summary()
    again.hangup()
    calls[1].hangup()


def test_unreachable_registrar_raises_an_error_naming_host_and_port():
    port = free_udp_port()
    node = IvrNode("127.0.0.1", port, "12345", "secret", on_call=lambda s: None, local_ip="127.0.0.1",
                   register_timeout=2.0)
    with pytest.raises(RegistrationError, match=rf"127\.0\.0\.1:{port}.*(unreachable|did not answer)"):
        node.start()
    assert node.health().registration == "failed"


def test_wrong_password_raises_an_error_with_the_sip_status(sip_server):
    node = IvrNode(sip_server.host, sip_server.port, "12345", "not-the-password", on_call=lambda s: None,
                   local_ip="127.0.0.1")
    with pytest.raises(RegistrationError) as error:
        node.start()
    message = str(error.value)
    assert f"{sip_server.host}:{sip_server.port}" in message and "403" in message and "12345" in message


MALFORMED = [
    b"\xff\xfe garbage \x00\x01",
    b"INVITE sip:12345@127.0.0.1 SIP/2.0\r\n\r\n",  # no headers at all
    b"SIP/2.0 200\r\nVia: nonsense\r\n\r\n",
    b"BYE sip:12345@127.0.0.1 SIP/2.0\r\nCall-ID: x\r\nCSeq: not-a-number BYE\r\n\r\n",
    b"NOTASIPMESSAGE",
]


def test_malformed_sip_datagrams_do_not_stop_the_next_call(ivr_node_factory, softphone):
    digits: list[str] = []

    def collect(session: CallSession) -> None:
        digits.append(session.collect_digits(max_digits=3, first_digit_timeout=20, inter_digit_timeout=5))

    node = ivr_node_factory(collect)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for datagram in MALFORMED:
            sender.sendto(datagram, ("127.0.0.1", node.sip_port))
    deadline = time.monotonic() + 5
    while node.health().malformed_sip_datagrams < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.health().malformed_sip_datagrams >= 3

    call = softphone.dial("12345")
    assert call.wait_answered(15), call.summary()
    call.send_dtmf("908")
    assert call.wait_ended(15)
    assert digits == ["908"]


def test_caller_hangs_up_mid_prompt_record_keeps_what_was_collected(ivr_node_factory, softphone, prompt_cache,
                                                                    tmp_path):
    records = Records()
    long_prompt = synthesize("This is a very long announcement. " * 6)
    escaped: list[BaseException] = []

    tapped: list[bytes] = []

    def on_call(session: CallSession) -> None:
        record_caller(session, tmp_path)
        session.add_tap(tapped.append)
        try:
            session.play(long_prompt, barge_in=False)
        except CallEnded:
            raise
        except BaseException as exc:  # anything but CallEnded would be a bug
            escaped.append(exc)
            raise

    ivr_node_factory(on_call, on_record=records)
    call = softphone.dial("12345")
    assert call.wait_answered(15)
    call.send_dtmf("47")
    deadline = time.monotonic() + 15
    while len(tapped) < 75 and time.monotonic() < deadline:  # the IVR has 1.5 s of the caller's audio
        time.sleep(0.05)
    assert len(tapped) >= 75, (len(tapped), call.summary())
    call.hangup()

    record = records.wait()[0]
    assert escaped == []
    assert (record.digits, record.ended_by, record.error) == ("47", "caller", None)
    assert record.ended_at is not None and record.answered_at is not None
    with wave.open(record.recording_path, "rb") as wav:  # closed properly: the header has the true length
        assert wav.getnframes() >= 75 * 160  # everything tapped before the hang-up is in the file


def tone_energy(pcm: bytes, hz: float) -> float:
    """Share of the signal's energy at `hz` (Goertzel-like projection), 0..1."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if x.size == 0 or not x.any():
        return 0.0
    t = np.arange(x.size) / 8000
    projection = abs(np.dot(x, np.exp(-2j * np.pi * hz * t))) ** 2 * 2 / x.size
    return projection / np.dot(x, x)


def test_dial_answered_busy_no_answer_and_failed(ivr_node_factory, sip_server, pyvoip_callee):
    from pyVoIP.VoIP import VoIPPhone

    node = ivr_node_factory(lambda session: None)

    callee = pyvoip_callee("1011")
    result = node.dial("1011", timeout=15)
    assert (result.status, result.sip_status) == ("answered", 200)
    heard = b""
    deadline = time.monotonic() + 10
    while len(heard) < 8000 * 2 and time.monotonic() < deadline:  # one second of the callee's tone
        frame = result.session.read_frame(timeout=1.0)
        heard += frame or b""
    assert tone_energy(heard[3200:], 700) > 0.8  # pyVoIP's 700 Hz tone, at 16-bit resolution
    result.session.hangup()
    assert callee.ended.wait(10)

    busy_node = ivr_node_factory(lambda session: session.wait_ended(30), extension="1012", max_calls=1)
    held = node.dial("1012", timeout=15)
    assert held.status == "answered"
    busy = node.dial("1012", timeout=15)
    assert (busy.status, busy.sip_status, busy.session) == ("busy", 486, None)
    held.session.hangup()
    assert busy_node.health().capacity == 1

    never_answers = VoIPPhone(sip_server.host, sip_server.port, "1013", sip_server.password("1013"),
                              myIP="127.0.0.1", sipPort=free_udp_port(), callCallback=lambda call: None)
    never_answers.start()
    try:
        started = time.monotonic()
        unanswered = node.dial("1013", timeout=3)
        assert unanswered.status == "no_answer"
        assert 3 <= time.monotonic() - started < 8
        cancel = threading.Event()
        threading.Timer(1.0, cancel.set).start()
        started = time.monotonic()
        cancelled = node.dial("1013", timeout=20, cancel=cancel)  # e.g. the caller pressed 0 meanwhile
        assert cancelled.status == "no_answer" and cancelled.session is None
        assert time.monotonic() - started < 5
    finally:
        never_answers.stop()

    assert node.dial("1019", timeout=5).status == "failed"  # not registered: Kamailio's 404
    deadline = time.monotonic() + 5
    while node.health().active_calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.health().active_calls == 0


def ivr_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("ivr-"))


def test_hang_up_from_either_side_frees_threads_and_ports_and_stop_frees_the_rest(sip_server, softphone):
    ports: list[int] = []

    def on_call(session: CallSession) -> None:
        ports.append(session._outgoing.local_port)  # the call's RTP port, to check it is closed afterwards
        if session.next_digit(15) == "1":
            session.hangup()  # IVR side hangs up
        else:
            session.wait_ended(15)

    before = set(ivr_threads())
    node = IvrNode(sip_server.host, sip_server.port, "12345", sip_server.password("12345"), on_call=on_call,
                   local_ip="127.0.0.1")
    node.start()
    try:
        for digit, ended_by in (("1", "remote"), ("2", "caller")):
            call = softphone.dial("12345")
            assert call.wait_answered(15)
            call.send_dtmf(digit)
            if digit == "2":
                call.hangup()
            assert call.wait_ended(10) and call.summary().ended_by == ended_by
            deadline = time.monotonic() + 5
            while (node.health().active_calls or any(n.startswith("ivr-call-") for n in ivr_threads())) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            assert node.health().active_calls == 0
            assert not [n for n in ivr_threads() if n.startswith("ivr-call-")]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.bind(("127.0.0.1", ports[-1]))  # the RTP port is closed again
    finally:
        sip_port = node.sip_port
        node.stop()
    assert set(ivr_threads()) <= before
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", sip_port))


def test_registration_is_renewed_before_it_expires(ivr_node_factory, softphone):
    """30 s registrations: without renewal Kamailio forgets the IVR after 30 s and a call gets 404."""
    node = ivr_node_factory(lambda session: session.wait_ended(10), register_expires=30)
    registered_at = time.monotonic()
    deadline = registered_at + 40
    while node.health().registrations < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert node.health().registrations == 2 and node.health().registration == "registered"
    time.sleep(max(0.0, registered_at + 31 - time.monotonic()))  # the first registration has run out
    call = softphone.dial("12345")
    assert call.wait_answered(15), call.summary()
    call.hangup()


def test_a_recording_read_when_the_ivr_hangs_up_holds_the_prompt_to_its_last_frame(ivr_node_factory, softphone):
    """The IVR says something and hangs up at once (a read-back, then goodbye). The BYE marks the call ended
    before the softphone's media thread closes the stream, and only that hands over the last frames still in
    its jitter buffer or socket: read at once, the recording lacked them, and a reference that runs to the
    prompt's end no longer fitted (the identity test's similarity of 0.25 on a busy machine). Here the media
    thread is held up just before the prompt's end, as a loaded machine does."""
    from ivr import g711
    from ivr.softphone.audio import rms

    prompt = b"".join(int(9000 * np.sin(2 * np.pi * (300 + 400 * i / 8000) * i / 8000)).to_bytes(2, "little", signed=True)
                      for i in range(8000))  # 1 s rising chirp: 50 frames, each different, loud to the last

    def on_call(session: CallSession) -> None:
        session.play(prompt, barge_in=False)
        session.hangup()
    ivr_node_factory(on_call)
    call = softphone.dial("12345", codec="PCMU")
    assert call.wait_answered(15), call.summary()
    loud = []

    def hold_up_media_thread(frame: bytes, arrived: float) -> None:
        if rms(frame) > 1000:
            loud.append(arrived)
            if len(loud) == 45:  # five frames before the end: they and the BYE arrive meanwhile
                time.sleep(0.5)
    call.on_audio(hold_up_media_thread)
    assert call.wait_ended(15), call.summary()
    heard = call.heard()
    assert g711.decode_pcmu(g711.encode_pcmu(prompt)) in heard, (len(loud), call.summary())


def test_an_answer_arriving_while_the_node_dials_again_is_acknowledged(ivr_node_factory, sip_server,
                                                                       _free_tester_extensions, monkeypatch):
    """pyVoIP's invite() reads the node's SIP socket itself until its own INVITE is answered and hands any other
    message, say an earlier call's 200, to parse_message on the dialling thread. That took the dialling lock a
    second time: with a plain lock the node deadlocked holding pyVoIP's receive lock, never ACKed that 200
    and never read SIP again (the callbacks benchmark's citizen: "no ACK and no media 32 s after our 200").
    Here the first callee's 200 is made to arrive exactly while the second INVITE goes out."""
    from tests.ivr.raw_sip import RawSipEndpoint, new_token, sdp_offer

    first_number, second_number = next(_free_tester_extensions), next(_free_tester_extensions)
    node = ivr_node_factory(lambda session: session.wait_ended(30))
    ivr_node_factory(lambda session: session.wait_ended(30), extension=second_number)
    sip = node._phone.sip
    with RawSipEndpoint((sip_server.host, sip_server.port)) as first_callee:
        assert first_callee.register(first_number, sip_server.password(first_number)).status == 200
        results: dict[str, object] = {}
        first = threading.Thread(target=lambda: results.setdefault("first", node.dial(first_number, timeout=20)))
        first.start()
        invite = first_callee.request_received("INVITE", timeout=10)
        assert invite is not None
        answer = {"to_tag": new_token(), "body": sdp_offer("127.0.0.1", 40000, (0, 101)), "contact_user": first_number}
        real_sendto, answered = sip.out.sendto, threading.Event()

        def sendto(data: bytes, address: tuple[str, int]) -> int:
            if data.startswith(f"INVITE sip:{second_number}@".encode()) and not answered.is_set():
                first_callee.reply(invite, 200, "OK", **answer)  # the first callee answers now
                time.sleep(0.3)  # its 200 waits in the node's socket, which only the dialling thread may read
                answered.set()
            return real_sendto(data, address)
        monkeypatch.setattr(sip.out, "sendto", sendto)
        second = threading.Thread(target=lambda: results.setdefault("second", node.dial(second_number, timeout=20)))
        second.start()
        ack = first_callee.request_received("ACK", call_id=invite.call_id, timeout=10)
        second.join(20)
        first.join(20)
        assert answered.is_set() and ack is not None, results
        assert not second.is_alive() and results["second"].status == "answered"
        assert not first.is_alive() and results["first"].status == "answered"
        for result in results.values():
            result.session.hangup()
