"""Received audio placed on the call's timeline by its RTP timestamp (RFC 3550 §5.1).

A sender's sequence number counts the packets it sent; its timestamp counts its clock's samples whether or
not a packet carried them. So when a sender skips frames (ivr.media's engine does after a stall, a phone
with silence suppression does in every pause) the timestamp jumps and the sequence number goes on. Played in
sequence order, such a gap vanishes and all later audio moves earlier: a recording is shorter than the call,
and what a recogniser or a test hears no longer lines up with when it was said. Here each packet's audio
goes where its timestamp says: a gap (skipped or lost frames) becomes silence of its length, audio that
overlaps what was already placed is trimmed, and the 32-bit timestamp is unwrapped.

Order, duplicates and loss by sequence number stay the jitter buffer's job (ivr.media.JitterBuffer): packets
come here in order. A timestamp is only the sender's word, so silence is bounded by the wall clock: the
timeline never gets more than `lead_seconds` ahead of the time since its first packet, so a jump of hours
(a hostile or broken sender) costs at most what a call of that length costs anyway; a timestamp far behind
(a restarted clock) starts afresh from that packet. Both are counted in `jumps`.
"""
from __future__ import annotations

from collections.abc import Callable

from pcm import SAMPLE_RATE, SAMPLE_WIDTH

TIMESTAMP_MODULO = 1 << 32
MAX_OVERLAP_SAMPLES = SAMPLE_RATE  # a timestamp more than 1 s behind the timeline is a restarted clock
LEAD_SECONDS = 1.0  # how far the timeline may run ahead of the wall clock since its first packet


class Timeline:
    """One source's audio in timestamp order, as the PCM to append for each packet (not thread-safe: the
    media thread owns it)."""

    def __init__(self, lead_seconds: float = LEAD_SECONDS,
                 on_gap: Callable[[int, int], None] | None = None) -> None:
        self._lead = int(lead_seconds * SAMPLE_RATE)
        self.on_gap = on_gap  # (samples placed before it, its samples) for each gap, e.g. to leave gaps out later
        self._position: int | None = None  # timestamp of the next sample to place (unwrapped: compared mod 2**32)
        self._started: float | None = None  # monotonic time of the first packet placed (any source)
        self.samples = 0  # samples placed so far (audio and silence)
        self.gap_samples = 0  # silence placed for timestamp gaps
        self.jumps = 0  # timestamps beyond the wall clock or far behind: placed without their gap

    def new_source(self) -> None:
        """Another SSRC took over: its timestamps are unrelated, so its first packet follows on directly
        (the wall-clock bound carries over)."""
        self._position = None

    def place(self, timestamp: int, now: float, pcm: bytes | None = None, silence: int = 0) -> bytes:
        """The 16-bit PCM to append for a packet whose first sample has `timestamp`: the gap before it as
        silence, then `pcm` (an audio packet) or `silence` samples of silence (a packet that holds no audio
        but a stretch of time, e.g. an RFC 4733 event for its duration), without what was placed already."""
        length = len(pcm) // SAMPLE_WIDTH if pcm is not None else silence
        if self._started is None:
            self._started = now
        if self._position is None:
            self._position = timestamp
        delta = (timestamp - self._position) % TIMESTAMP_MODULO
        if delta >= TIMESTAMP_MODULO // 2:
            delta -= TIMESTAMP_MODULO
        gap = 0
        if delta < -MAX_OVERLAP_SAMPLES:
            self.jumps += 1  # the sender's clock restarted: follow it from here
            self._position, delta = timestamp, 0
        elif delta > 0:
            allowed = max(0, int((now - self._started) * SAMPLE_RATE) + self._lead - self.samples)
            gap = min(delta, allowed)
            if gap < delta:
                self.jumps += 1
        start = self._position + delta  # where the packet's first sample belongs
        trim = min(length, max(0, -delta))  # samples of it already placed
        self._position = max(self._position + gap, start + length)
        out = b"" if gap == 0 else bytes(gap * SAMPLE_WIDTH)
        if pcm is not None:
            out += pcm[trim * SAMPLE_WIDTH:]
        else:
            out += bytes((length - trim) * SAMPLE_WIDTH)
        if gap and self.on_gap is not None:
            self.on_gap(self.samples, gap)
        self.gap_samples += gap
        self.samples += len(out) // SAMPLE_WIDTH
        return out
