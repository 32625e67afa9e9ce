"""RTP endpoint of one simulated call: a paced 20 ms sender (microphone + RFC 4733 DTMF) and a recorder.

pyVoIP's own RTP client turns audio into 8-bit samples, only sends μ-law and cannot send telephone-events,
so the softphone keeps pyVoIP for SIP only and moves media itself with the project's wire formats
(ivr.rtp, ivr.g711, ivr.dtmf). One thread per call: it sends exactly one packet per 20 ms tick (silence when
nothing is queued, like a real phone) and records what arrives, placed on the call's timeline by RTP
timestamp so gaps and late packets do not shift the recording.
"""

from __future__ import annotations

import random
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ivr import g711
from ivr.dtmf import TelephoneEvent, digit_to_event
from ivr.rtp import RtpPacket

from .audio import FRAME_BYTES, SAMPLE_RATE

FRAME_SECONDS = 0.02
LATE_AFTER = 0.06  # a packet later than this behind its schedule would miss a typical jitter buffer
SAMPLES_PER_FRAME = 160
SILENCE = bytes(FRAME_BYTES)

CODECS = {"PCMU": (0, g711.encode_pcmu, g711.decode_pcmu), "PCMA": (8, g711.encode_pcma, g711.decode_pcma)}
DECODERS = {0: g711.decode_pcmu, 8: g711.decode_pcma}


@dataclass(frozen=True)
class MediaStats:
    packets_sent: int
    packets_received: int
    packets_lost: int  # gaps in the peer's sequence numbers
    packets_late: int  # arrived > 60 ms behind the RTP schedule (vs. the best arrival of the preceding 2 s)
    late_ticks: int  # our own 20 ms send deadlines missed by more than one frame (loaded machine)


def _late_packets(offsets: list[float], window: int = 100) -> int:
    """Packets more than LATE_AFTER behind the earliest arrival (vs. RTP schedule) of the preceding ~2 s.

    A trailing window, not the whole call: a sender that bursts a backlog once would otherwise make every
    later packet look late.
    """
    if len(offsets) < 2:
        return 0
    values = np.asarray(offsets)
    padded = np.concatenate((np.full(window - 1, np.inf), values))
    trailing_min = sliding_window_view(padded, window).min(axis=1)
    return int(np.count_nonzero(values - trailing_min > LATE_AFTER))


@dataclass
class _Digit:
    digit: str
    frames: int  # 20 ms packets carrying the tone
    gap_frames: int  # silence after it
    start_ts: int | None = None  # RTP timestamp shared by all packets of this event
    sent: int = 0


