"""Interop: baresip (a SIP client nobody here wrote) calls through the real Kamailio.

baresip runs headless from a generated config in tmp_path: its microphone is a WAV file (aufile), its
speaker a dead-end bridge (aubridge), and the sndfile filter dumps what it hears to a WAV we analyse.
It is driven over ctrl_tcp (netstring JSON): dial, sndcode (RFC 2833 digit), hangup.
"""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import threading
import time
import wave
from pathlib import Path

import pytest

from ivr.local_sip_server import free_udp_port
from ivr.softphone.audio import synthesize
from pcm import write_wav

pytestmark = pytest.mark.sip

BARESIP = "/usr/bin/baresip"


class Baresip:
    """One headless baresip registered as `extension`; events arrive on a queue."""

    def __init__(self, workdir: Path, sip_server, extension: str, microphone: bytes, codec: str = "PCMU") -> None:
        self.workdir = workdir
        self.sip_server = sip_server
        self.ctrl_port = free_udp_port()  # TCP and UDP share the range; free enough on loopback
        self.dumps = workdir / "heard"
        self.dumps.mkdir(parents=True, exist_ok=True)
        # aufile ends the call at end of file: pad the microphone with a minute of silence
        write_wav(workdir / "microphone.wav", microphone + bytes(60 * 16000))
        (workdir / "config").write_text(
            "poll_method epoll\n"
            f"sip_listen 127.0.0.1:{free_udp_port()}\n"
            f"audio_source aufile,{workdir / 'microphone.wav'}\n"
            "audio_player aubridge,nowhere\n"
            "audio_alert aubridge,nowhere\n"
            "module_path /usr/lib/baresip/modules\n"
            "module g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule sndfile.so\n"
            "module_tmp account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\n"
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}\n"
            f"snd_path {self.dumps}\n"
            "rtp_ports 20000-39999\n")
        (workdir / "accounts").write_text(
            f"<sip:{extension}@{sip_server.host}:{sip_server.port}>;auth_pass={sip_server.password(extension)};"
            f"regint=300;audio_codecs={codec}\n")
        self.events: queue.Queue[dict] = queue.Queue()
        self.responses: queue.Queue[dict] = queue.Queue()
        self.process: subprocess.Popen | None = None
        self.sock: socket.socket | None = None

    def start(self) -> None:
        self.log = open(self.workdir / "baresip.log", "wb")
        self.process = subprocess.Popen([BARESIP, "-n", "127.0.0.1", "-f", str(self.workdir)],
                                        stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"baresip did not open ctrl_tcp:\n{self.log_text()}")
                time.sleep(0.1)
        self.sock.settimeout(None)
        threading.Thread(target=self._read, daemon=True).start()
        while "OK" not in self.command("reginfo").get("data", ""):  # REGISTER_OK may precede our connection
            if time.monotonic() > deadline:
                raise RuntimeError(f"baresip did not register:\n{self.log_text()}")
            time.sleep(0.2)

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b":" in buffer:
                length, _, rest = buffer.partition(b":")
                if len(rest) < int(length) + 1:
                    break
                message = json.loads(rest[: int(length)])
                buffer = rest[int(length) + 1:]
                (self.events if message.get("event") else self.responses).put(message)

    def command(self, command: str, params: str = "") -> dict:
        data = json.dumps({"command": command, "params": params, "token": command}).encode()
        self.sock.sendall(str(len(data)).encode() + b":" + data + b",")
        return self.responses.get(timeout=10)

    def wait_event(self, kind: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(event.get("type"))
            if event.get("type") == kind:
                return event
        raise AssertionError(f"baresip: no {kind} within {timeout} s (saw {seen})\n{self.log_text()[-3000:]}")

    def heard(self) -> bytes:
        """What baresip decoded from the far end (sndfile's *-dec.wav), 8 kHz 16-bit mono."""
        files = sorted(self.dumps.glob("*-dec.wav"))
        assert files, f"baresip wrote no dump in {self.dumps}"
        with wave.open(str(files[-1])) as wav:
            assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
            return wav.readframes(wav.getnframes())

    def log_text(self) -> str:
        return (self.workdir / "baresip.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            try:
                self.command("quit")
                self.process.wait(5)
            except Exception:
                self.process.terminate()
                self.process.wait(5)
        if self.sock:
            self.sock.close()
        self.log.close()


@pytest.fixture
def baresip(tmp_path, sip_server):
    phones: list[Baresip] = []

    def make(extension: str, microphone: bytes, codec: str = "PCMU") -> Baresip:
        phone = Baresip(tmp_path / f"baresip-{extension}", sip_server, extension, microphone, codec)
        phones.append(phone)
        phone.start()
        return phone

    yield make
    for phone in phones:
        phone.stop()


def test_baresip_call_through_kamailio_reaches_pyvoip_with_digits_and_audio(sip_server, baresip, pyvoip_callee):
    """The proxy path alone (no IVR): baresip's INVITE, RFC 2833 digits and RTP reach a pyVoIP phone."""
    import struct

    from ivr.softphone.audio import similarity
    from tests.conftest import PYVOIP_CALLEE_TONE

    far = pyvoip_callee("1016")
    phone = baresip("1015", synthesize("hello from baresip"))
    phone.command("dial", f"sip:1016@{sip_server.host}:{sip_server.port}")
    phone.wait_event("CALL_ESTABLISHED", 15)
    time.sleep(2.5)  # the callee's 2 s tone
    for digit in "42":
        phone.command("sndcode", digit)
        time.sleep(0.4)
    phone.command("hangup")
    phone.wait_event("CALL_CLOSED", 10)
    assert far.ended.wait(5)
    assert far.digits == "42"
    tone = b"".join(struct.pack("<h", (v - 128) * 256) for v in PYVOIP_CALLEE_TONE)
    assert similarity(phone.heard(), tone[:8000]).similarity > 0.9


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_baresip_calls_the_ivr_hears_the_prompt_and_its_digits_arrive(sip_server, baresip, ivr, greeting, codec):
    from ivr.softphone.audio import similarity

    speech = synthesize("I would like to report a broken street light.")
    phone = baresip("1014", speech, codec)
    phone.command("dial", f"sip:12345@{sip_server.host}:{sip_server.port}")
    phone.wait_event("CALL_ESTABLISHED", 15)
    assert ivr.new_call.wait(5)
    seen = ivr.calls[-1]
    assert seen.greeting_done.wait(30)
    for digit in "31#":
        phone.command("sndcode", digit)
        time.sleep(0.4)
    deadline = time.monotonic() + 10
    while not seen.digits and time.monotonic() < deadline:
        time.sleep(0.05)
    phone.command("hangup")
    phone.wait_event("CALL_CLOSED", 10)
    assert seen.ended.wait(5)

    assert seen.error is None, seen.error
    assert (seen.codec, seen.digits) == (codec, "31")
    assert similarity(phone.heard(), greeting).similarity > 0.8
    assert similarity(bytes(seen.heard), speech).similarity > 0.8  # baresip's microphone reached the IVR
