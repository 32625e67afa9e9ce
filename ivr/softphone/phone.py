"""The simulated caller testers drive: register as a test extension, dial, talk, press keys, hang up.

    with Softphone("127.0.0.1", 5060, "1001", "secret") as phone:
        call = phone.dial("12345", codec="PCMA")
        call.wait_answered(10)
        call.send_dtmf("1")
        call.say_file("question.wav")
        call.hangup()
        print(call.summary().to_json())
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType

from pyVoIP.VoIP import CallState, InvalidStateError, PhoneStatus

from .audio import load_audio, synthesize, voiced_seconds, write_wav
from ..local_sip_server import free_udp_port
from .media import CODECS, SAMPLE_RATE, MediaStats
from .signalling import SoftphoneCall, SoftphonePhone


class SoftphoneError(RuntimeError):
    """The simulated caller could not register or place the call; the message says why."""


@dataclass
class CallSummary:
    """What a tester asserts on (and what `python -m ivr.softphone call --json` prints)."""

    call_id: str
    number: str
    codec: str
    answered: bool
    sip_status: int | None  # final response to the INVITE (200, 486, 404, 487...), None if none came
    sip_reason: str
    connected_seconds: float
    digits_sent: str
    ended_by: str | None  # "caller" | "remote" | None (never answered)
    recording: str | None
    packets_sent: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    packets_late: int = 0
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


class ActiveCall:
    """One outgoing call of the softphone. Blocking methods raise SoftphoneError when the call is over."""

    def __init__(self, phone: Softphone, number: str, call: SoftphoneCall) -> None:
        self._phone = phone
        self.number = number
        self._call = call
        self._digits_sent = ""
        self.answered_at: float | None = None
        self.ended_at: float | None = None

    @property
    def call_id(self) -> str:
        return self._call.call_id

    @property
    def answered(self) -> bool:
        return self._call.answered_event.is_set()

    @property
    def ended(self) -> bool:
        """True once the call is over (hung up by either side, or never answered)."""
        if self._call.state == CallState.ENDED:
            if self.ended_at is None:
                self.ended_at = time.monotonic()
            return True
        return False

    def wait_answered(self, timeout: float = 15.0) -> bool:
        """True when answered; False when refused or nothing happened within `timeout` (then CANCELled)."""
        self._call.finished_event.wait(timeout)
        if self.answered:
            self.answered_at = self._call.media.started_at if self._call.media else time.monotonic()
            return True
        if self._call.state == CallState.DIALING:
            self._phone.voip.cancel(self._call)
            if not self._call.finished_event.wait(5):  # normally the 487 to our INVITE arrives
                self._call.failed(0, f"no answer within {timeout:g} s, CANCEL sent")
                self._call.final_status = None
        return False

    def wait_ended(self, timeout: float) -> bool:
        """Until either side hung up; True when it ended within `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.ended and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.ended

    def _media(self):
        if not self.answered or self._call.media is None:
            raise SoftphoneError(f"call {self.call_id} to {self.number} is not answered")
        return self._call.media

    def send_dtmf(self, digits: str, *, duration: float = 0.16, gap: float = 0.12, wait: bool = True) -> None:
        """Send RFC 4733 telephone-events for `digits` (0-9 * # A-D); wait until they are on the wire."""
        media = self._media()
        media.send_dtmf(digits, duration, gap)
        self._digits_sent += digits
        if wait:
            media.wait_idle(len(digits) * (duration + gap + 0.1) + 5)

    def play(self, pcm: bytes, *, wait: bool = True) -> None:
        """Send 8 kHz 16-bit PCM as the caller's voice."""
        media = self._media()
        media.play(pcm)
        if wait:
            media.wait_idle(len(pcm) / (2 * SAMPLE_RATE) + 10)

    def wait_sent(self, timeout: float = 600.0) -> bool:
        """Until every queued sound and digit is on the wire (True), or the call ended / timeout."""
        return self._call.media.wait_idle(timeout) if self._call.media else True

    def say_file(self, path: str | Path, *, wait: bool = True) -> None:
        """Send a sound file (any format pydub/ffmpeg reads) as the caller's voice."""
        self.play(load_audio(path), wait=wait)

    def say_text(self, text: str, *, voice: str = "en", wait: bool = True) -> None:
        """Speak `text` with espeak-ng into the call."""
        self.play(synthesize(text, voice), wait=wait)

    def heard(self) -> bytes:
        """Everything the caller heard since the answer (8 kHz 16-bit PCM)."""
        return self._call.media.heard() if self._call.media else b""

    def sent(self) -> bytes:
        """Everything the caller transmitted since the answer, on the same timeline."""
        return self._call.media.sent() if self._call.media else b""

    def wait_for_audio(self, min_seconds: float = 0.5, timeout: float = 10.0, *, since: float = 0.0) -> bool:
        """Until the caller has heard `min_seconds` of sound (not silence) after `since` s of the call."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            heard = self.heard()[int(since * SAMPLE_RATE) * 2:]
            if voiced_seconds(heard) >= min_seconds:
                return True
            if self.ended:
                return False
            time.sleep(0.05)
        return False

    @property
    def remote_rtp(self) -> tuple[str, int] | None:
        """The far end's RTP address from its SDP answer (None before the answer)."""
        return self._call.media.remote if self._call.media else None

    @property
    def media_stats(self) -> MediaStats | None:
        """Packet counters of the call's RTP (None before the answer)."""
        return self._call.media.stats if self._call.media else None

    @property
    def digit_times(self) -> list[tuple[str, float]]:
        """(digit, seconds after the answer when its first telephone-event packet left), in order."""
        return list(self._call.media.digit_times) if self._call.media else []

    def on_audio(self, listener: Callable[[bytes, float], None] | None) -> None:
        """Call `listener(pcm_frame, arrival_monotonic)` for every frame heard from now on (media thread:
        keep it short). For measurements such as reaction times."""
        self._media().frame_listener = listener

    @property
    def digit_sent_at(self) -> list[tuple[str, float]]:
        """(digit, time.monotonic() when its first telephone-event packet left)."""
        media = self._call.media
        return [(d, media.started_at + t) for d, t in media.digit_times] if media and media.started_at else []

    def seconds_connected(self) -> float:
        if self.answered_at is None:
            return 0.0
        end = self.ended_at if self.ended else time.monotonic()
        return round(max(0.0, (end or time.monotonic()) - self.answered_at), 3)

    def hangup(self) -> None:
        """Send BYE (no-op when the call is already over)."""
        try:
            if self._call.state == CallState.ANSWERED:
                self._call.hangup()
                self.ended_at = time.monotonic()
        except InvalidStateError:
            pass

    def save_recording(self, path: str | Path) -> Path:
        return write_wav(path, self.heard())

    def summary(self, recording: str | Path | None = None) -> CallSummary:
        stats = self.media_stats
        status = self._call.final_status
        return CallSummary(
            call_id=self.call_id,
            number=self.number,
            codec=self._call.codec,
            answered=self.answered,
            sip_status=status,
            sip_reason=self._call.final_reason,
            connected_seconds=self.seconds_connected(),
            digits_sent=self._digits_sent,
            ended_by=self._call.ended_by,
            recording=str(recording) if recording else None,
            packets_sent=stats.packets_sent if stats else 0,
            packets_received=stats.packets_received if stats else 0,
            packets_lost=stats.packets_lost if stats else 0,
            packets_late=stats.packets_late if stats else 0,
        )


class Softphone:
    """A registered test extension that places calls through the SIP server (pyVoIP for SIP)."""

    def __init__(self, server_host: str, server_port: int, extension: str, password: str, *,
                 local_ip: str = "127.0.0.1", register_timeout: float = 10.0) -> None:
        self.server = (server_host, server_port)
        self.extension = extension
        self.register_timeout = register_timeout
        self.voip = SoftphonePhone(server_host, server_port, extension, password, myIP=local_ip,
                                   sipPort=free_udp_port(local_ip))
        self.voip.sip.register_timeout = max(1, int(register_timeout / 3))
        self._media_stopped = False

    def start(self) -> None:
        """Register; SoftphoneError naming the cause when the server refuses or does not answer."""
        self.voip.engine.start()
        try:
            self.voip.start()
        except Exception as exc:  # pyVoIP raises bare socket/Timeout errors here
            raise SoftphoneError(f"extension {self.extension} could not register at "
                                 f"{self.server[0]}:{self.server[1]}: {exc}") from exc
        deadline = time.monotonic() + self.register_timeout
        while time.monotonic() < deadline:
            status = self.voip.get_status()
            if status == PhoneStatus.REGISTERED:
                return
            if status in (PhoneStatus.FAILED, PhoneStatus.INACTIVE):
                break
            time.sleep(0.05)
        code = self.voip.last_register_status
        self.stop()
        reason = {403: "wrong password or unknown extension (403)", None: "no answer from the server"}.get(
            code, f"SIP status {code}")
        raise SoftphoneError(f"extension {self.extension} could not register at "
                             f"{self.server[0]}:{self.server[1]}: {reason}")

    def stop(self) -> None:
        """Hang up what is still up, de-register, close sockets."""
        try:
            self.voip.stop()
        except Exception:  # pyVoIP raises if the socket is already gone; stopping must not fail
            pass
        if not self._media_stopped:
            self._media_stopped = True
            self.voip.engine.stop()

    def dial(self, number: str, codec: str = "PCMU") -> ActiveCall:
        """Place a call; use ActiveCall.wait_answered() to know the outcome."""
        codec = codec.upper()
        if codec not in CODECS:
            raise ValueError(f"unsupported codec {codec!r}: PCMU or PCMA")
        if self.voip.get_status() != PhoneStatus.REGISTERED:
            raise SoftphoneError("the softphone is not registered: call start() first")
        return ActiveCall(self, number, self.voip.dial(number, codec))

    def __enter__(self) -> Softphone:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
