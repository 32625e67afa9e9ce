"""RTP media for every call of a node on ONE selector thread with a 20 ms send clock.

pyVoIP runs a receiver thread polling with sleep(0.01) and a sender thread per call, and hands out 8-bit
audio; at 100 calls that loses about 40 % of the audio. Here one thread waits on all RTP sockets at once
(selectors/epoll) and, every 20 ms of an absolute schedule, sends one G.711 frame per call (the queued PCM or
silence, so the far end hears a continuous stream). Received packets go through a small reordering jitter
buffer, are decoded to 16-bit PCM, placed by RTP timestamp (ivr.playout: a sender's skipped or lost frames
are silence of their length) and cut into 20 ms frames; RFC 4733 digits are reported once per key press.
"""
from __future__ import annotations

import heapq
import ipaddress
import logging
import os
import random
import select
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pcm import FRAME_BYTES, FRAME_SAMPLES, FRAME_SECONDS, SILENCE_FRAME

from . import g711
from .dtmf import TelephoneEvent
from .playout import Timeline
from .rtp import RtpPacket
from .rtp_source import RtpSourceLock

log = logging.getLogger(__name__)

CODECS: dict[str, tuple[int, Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    "PCMU": (0, g711.decode_pcmu, g711.encode_pcmu),
    "PCMA": (8, g711.decode_pcma, g711.encode_pcma),
}
MAX_CATCH_UP_FRAMES = 10  # behind by more than 200 ms: skip frames instead of bursting them (counted)
MAX_GAP_FILL = 50  # a sequence jump beyond this (1 s) is a restarted sender, not loss: not counted as lost
MAX_DATAGRAMS_PER_TICK = 64  # read per socket per tick at most (a flood must not stall the other calls)
MEDIA_THREAD_NICE = -10  # the media thread's scheduling priority when allowed (root or CAP_SYS_NICE)
OUTPUT_LOW_FRAMES = 25  # `on_output_low` fires when the send queue falls to this many frames (500 ms)


@dataclass
class StreamStats:
    """Per-call counters, for health figures and benchmarks."""

    packets_received: int = 0
    packets_lost: int = 0  # sequence numbers never seen when the buffer moved past them
    packets_late: int = 0  # arrived after their place had been played out, or duplicates
    malformed: int = 0
    foreign: int = 0  # datagrams from anyone but the far end (see ivr.rtp_source), dropped unread
    frames_sent: int = 0
    frames_skipped: int = 0  # 20 ms ticks never sent because the engine stalled past MAX_CATCH_UP_FRAMES
    gap_samples: int = 0  # silence placed where the far end's timestamps left a gap (frames it skipped or lost)
    timestamp_jumps: int = 0  # far end's timestamps ahead of the wall clock or far back: placed without a gap


class JitterBuffer:
    """Reorders packets by sequence number and releases them in order.

    A packet is released when it is the next expected one, when `depth` later packets are waiting (the
    expected one is then declared lost), or when it has waited `depth` frame times (see `expire`).
    """

    def __init__(self, depth: int = 3, lost: int = 0, late: int = 0) -> None:
        self.depth = depth
        self._heap: list[tuple[int, float, RtpPacket]] = []  # (extended sequence, arrival, packet)
        self._expected: int | None = None
        self._last_extended = 0
        self.lost = lost  # counters carry over when a new source replaces the buffer
        self.late = late

    def _extend(self, sequence: int) -> int:
        """Unwrap the 16-bit sequence number relative to the last one seen."""
        if self._expected is None:
            self._last_extended = sequence
            return sequence
        delta = (sequence - self._last_extended) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        extended = self._last_extended + delta
        self._last_extended = max(self._last_extended, extended)
        return extended

    def push(self, packet: RtpPacket, now: float) -> list[RtpPacket | None]:
        """Add a packet; returns what is now released in order (None = one lost packet's place)."""
        extended = self._extend(packet.sequence_number)
        released: list[RtpPacket | None] = []
        if self._expected is not None and extended < self._expected - MAX_GAP_FILL:
            # Far behind: the sender restarted its sequence numbers; follow it instead of dropping it forever.
            released = self.flush()
            self._expected = None
        if self._expected is None:
            self._expected = extended
            self._last_extended = extended
        if extended < self._expected or any(seq == extended for seq, _, _ in self._heap):
            self.late += 1
            return released
        heapq.heappush(self._heap, (extended, now, packet))
        return released + self._release(now, force_depth=True)

    def expire(self, now: float) -> list[RtpPacket | None]:
        """Release packets that waited long enough for a missing predecessor."""
        return self._release(now, force_depth=False)

    def flush(self) -> list[RtpPacket | None]:
        return self._release(float("inf"), force_depth=False)

    def _release(self, now: float, force_depth: bool) -> list[RtpPacket | None]:
        out: list[RtpPacket | None] = []
        while self._heap:
            sequence, arrived, packet = self._heap[0]
            waited_enough = now - arrived >= self.depth * FRAME_SECONDS
            if sequence != self._expected and not (len(self._heap) > self.depth and force_depth) \
                    and not waited_enough:
                break
            heapq.heappop(self._heap)
            gap = sequence - self._expected
            if 0 < gap <= MAX_GAP_FILL:
                out.extend([None] * gap)
                self.lost += gap
            out.append(packet)
            self._expected = sequence + 1
        return out


@dataclass(eq=False)  # identity: streams live in sets
class MediaStream:
    """One call's RTP: a bound UDP socket, the far end, the codec, and the queues the session uses.

    `on_frame(pcm)` gets every 20 ms caller frame and `on_digit(digit)` every key press, both on the media
    thread (keep them short); `on_closed()` once when the stream is stopped. `on_output_low()` (media thread)
    when the send queue falls to OUTPUT_LOW_FRAMES and again when it runs empty, so whoever queues audio
    ahead (a prompt) is woken twice a second to top it up instead of polling every frame. Only the far end
    is heard: datagrams from any other source are dropped (ivr.rtp_source); `remote` must be an IP address,
    never a host name (sendto would resolve it for every packet).
    """

    sock: socket.socket
    remote: tuple[str, int]
    codec: str
    dtmf_payload_type: int | None
    on_frame: Callable[[bytes], None]
    on_digit: Callable[[str], None]
    on_closed: Callable[[], None] = lambda: None
    on_output_low: Callable[[], None] = lambda: None
    jitter_depth: int = 3
    stats: StreamStats = field(default_factory=StreamStats)

    def __post_init__(self) -> None:
        self.payload_type, self._decode, self._encode = CODECS[self.codec]
        self.local_port: int = self.sock.getsockname()[1]
        self._outgoing: deque[bytes] = deque()
        self._outgoing_lock = threading.Lock()
        self._jitter = JitterBuffer(self.jitter_depth)
        self._timeline = Timeline()
        self._remote_ssrc: int | None = None
        self._pending_pcm = b""
        self._digits_seen: set[tuple[int, int]] = set()  # (timestamp, event) of digits already reported
        self._ssrc = random.getrandbits(32)
        self._sequence = random.getrandbits(16)
        self._timestamp = random.getrandbits(32)
        self._marker = True
        self.closed = False
        ipaddress.ip_address(self.remote[0])  # ValueError for a host name
        self.source = RtpSourceLock(self.remote[0])
        self.last_received = time.monotonic()  # the far end's last accepted datagram (or the stream's start)

    def retarget(self, remote: tuple[str, int]) -> None:
        """The far end moved its stream (re-INVITE): send there, and hear only that address from now on."""
        ipaddress.ip_address(remote[0])
        self.remote = remote
        self.source.expect(remote[0])

    # ---- called by the session (any thread)

    def queue_pcm(self, pcm: bytes) -> None:
        """Queue 16-bit PCM to send; cut into 20 ms frames, the last one padded with silence."""
        frames = [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
        if frames and len(frames[-1]) < FRAME_BYTES:
            frames[-1] = frames[-1].ljust(FRAME_BYTES, b"\0")
        with self._outgoing_lock:
            self._outgoing.extend(frames)

    def clear_outgoing(self) -> None:
        with self._outgoing_lock:
            self._outgoing.clear()

    @property
    def queued_frames(self) -> int:
        return len(self._outgoing)

    # ---- called on the media thread

    def send_tick(self) -> None:
        with self._outgoing_lock:
            queued = bool(self._outgoing)
            pcm = self._outgoing.popleft() if queued else SILENCE_FRAME
            left = len(self._outgoing)
        if queued and left in (OUTPUT_LOW_FRAMES, 0):
            self.on_output_low()
        packet = RtpPacket(payload_type=self.payload_type, sequence_number=self._sequence,
                           timestamp=self._timestamp, ssrc=self._ssrc, payload=self._encode(pcm),
                           marker=self._marker)
        self._marker = False
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        try:
            self.sock.sendto(bytes(packet), self.remote)
            self.stats.frames_sent += 1
        except OSError as exc:  # e.g. ICMP unreachable from a far end that already left
            log.debug("RTP send to %s failed: %s", self.remote, exc)

    def skip(self, frames: int) -> None:
        """The clock jumped `frames` ticks: advance the RTP timestamp (not the sequence: nothing queued is
        dropped, it is sent late) and count them: the far end misses those 20 ms slots."""
        self._timestamp = (self._timestamp + frames * FRAME_SAMPLES) & 0xFFFFFFFF
        self._marker = True
        self.stats.frames_skipped += frames

    def receive(self, now: float) -> None:
        """Drain the socket (non-blocking)."""
        for _ in range(MAX_DATAGRAMS_PER_TICK):
            try:
                datagram, source = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                # An ICMP "port unreachable" for one of OUR sends (the far end's port is not open, yet or any
                # more) is reported by the next recv; it is consumed by raising, so keep reading: returning
                # here would starve the caller's audio for as long as our packets bounce.
                continue
            except OSError:
                return
            if not self.source.accept(source):
                self.stats.foreign += 1
                continue
            self.last_received = now
            try:
                packet = RtpPacket.parse(datagram)
            except ValueError:
                self.stats.malformed += 1
                continue
            self.stats.packets_received += 1
            if packet.payload_type == self.dtmf_payload_type:
                self._handle_dtmf(packet)
                self._deliver(self._jitter.push(packet, now), now)  # its time on the line is silence
            elif packet.payload_type == self.payload_type:
                if packet.ssrc != self._remote_ssrc:  # a new source (or a restarted one): start afresh
                    if self._remote_ssrc is not None:
                        self._deliver(self._jitter.flush(), now)
                        self._jitter = JitterBuffer(self.jitter_depth, lost=self._jitter.lost,
                                                    late=self._jitter.late)
                        self._timeline.new_source()
                    self._remote_ssrc = packet.ssrc
                self._deliver(self._jitter.push(packet, now), now)
            # other payload types (comfort noise, a codec we did not agree on) are ignored

    def expire(self, now: float) -> None:
        self._deliver(self._jitter.expire(now), now)

    def _handle_dtmf(self, packet: RtpPacket) -> None:
        try:
            event = TelephoneEvent.parse(packet.payload)
            digit = event.digit
        except ValueError:
            self.stats.malformed += 1
            return
        key = (packet.timestamp, event.event)
        if key in self._digits_seen:
            return  # later packets of the same press, and the retransmitted end packets
        if len(self._digits_seen) > 64:
            self._digits_seen.clear()
        self._digits_seen.add(key)
        self.on_digit(digit)

    def _deliver(self, released: list[RtpPacket | None], now: float) -> None:
        """Place released packets on the timeline and hand out whole 20 ms frames. A lost packet (None) needs
        nothing here: the next packet's timestamp leaves its gap, which the timeline fills with silence."""
        placed = [self._pending_pcm]
        for packet in released:
            if packet is None:
                continue
            if packet.payload_type == self.payload_type:
                placed.append(self._timeline.place(packet.timestamp, now, pcm=self._decode(packet.payload)))
            else:  # a telephone-event: its duration so far was a key press, heard here as silence
                try:
                    duration = TelephoneEvent.parse(packet.payload).duration
                except ValueError:
                    duration = 0  # counted as malformed when it arrived
                placed.append(self._timeline.place(packet.timestamp, now, silence=duration))
        pcm = b"".join(placed)
        whole = len(pcm) - len(pcm) % FRAME_BYTES
        for offset in range(0, whole, FRAME_BYTES):
            self.on_frame(pcm[offset:offset + FRAME_BYTES])
        self._pending_pcm = pcm[whole:]
        self.stats.packets_lost = self._jitter.lost
        self.stats.packets_late = self._jitter.late
        self.stats.gap_samples = self._timeline.gap_samples
        self.stats.timestamp_jumps = self._timeline.jumps

    def close(self) -> None:
        """Flush what the buffer holds to the session, close the socket, tell the owner once."""
        if self.closed:
            return
        self.closed = True
        self.sock.setblocking(False)  # a stream stopped before it was ever started still has a blocking socket
        now = time.monotonic()
        self.receive(now)  # packets that arrived since the last tick still count
        self._deliver(self._jitter.flush(), now)
        self.sock.close()
        self.on_closed()


class MediaEngine:
    """The node's single media thread. `add(stream)` / `remove(stream)` from any thread.

    It is also the node's media clock: `add_ticker(callback)` runs `callback()` on the media thread once per
    20 ms tick, after every stream's received audio of that tick was delivered and before any stream sends;
    so a conference mixer reads this tick's frames and queues each leg's next frame without a thread of its
    own, and the mixed frame leaves in the same tick.
    """

    def __init__(self, name: str = "ivr-media") -> None:
        self._selector = selectors.DefaultSelector()
        self._streams: set[MediaStream] = set()
        self._changes: deque[tuple[str, MediaStream]] = deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._running = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._tickers: tuple[Callable[[], None], ...] = ()  # replaced, never mutated: read without a lock
        self._tickers_lock = threading.Lock()
        self.ticks = 0
        self.ticks_late = 0  # ticks handled a frame or more after their due time (sent at once, catching up)
        self.ticks_skipped = 0  # ticks never sent after a stall longer than MAX_CATCH_UP_FRAMES
        self.frames_skipped = 0  # the same, summed over the streams that missed them

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def stop(self) -> None:
        """Close every stream and end the thread."""
        self._running = False
        self._wake()
        if self._thread.is_alive():
            self._thread.join(5)
        for stream in list(self._streams):
            stream.close()
        self._streams.clear()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    @property
    def ticker_count(self) -> int:
        return len(self._tickers)

    def add_ticker(self, callback: Callable[[], None]) -> None:
        """Run `callback()` on the media thread every tick (keep it well under a millisecond)."""
        with self._tickers_lock:
            self._tickers = (*self._tickers, callback)

    def remove_ticker(self, callback: Callable[[], None]) -> None:
        """Stop ticking `callback` (no-op when it is not registered); it may still run once if a tick is
        under way on the media thread at this moment."""
        with self._tickers_lock:
            self._tickers = tuple(ticker for ticker in self._tickers if ticker != callback)  # bound methods: ==, not is

    def add(self, stream: MediaStream) -> None:
        stream.sock.setblocking(False)
        self._changes.append(("add", stream))
        self._wake()

    def remove(self, stream: MediaStream) -> None:
        """Stop the stream; it is closed on the media thread (or right here once the engine stopped)."""
        if not self._running:
            stream.close()
            return
        self._changes.append(("remove", stream))
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # already woken, or shutting down

    def _apply_changes(self) -> None:
        while self._changes:
            action, stream = self._changes.popleft()
            if action == "add" and not stream.closed:
                self._selector.register(stream.sock, selectors.EVENT_READ, stream)
                self._streams.add(stream)
            elif action == "remove" and stream in self._streams:
                self._streams.discard(stream)
                self._selector.unregister(stream.sock)
                stream.close()
            elif action == "remove":
                stream.close()

    def _run(self) -> None:
        """Wait for packets until the next 20 ms tick, then send one frame per stream."""
        _raise_priority(threading.get_native_id())
        next_tick = time.monotonic()
        while self._running:
            try:
                next_tick = self._cycle(next_tick)
            except Exception:  # the loop must survive anything one call throws at it
                log.exception("media loop error")

    def _cycle(self, next_tick: float) -> float:
        """Sleep until the next tick (only a stream change wakes us earlier), then read every socket that has
        packets and send one frame per stream. One wake-up per 20 ms instead of one per packet: at 100 calls
        that is 50 instead of 5000 a second."""
        self._apply_changes()
        wait = next_tick - time.monotonic()
        if wait > 0:
            if select.select([self._wake_r], [], [], wait)[0]:
                try:
                    os.read(self._wake_r, 4096)
                except BlockingIOError:
                    pass
            return next_tick
        now = time.monotonic()
        for key, _ in self._selector.select(0):
            if key.data is not None:
                key.data.receive(now)
        behind = int((now - next_tick) / FRAME_SECONDS)
        self.ticks += 1
        if behind:
            self.ticks_late += 1
        if behind > MAX_CATCH_UP_FRAMES:
            # Stalled too long to catch up by sending faster: skip those frames, and move the RTP timestamps
            # on by the same amount so the far end's schedule stays true to the wall clock. Counted per
            # stream and in total: a far end hears each skipped tick as a gap.
            next_tick += behind * FRAME_SECONDS
            self.ticks_skipped += behind
            self.frames_skipped += behind * len(self._streams)
            log.warning("media engine stalled %d ms: %d ticks skipped on %d streams", behind * 20, behind,
                        len(self._streams))
            for stream in list(self._streams):
                stream.skip(behind)
        next_tick += FRAME_SECONDS  # when behind by a few frames, the next cycles come at once (catch up)
        streams = list(self._streams)
        for stream in streams:
            try:
                stream.expire(now)
            except Exception:  # one broken call must not stop the others' audio
                log.exception("media receive failed for stream on port %s", stream.local_port)
        for ticker in self._tickers:
            try:
                ticker()
            except Exception:
                log.exception("media ticker %r failed", ticker)
        for stream in streams:
            try:
                stream.send_tick()
            except Exception:
                log.exception("media tick failed for stream on port %s", stream.local_port)
        return next_tick


def _raise_priority(thread_id: int) -> None:
    """Give the media thread precedence over the node's other threads (recognition, calls) and over other
    processes, as telephony servers do: on a busy machine a 20 ms tick that waits for a CPU is a gap the
    caller hears. Without the privilege to lower a nice value this is logged once and the thread runs at
    normal priority."""
    try:
        os.setpriority(os.PRIO_PROCESS, thread_id, MEDIA_THREAD_NICE)
    except OSError as exc:
        log.info("media thread keeps normal priority (nice %d not allowed: %s)", MEDIA_THREAD_NICE, exc)


def open_rtp_socket(ip: str, low: int, high: int) -> socket.socket:
    """Bind a UDP socket on an even port in [low, high] (RTCP would take the odd one above).

    Starts at a random even port and walks the range, so several nodes or tests on one machine rarely try
    the same port first; ports taken by anything else are skipped. OSError when the range is exhausted.
    """
    first = low + (low % 2)
    candidates = list(range(first, high + 1, 2))
    if not candidates:
        raise OSError(f"RTP port range {low}-{high} holds no even port")
    start = random.randrange(len(candidates))
    for port in candidates[start:] + candidates[:start]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((ip, port))
            return sock
        except OSError:
            sock.close()
    raise OSError(f"no free RTP port in {low}-{high} on {ip}")
