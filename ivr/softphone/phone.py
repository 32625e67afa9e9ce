"""The simulated phone testers drive: register as a test extension, dial or answer, talk, press keys, hang up.

    with Softphone("127.0.0.1", 5060, "1001", "secret") as phone:
        call = phone.dial("12345", codec="PCMA")
        call.wait_answered(10)
        call.send_dtmf("1")
        call.say_file("question.wav")
        call.hangup()
        print(call.summary().to_json())

    with Softphone("127.0.0.1", 5060, "1002", "secret", answer=True, tone=1200) as seat:
        call = seat.wait_incoming(60)       # answered at once; a 1200 Hz tone is its microphone
        call.send_dtmf("1")
        call.wait_ended(30)
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType

from pyVoIP.VoIP import CallState, InvalidStateError  # before pyVoIP.SIP: pyVoIP's modules import in a cycle
from pyVoIP.SIP import SIPStatus  # isort: skip

from pcm import seconds, write_wav

from ..media import MediaEngine, MediaStream
from ..sip import IvrCall, IvrPhone, RegistrationError
from .audio import load_audio, synthesize, voiced_seconds
from .media import CODECS, CallerMedia, MediaStats, SineMicrophone

RTP_PORTS = (16384, 65534)
FLUSH_WAIT_SECONDS = 2.0  # an ended call's recording waits this long at most for its stream to be closed


class SoftphoneError(RuntimeError):
    """The simulated caller could not register or place the call; the message says why."""


@dataclass
class CallSummary:
    """What a tester asserts on (and what `python -m ivr.softphone call --json` prints)."""

    call_id: str
    number: str  # the number dialled, or the caller's number for an incoming call
    codec: str
    answered: bool
    sip_status: int | None  # final response to the INVITE (200, 486, 404, 487...), None if none came
    sip_reason: str
    connected_seconds: float
    digits_sent: str
    ended_by: str | None  # "caller" (this phone hung up, whichever way the call went) | "remote" | None
    recording: str | None
    packets_sent: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    packets_late: int = 0
    gap_frames: float = 0.0  # silence placed where the far end's timestamps jumped (its skipped or lost frames)
    direction: str = "outgoing"  # or "incoming" (the phone answered it)
    tone_hz: float | None = None  # the sine tone used as the microphone
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


class ActiveCall:
    """One call of the softphone, placed or answered. Blocking methods raise SoftphoneError when the call is
    over."""

    def __init__(self, phone: Softphone, number: str, call: IvrCall, codec: str, *, incoming: bool = False) -> None:
        self._phone = phone
        self.number = number
        self.incoming = incoming
        self._call = call
        self._codec = codec
        self._digits_sent = ""
        self._ended_by: str | None = None
        self._note = ""  # why there is no final status (CANCEL without 487)
        self.answered_at: float | None = None
        self.ended_at: float | None = None

    @property
    def call_id(self) -> str:
        return self._call.call_id

    @property
    def _caller_media(self) -> CallerMedia | None:
        return getattr(self._call, "caller_media", None)

    @property
    def answered(self) -> bool:
        return self._call.final_status == 200

    @property
    def ended(self) -> bool:
        """True once the call is over (hung up by either side, or never answered)."""
        if self._call.state == CallState.ENDED:
            if self.ended_at is None:
                self.ended_at = time.monotonic()
            return True
        return False

    @property
    def ended_by(self) -> str | None:
        """"caller" (we sent BYE), "remote" (the far end did), None (never answered / still up)."""
        if self._ended_by is None and self.answered and self.ended:
            self._ended_by = "remote"
        return self._ended_by

    def wait_answered(self, timeout: float = 15.0) -> bool:
        """True when answered; False when refused or nothing happened within `timeout` (then CANCELled)."""
        if not self._call.final_event.wait(timeout):
            self._phone.voip.cancel(self._call)
            if not self._call.final_event.wait(5):  # normally the 487 to our INVITE arrives
                self._note = f"no answer within {timeout:g} s, CANCEL sent"
                self._call.failed(0)
        if self.answered:
            media = self._caller_media
            self.answered_at = media.started_at if media and media.started_at else time.monotonic()
            if media is not None and self._call.media is not None:
                # tests/ivr/test_ivr_calls.py reads _call.media.remote; the public way is remote_rtp
                self._call.media.remote = media.remote  # type: ignore[attr-defined]
            return True
        return False

    def wait_ended(self, timeout: float) -> bool:
        """Until either side hung up; True when it ended within `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.ended and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.ended

    def _media(self) -> CallerMedia:
        media = self._caller_media
        if not self.answered or media is None:
            raise SoftphoneError(f"call {self.call_id} to {self.number} is not answered")
        return media

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
            media.wait_idle(seconds(pcm) + 10)

    def wait_sent(self, timeout: float = 600.0) -> bool:
        """Until every queued sound and digit is on the wire (True), or the call ended / timeout."""
        media = self._caller_media
        return media.wait_idle(timeout) if media else True

    def say_file(self, path: str | Path, *, wait: bool = True) -> None:
        """Send a sound file (any format pydub/ffmpeg reads) as the caller's voice."""
        self.play(load_audio(path), wait=wait)

    def say_text(self, text: str, *, voice: str = "en", wait: bool = True) -> None:
        """Speak `text` with espeak-ng into the call."""
        self.play(synthesize(text, voice), wait=wait)

    def start_tone(self, hz: float, amplitude: int = 6000) -> None:
        """A continuous sine tone as the microphone from now on (queued sound and digits go first)."""
        self._media().stream.microphone = SineMicrophone(hz, amplitude)

    def stop_tone(self) -> None:
        self._media().stream.microphone = None

    @property
    def tone_hz(self) -> float | None:
        media = self._caller_media
        microphone = media.stream.microphone if media else None
        return microphone.hz if isinstance(microphone, SineMicrophone) else None

    def heard(self, since: float = 0.0, *, keep_gaps: bool = True) -> bytes:
        """What the caller heard from `since` s after the answer on (8 kHz 16-bit PCM), on the call's timeline;
        without `keep_gaps` leaving out the silence placed for frames the far end skipped or lost (to compare
        what was said, not when)."""
        media = self._caller_media
        if media is None:
            return b""
        if self.ended:
            # The call is marked ended before its stream is closed on the media thread, which only then hands
            # over the last packets (up to the jitter buffer's depth, a prompt's final frames): wait for that.
            media.stream.finished.wait(FLUSH_WAIT_SECONDS)
        return media.heard(since, keep_gaps=keep_gaps)

    def sent(self) -> bytes:
        """Everything the caller transmitted since the answer, on the same timeline."""
        media = self._caller_media
        return media.sent() if media else b""

    def wait_for_audio(self, min_seconds: float = 0.5, timeout: float = 10.0, *, since: float = 0.0) -> bool:
        """Until the caller has heard `min_seconds` of sound (not silence) after `since` s of the call."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            heard = self.heard(since)
            if voiced_seconds(heard) >= min_seconds:
                return True
            if self.ended:
                return False
            time.sleep(0.05)
        return False

    @property
    def remote_rtp(self) -> tuple[str, int] | None:
        """The far end's RTP address from its SDP answer (None before the answer)."""
        media = self._caller_media
        return media.remote if media else None

    @property
    def media_stats(self) -> MediaStats | None:
        """Packet counters of the call's RTP (None before the answer)."""
        media = self._caller_media
        return media.stats if media else None

    @property
    def digit_times(self) -> list[tuple[str, float]]:
        """(digit, seconds after the answer when its first telephone-event packet left), in order."""
        media = self._caller_media
        return media.digit_times if media else []

    def on_audio(self, listener: Callable[[bytes, float], None] | None) -> None:
        """Call `listener(pcm_frame, arrival_monotonic)` for every frame heard from now on (media thread:
        keep it short). For measurements such as reaction times."""
        self._media().frame_listener = listener

    @property
    def digit_sent_at(self) -> list[tuple[str, float]]:
        """(digit, time.monotonic() when its first telephone-event packet left)."""
        media = self._caller_media
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
                self._ended_by = self._ended_by or "caller"
                self._call.hangup()
                self.ended_at = time.monotonic()
        except InvalidStateError:
            pass

    def save_recording(self, path: str | Path) -> Path:
        return write_wav(path, self.heard())

    def summary(self, recording: str | Path | None = None) -> CallSummary:
        stats = self.media_stats
        status = self._call.final_status or None
        return CallSummary(
            call_id=self.call_id,
            number=self.number,
            codec=self._call.codec or self._codec,
            answered=self.answered,
            sip_status=status,
            sip_reason=SIPStatus(status).phrase if status else self._note,
            connected_seconds=self.seconds_connected(),
            digits_sent=self._digits_sent,
            ended_by=self.ended_by,
            recording=str(recording) if recording else None,
            packets_sent=stats.packets_sent if stats else 0,
            packets_received=stats.packets_received if stats else 0,
            packets_lost=stats.packets_lost if stats else 0,
            packets_late=stats.packets_late if stats else 0,
            gap_frames=stats.gap_frames if stats else 0.0,
            direction="incoming" if self.incoming else "outgoing",
            tone_hz=self.tone_hz,
        )


class Softphone:
    """A registered test extension that places calls through the SIP server and, with `answer`, answers the
    calls that come in (otherwise they are refused with 486 Busy Here); `wait_incoming` hands them out.

    SIP is the IVR node's own pyVoIP phone (ivr.sip.IvrPhone: strict registration, dialling, CANCEL, ACK of
    failures, immediate answer); media is CallerMedia on one ivr.media.MediaEngine. `tone` (Hz) makes a sine
    tone the microphone of every call from its first packet.
    """

    def __init__(self, server_host: str, server_port: int, extension: str, password: str, *,
                 local_ip: str = "127.0.0.1", register_timeout: float = 5.0, answer: bool = False,
                 tone: float | None = None) -> None:
        self.server = (server_host, server_port)
        self.extension = extension
        self.answer = answer
        self.tone = tone
        if tone is not None:
            SineMicrophone(tone)  # ValueError now for a tone outside the band, not at the first call
        self._incoming: queue.Queue[ActiveCall] = queue.Queue()
        self._engine = MediaEngine("softphone-media")
        self.voip = IvrPhone(server_host, server_port, extension, password, my_ip=local_ip, sip_port=0,
                             rtp_ports=RTP_PORTS, codecs=tuple(CODECS), engine=self._engine,
                             media_factory=self._make_media, admit=lambda: self.answer,
                             on_incoming=self._answered, on_refused=lambda call: None,
                             register_timeout=register_timeout, expires=300)
        self._started = False
        self._stopped = False

    def _make_media(self, call: IvrCall, codec: str, dtmf_payload_type: int | None, sock,
                    remote: tuple[str, int]) -> MediaStream:
        """media_factory of IvrPhone: called with the far end's SDP, just before the stream starts."""
        media = CallerMedia(self._engine, sock, remote, codec, dtmf_payload_type)
        media.started_at = media.stream.started_at = time.monotonic()
        if self.tone is not None:
            media.stream.microphone = SineMicrophone(self.tone)
        call.caller_media = media  # type: ignore[attr-defined]
        return media.stream

    def _answered(self, call: IvrCall) -> None:
        """on_incoming of IvrPhone (SIP thread): the call was answered with 200 OK just now."""
        call.final_status = 200
        call.final_event.set()
        caller = call.request.headers["From"]["number"]
        active = ActiveCall(self, caller, call, call.codec or "PCMU", incoming=True)
        active.answered_at = time.monotonic()
        self._incoming.put(active)

    def wait_incoming(self, timeout: float) -> ActiveCall | None:
        """The next call that came in (already answered), or None when none came within `timeout` s."""
        if not self.answer:
            raise SoftphoneError("this softphone refuses incoming calls: create it with answer=True")
        try:
            return self._incoming.get(timeout=timeout)
        except queue.Empty:
            return None

    def start(self) -> None:
        """Register; SoftphoneError naming the cause when the server refuses or does not answer."""
        self._engine.start()
        try:
            self.voip.start()
        except (RegistrationError, OSError) as exc:
            self._stop_media()
            raise SoftphoneError(f"extension {self.extension} could not register at "
                                 f"{self.server[0]}:{self.server[1]}: {exc}") from exc
        self._started = True

    def stop(self) -> None:
        """Hang up what is still up, de-register, close sockets."""
        if self._started:
            self._started = False
            try:
                self.voip.stop()
            except Exception:  # pyVoIP raises if the socket is already gone; stopping must not fail
                pass
        self._stop_media()

    def _stop_media(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._engine.stop()

    def dial(self, number: str, codec: str = "PCMU") -> ActiveCall:
        """Place a call; use ActiveCall.wait_answered() to know the outcome."""
        codec = codec.upper()
        if codec not in CODECS:
            raise ValueError(f"unsupported codec {codec!r}: PCMU or PCMA")
        if not self._started:
            raise SoftphoneError("the softphone is not registered: call start() first")
        return ActiveCall(self, number, self.voip.dial(number, codec), codec)

    def __enter__(self) -> Softphone:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
