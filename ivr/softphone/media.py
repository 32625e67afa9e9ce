"""RTP of the simulated caller: the IVR's own media stream (ivr.media) plus what only a caller does.

pyVoIP's RTP client hands out 8-bit audio, sends only μ-law and cannot send telephone-events, so pyVoIP
carries SIP only. The media is the project's: ivr.media.MediaStream on one ivr.media.MediaEngine thread per
softphone (20 ms clock, jitter buffer, G.711 at 16 bits), extended here with the caller's side of things:
RFC 4733 digits sent in place of audio frames, a recording of everything heard (on the call's timeline:
silence where the far end skipped or lost frames, see ivr.playout) and of everything sent. The recording can
also be read without that placed silence (`heard(keep_gaps=False)`): what the far end sent, in order, for
tests that check WHAT was said, which a stall of the far end's clock must not fail.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pcm import FRAME_BYTES, FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE, SAMPLE_WIDTH, SILENCE_FRAME

from ..dtmf import TelephoneEvent, digit_to_event
from ..media import CODECS, MediaEngine, MediaStream
from ..rtp import RtpPacket

END_PACKETS = 3  # RFC 4733 §2.5.1.4: the final (end) packet of an event goes out three times


@dataclass(frozen=True)
class MediaStats:
    packets_sent: int
    packets_received: int
    packets_lost: int  # never arrived by the time the jitter buffer moved past them
    packets_late: int  # arrived after their place had been played out (or duplicates)
    late_ticks: int  # the softphone's 20 ms send clock ran more than a frame behind (loaded machine)
    frames_skipped: int = 0  # frames this call never sent: the softphone's own engine stalled (loaded machine)
    gap_frames: float = 0.0  # silence placed in the recording where the far end's timestamps jumped (frames it
    # skipped after a stall, or lost): on the call's timeline, not closed up


@dataclass
class _Digit:
    digit: str
    frames: int  # 20 ms packets carrying the tone
    gap_frames: int  # audio (normally silence) after it before the next digit
    start_ts: int | None = None  # RTP timestamp shared by all packets of this event
    sent: int = 0


class SineMicrophone:
    """A continuous sine tone as the phone's microphone (`--tone HZ`): phase-continuous 20 ms frames, so a
    frequency analysis of what the far end heard finds exactly this tone."""

    def __init__(self, hz: float, amplitude: int = 6000) -> None:
        if not 0 < hz < SAMPLE_RATE / 2:
            raise ValueError(f"tone: {hz:g} Hz is outside the telephone band (0-{SAMPLE_RATE // 2} Hz)")
        self.hz = hz
        self.amplitude = amplitude
        self._sample = 0

    def __call__(self) -> bytes:
        t = (self._sample + np.arange(FRAME_SAMPLES)) / SAMPLE_RATE
        self._sample = (self._sample + FRAME_SAMPLES) % SAMPLE_RATE  # whole seconds keep the phase exact
        return (self.amplitude * np.sin(2 * np.pi * self.hz * t)).astype("<i2").tobytes()


@dataclass(eq=False)
class CallerStream(MediaStream):
    """A MediaStream that also sends queued digits and keeps what was heard and sent. `microphone()` gives
    the frame sent when nothing is queued (None: silence)."""

    started_at: float = 0.0
    frame_listener: Callable[[bytes, float], None] | None = None
    digit_times: list[tuple[str, float]] = field(default_factory=list)
    microphone: Callable[[], bytes] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._digits: deque[_Digit] = deque()
        self._heard = bytearray()
        self._lead = 0  # bytes of silence before the first frame heard (the wait for the far end's audio)
        self._gaps: list[tuple[int, int]] = []  # (samples placed before it, samples) of each placed gap
        self._timeline.on_gap = self._note_gap
        self._sent = bytearray()
        self._record_lock = threading.Lock()
        self.finished = threading.Event()  # close() handed out the last packets: the recording is complete
        self.idle = threading.Condition()

    # -- any thread

    def queue_digits(self, digits: str, duration: float, gap: float) -> None:
        for digit in digits:
            digit_to_event(digit)  # ValueError for anything that is not 0-9 * # A-D
        frames, gap_frames = max(1, round(duration / FRAME_SECONDS)), max(1, round(gap / FRAME_SECONDS))
        with self._outgoing_lock:
            self._digits.extend(_Digit(digit, frames, gap_frames) for digit in digits)

    @property
    def busy(self) -> bool:
        """Queued audio or digits still to send (the microphone's own frames do not count)."""
        return bool(self._outgoing or self._digits)

    def heard(self, since: float = 0.0, *, keep_gaps: bool = True) -> bytes:
        """The recording from `since` seconds on; without `keep_gaps`, the silence placed where the far end's
        timestamps jumped is left out."""
        with self._record_lock:
            heard = bytes(self._heard)
            gaps = [] if keep_gaps else [(self._lead + SAMPLE_WIDTH * before, SAMPLE_WIDTH * samples)
                                         for before, samples in self._gaps]
        pieces, position = [], int(since * SAMPLE_RATE) * SAMPLE_WIDTH
        for offset, length in gaps:
            if offset + length > position:
                pieces.append(heard[position:max(position, offset)])
                position = offset + length
        pieces.append(heard[position:])
        return b"".join(pieces)

    def sent(self) -> bytes:
        with self._record_lock:
            return bytes(self._sent)

    # -- media thread

    def send_tick(self) -> None:
        with self._outgoing_lock:
            packet = self._next_dtmf_packet()
            if packet is None and not self._outgoing and self.microphone is not None:
                self._outgoing.append(self.microphone())  # sent below like queued audio
            frame = None if packet is not None else (self._outgoing[0] if self._outgoing else SILENCE_FRAME)
        with self._record_lock:
            self._sent.extend(frame if frame is not None else SILENCE_FRAME)
        if packet is None:
            super().send_tick()  # the queued frame (or silence), G.711, sequence and timestamp
        else:
            self._sequence = (self._sequence + 1) & 0xFFFF
            self._timestamp = (self._timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
            try:
                self.sock.sendto(bytes(packet), self.remote)
                self.stats.frames_sent += 1
            except OSError:
                pass  # the far end left; the call is being torn down
        if not self.busy:
            with self.idle:
                self.idle.notify_all()

    def _next_dtmf_packet(self) -> RtpPacket | None:
        """This tick's telephone-event packet, or None when no digit is being sent (outgoing lock held)."""
        if not self._digits:
            return None
        current = self._digits[0]
        if current.start_ts is None:
            current.start_ts = self._timestamp
            self.digit_times.append((current.digit, time.monotonic() - self.started_at))
        sent = current.sent
        current.sent += 1
        event_packets = current.frames + END_PACKETS - 1
        if sent >= event_packets:
            if sent >= event_packets + current.gap_frames - 1:
                self._digits.popleft()
            return None
        event = TelephoneEvent(event=digit_to_event(current.digit), end=sent >= current.frames - 1, volume=10,
                               duration=FRAME_SAMPLES * min(sent + 1, current.frames))
        return RtpPacket(payload_type=self.dtmf_payload_type or 101, sequence_number=self._sequence,
                         timestamp=current.start_ts, ssrc=self._ssrc, payload=bytes(event), marker=sent == 0)

    def close(self) -> None:
        """As MediaStream.close (on the media thread: the packets still in the jitter buffer or the socket go
        into the recording), then say the recording is whole."""
        try:
            super().close()
        finally:
            self.finished.set()

    def _note_gap(self, before: int, samples: int) -> None:
        """The timeline placed silence (media thread)."""
        with self._record_lock:
            self._gaps.append((before, samples))

    def record_heard(self, frame: bytes) -> None:
        """on_frame: the far end's audio, placed after the silence before its first packet."""
        now = time.monotonic()
        with self._record_lock:
            if not self._heard:
                lead = int((now - self.started_at) * SAMPLE_RATE) * SAMPLE_WIDTH
                self._lead = lead - lead % FRAME_BYTES
                self._heard.extend(bytes(self._lead))
            self._heard.extend(frame)
        if self.frame_listener is not None:
            self.frame_listener(frame, now)


class CallerMedia:
    """The caller's controls over one call's CallerStream (start/stop only when used without IvrPhone,
    whose CallMedia adds and removes the stream itself)."""

    def __init__(self, engine: MediaEngine, sock, remote: tuple[str, int], codec: str,
                 dtmf_payload_type: int | None = 101) -> None:
        if codec not in CODECS:
            raise ValueError(f"unsupported codec {codec!r}: PCMU or PCMA")
        self.codec = codec
        self._engine = engine
        self.stream = CallerStream(sock=sock, remote=remote, codec=codec, dtmf_payload_type=dtmf_payload_type,
                                   on_frame=lambda frame: None, on_digit=lambda digit: None)
        self.stream.on_frame = self.stream.record_heard
        self.inPort = self.stream.local_port  # pyVoIP reads these from its RTP clients
        self.started_at: float | None = None
        self.stopped_at: float | None = None

    def start(self) -> None:
        if self.started_at is None:
            self.started_at = self.stream.started_at = time.monotonic()
            self._engine.add(self.stream)

    def stop(self) -> None:
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
            self._engine.remove(self.stream)
        with self.stream.idle:
            self.stream.idle.notify_all()

    @property
    def remote(self) -> tuple[str, int]:
        """The far end's RTP address (from its SDP answer)."""
        return self.stream.remote

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.stopped_at is None and not self.stream.closed

    def play(self, pcm: bytes) -> None:
        """Queue 16-bit 8 kHz PCM after anything already queued."""
        self.stream.queue_pcm(pcm)

    def send_dtmf(self, digits: str, duration: float = 0.16, gap: float = 0.12) -> None:
        """Queue RFC 4733 events; while a digit is sent the microphone pauses, as on a phone."""
        self.stream.queue_digits(digits, duration, gap)

    def wait_idle(self, timeout: float) -> bool:
        """Until queued audio and digits are sent (True), or the call stopped / timeout (False)."""
        deadline = time.monotonic() + timeout
        with self.stream.idle:
            while self.stream.busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.running:
                    return False
                self.stream.idle.wait(min(remaining, 0.5))
        return True

    def heard(self, since: float = 0.0, *, keep_gaps: bool = True) -> bytes:
        return self.stream.heard(since, keep_gaps=keep_gaps)

    def sent(self) -> bytes:
        return self.stream.sent()

    @property
    def digit_times(self) -> list[tuple[str, float]]:
        return list(self.stream.digit_times)

    @property
    def frame_listener(self) -> Callable[[bytes, float], None] | None:
        return self.stream.frame_listener

    @frame_listener.setter
    def frame_listener(self, listener: Callable[[bytes, float], None] | None) -> None:
        self.stream.frame_listener = listener

    @property
    def stats(self) -> MediaStats:
        s = self.stream.stats
        return MediaStats(s.frames_sent, s.packets_received, s.packets_lost, s.packets_late, self._engine.ticks_late,
                          s.frames_skipped, s.gap_samples / FRAME_SAMPLES)