class CallerMedia:
    """Sends the caller's audio and DTMF, records what the far end sends. pyVoIP calls start()/stop()."""

    def __init__(self, sock: socket.socket, remote: tuple[str, int], codec: str, dtmf_payload_type: int = 101) -> None:
        if codec not in CODECS:
            raise ValueError(f"unsupported codec {codec!r}: PCMU or PCMA")
        self.codec = codec
        self.remote = remote
        self._sock = sock
        self._payload_type, self._encode, _ = CODECS[codec]
        self._dtmf_payload_type = dtmf_payload_type
        self._ssrc = random.getrandbits(32)
        self._sequence = random.getrandbits(16)
        self._timestamp = random.getrandbits(32)
        self._lock = threading.Lock()
        self._outgoing = bytearray()  # queued microphone PCM
        self._digits: deque[_Digit] = deque()
        self._sent_pcm = bytearray()  # what the caller actually transmitted, on the same timeline as heard
        self._heard = bytearray()
        self._first_ts: int | None = None
        self._first_offset = 0  # samples between start() and the first received packet
        self._last_seq: int | None = None
        self._stats = {"sent": 0, "received": 0, "lost": 0, "late": 0}
        self._arrival_offsets: list[float] = []  # arrival time minus RTP timestamp time, per audio packet
        self.digit_times: list[tuple[str, float]] = []  # (digit, seconds after start() its first packet left)
        self._running = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        # Optional hook for measurements: every decoded audio frame with its arrival time (media thread).
        self.frame_listener: Callable[[bytes, float], None] | None = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None

    # -- control from the caller's script -------------------------------------------------------------

    def play(self, pcm: bytes) -> None:
        """Queue 16-bit 8 kHz PCM to be sent, after anything already queued."""
        with self._lock:
            self._outgoing.extend(pcm)

    def send_dtmf(self, digits: str, duration: float = 0.16, gap: float = 0.12) -> None:
        """Queue RFC 4733 telephone-events; while a digit is sent the microphone pauses (as on a phone)."""
        for digit in digits:
            digit_to_event(digit)  # ValueError for anything that is not 0-9 * # A-D
        with self._lock:
            for digit in digits:
                self._digits.append(_Digit(digit, max(1, round(duration / FRAME_SECONDS)),
                                           max(1, round(gap / FRAME_SECONDS))))

    def wait_idle(self, timeout: float) -> bool:
        """Until all queued audio and digits are sent (or the media stopped)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while (self._outgoing or self._digits) and self._running.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def heard(self) -> bytes:
        """Everything received so far, from start() on (silence where nothing arrived)."""
        with self._lock:
            return bytes(self._heard)

    def sent(self) -> bytes:
        with self._lock:
            return bytes(self._sent_pcm)

    @property
    def stats(self) -> MediaStats:
        with self._lock:
            s = self._stats
            return MediaStats(s["sent"], s["received"], s["lost"], _late_packets(self._arrival_offsets), s["late"])

    @property
    def running(self) -> bool:
        return self._running.is_set()

    # -- lifecycle (pyVoIP treats this object like one of its RTP clients) ----------------------------

    def start(self) -> None:
        self.started_at = time.monotonic()
        self._sock.setblocking(False)
        self._running.set()
        self._thread = threading.Thread(target=self._run, name=f"softphone-rtp-{self.remote[1]}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
        self._running.clear()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2)
        self._sock.close()
        with self._idle:
            self._idle.notify_all()

    # -- the 20 ms loop -------------------------------------------------------------------------------

    def _run(self) -> None:
        next_tick = time.monotonic()
        try:
            while self._running.is_set():
                now = time.monotonic()
                if now >= next_tick:
                    self._send_tick()
                    next_tick += FRAME_SECONDS
                    if now - next_tick > FRAME_SECONDS:
                        with self._lock:
                            self._stats["late"] += 1
                    continue
                readable, _, _ = select.select([self._sock], [], [], next_tick - now)
                if readable:
                    self._receive()
        except OSError:
            if self._running.is_set():
                raise

    def _send_tick(self) -> None:
        with self._lock:
            packet = self._next_dtmf_packet()
            if packet is None:
                frame = bytes(self._outgoing[:FRAME_BYTES]).ljust(FRAME_BYTES, b"\0")
                del self._outgoing[:FRAME_BYTES]
                self._sent_pcm.extend(frame)
                packet = RtpPacket(payload_type=self._payload_type, sequence_number=self._sequence,
                                   timestamp=self._timestamp, ssrc=self._ssrc, payload=self._encode(frame))
            else:
                self._sent_pcm.extend(SILENCE)
            self._sequence = (self._sequence + 1) & 0xFFFF
            self._timestamp = (self._timestamp + SAMPLES_PER_FRAME) & 0xFFFFFFFF
            self._stats["sent"] += 1
            if not self._outgoing and not self._digits:
                self._idle.notify_all()
        self._sock.sendto(bytes(packet), self.remote)

    def _next_dtmf_packet(self) -> RtpPacket | None:
        """The telephone-event packet for this tick, or None when no digit is being sent (lock held)."""
        if not self._digits:
            return None
        current = self._digits[0]
        if current.start_ts is None:
            current.start_ts = self._timestamp
            self.digit_times.append((current.digit, time.monotonic() - (self.started_at or 0.0)))
        sent = current.sent
        event_packets = current.frames + 2  # RFC 4733 §2.5.1.4: the final (end) packet goes out three times
        if sent >= event_packets:
            if sent >= event_packets + current.gap_frames - 1:
                self._digits.popleft()
            current.sent = sent + 1
            return None  # inter-digit gap: audio (normally silence) resumes
        end = sent >= current.frames - 1
        duration = SAMPLES_PER_FRAME * min(sent + 1, current.frames)
        event = TelephoneEvent(event=digit_to_event(current.digit), end=end, volume=10, duration=duration)
        current.sent = sent + 1
        return RtpPacket(payload_type=self._dtmf_payload_type, sequence_number=self._sequence,
                         timestamp=current.start_ts, ssrc=self._ssrc, payload=bytes(event),
                         marker=sent == 0)

    def _receive(self) -> None:
        while True:
            try:
                data = self._sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            try:
                packet = RtpPacket.parse(data)
            except ValueError:
                continue  # not RTP: ignore, as a phone would
            self._record(packet)

    def _record(self, packet: RtpPacket) -> None:
        decode = DECODERS.get(packet.payload_type)
        with self._lock:
            self._stats["received"] += 1
            if self._last_seq is not None:
                gap = (packet.sequence_number - self._last_seq) & 0xFFFF
                if 1 < gap < 1000:
                    self._stats["lost"] += gap - 1
            self._last_seq = packet.sequence_number
            if decode is None:
                return  # telephone-events and comfort noise are not audio
            now = time.monotonic()
            since_start = now - (self.started_at or now)
            samples = (packet.timestamp - self._first_ts) & 0xFFFFFFFF if self._first_ts is not None else 0
            if self._first_ts is None or abs(since_start - (self._first_offset + samples) / SAMPLE_RATE) > 1.0:
                # first packet, or the sender restarted its timestamps: anchor on the arrival time
                self._first_ts, samples = packet.timestamp, 0
                self._first_offset = int(since_start * SAMPLE_RATE)
            self._arrival_offsets.append(since_start - (self._first_offset + samples) / SAMPLE_RATE)
            position = 2 * (self._first_offset + samples)
            pcm = decode(packet.payload)
            if position > len(self._heard):
                self._heard.extend(bytes(position - len(self._heard)))
            self._heard[position:position + len(pcm)] = pcm
        if self.frame_listener is not None:
            self.frame_listener(pcm, now)
