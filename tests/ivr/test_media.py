"""ivr.media: jitter buffer ordering/loss/duplicates, and a MediaStream on a real loopback socket pair driven
by the real MediaEngine (exact RTP headers out, 16-bit decoding in, one digit per RFC 4733 key press)."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from ivr import g711
from ivr.dtmf import TelephoneEvent
from ivr.media import JitterBuffer, MediaEngine, MediaStream, open_rtp_socket
from pcm import FRAME_BYTES
from ivr.rtp import RtpPacket


def packet(sequence: int, payload: bytes = b"\xff" * 160, payload_type: int = 0, timestamp: int = 0) -> RtpPacket:
    return RtpPacket(payload_type=payload_type, sequence_number=sequence, timestamp=timestamp, ssrc=7,
                     payload=payload)


def sequences(released: list[RtpPacket | None]) -> list[int | None]:
    return [p.sequence_number if p is not None else None for p in released]


def test_jitter_buffer_reorders_within_its_depth():
    buffer = JitterBuffer(depth=3)
    out = []
    for seq in (10, 12, 11, 13):
        out += buffer.push(packet(seq), now=0.0)
    assert sequences(out) == [10, 11, 12, 13]
    assert (buffer.lost, buffer.late) == (0, 0)


def test_jitter_buffer_declares_loss_when_depth_is_exceeded_and_drops_late_and_duplicate_packets():
    buffer = JitterBuffer(depth=2)
    out = buffer.push(packet(100), 0.0)
    for seq in (102, 103, 104):
        out += buffer.push(packet(seq), 0.0)
    # 104 arrived with 102 and 103 waiting: 101 is given up, and everything in order behind it flows out
    assert sequences(out) == [100, None, 102, 103, 104]  # a silent place keeps the timeline
    assert buffer.push(packet(101), 0.0) == []  # too late now
    assert buffer.push(packet(106), 0.0) == []  # waits for 105
    assert buffer.push(packet(106), 0.0) == []  # duplicate of a waiting packet
    assert (buffer.lost, buffer.late) == (1, 2)
    assert sequences(buffer.flush()) == [None, 106]


def test_jitter_buffer_releases_after_waiting_and_unwraps_sequence_numbers():
    buffer = JitterBuffer(depth=3)
    assert sequences(buffer.push(packet(65535), 0.0)) == [65535]
    assert buffer.push(packet(1), 0.0) == []  # 0 is missing; 1 waits for it
    assert buffer.expire(0.01) == []
    assert sequences(buffer.expire(0.07)) == [None, 1]


def test_jitter_buffer_follows_a_sender_that_restarted_its_sequence_numbers():
    buffer = JitterBuffer(depth=2)
    out = []
    for seq in (5000, 5001, 5002, 17, 18):  # 17 is far behind 5003: a restart, not a late packet
        out += buffer.push(packet(seq), 0.0)
    assert sequences(out) == [5000, 5001, 5002, 17, 18]
    assert (buffer.lost, buffer.late) == (0, 0)


@pytest.fixture
def engine():
    media = MediaEngine()
    media.start()
    yield media
    media.stop()


class Collected:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.digits: list[str] = []
        self.closed = threading.Event()


def make_stream(codec: str) -> tuple[MediaStream, socket.socket, Collected]:
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    far.settimeout(2)
    got = Collected()
    stream = MediaStream(open_rtp_socket("127.0.0.1", 30000, 40000), far.getsockname(), codec, 101,
                         on_frame=got.frames.append, on_digit=got.digits.append, on_closed=got.closed.set)
    return stream, far, got


@pytest.mark.parametrize("codec,payload_type,encode", [("PCMU", 0, g711.encode_pcmu), ("PCMA", 8, g711.encode_pcma)])
def test_stream_sends_paced_frames_of_the_queued_audio_with_consecutive_headers(engine, codec, payload_type, encode):
    stream, far, _ = make_stream(codec)
    tone = b"".join(int(v).to_bytes(2, "little", signed=True) for v in [1000, -1000] * 80)
    stream.queue_pcm(tone * 2)
    engine.add(stream)
    packets = [RtpPacket.parse(far.recv(2048)) for _ in range(5)]
    assert [p.payload_type for p in packets] == [payload_type] * 5
    assert [(p.sequence_number - packets[0].sequence_number) & 0xFFFF for p in packets] == [0, 1, 2, 3, 4]
    assert [(p.timestamp - packets[0].timestamp) & 0xFFFFFFFF for p in packets] == [0, 160, 320, 480, 640]
    assert packets[0].marker and not packets[1].marker
    assert [p.payload for p in packets[:2]] == [encode(tone)] * 2  # PCMA is A-law, not μ-law
    assert packets[2].payload == encode(bytes(FRAME_BYTES))  # then silence, never a gap
    engine.remove(stream)
    assert _wait(lambda: stream.closed)
    far.close()


def test_stream_decodes_to_16_bits_and_reports_each_key_press_once(engine):
    stream, far, got = make_stream("PCMA")
    engine.add(stream)
    time.sleep(0.05)
    pcm = b"".join(int(v).to_bytes(2, "little", signed=True) for v in range(-8000, 8000, 100))  # 160 samples
    target = ("127.0.0.1", stream.local_port)
    for seq in range(4):
        far.sendto(bytes(packet(seq, g711.encode_pcma(pcm), payload_type=8, timestamp=160 * seq)), target)
    for seq, (digit_ts, event, end) in enumerate([(800, 5, False), (800, 5, False), (800, 5, True), (800, 5, True),
                                                  (800, 5, True), (1600, 5, True), (1600, 11, True)], start=10):
        payload = bytes(TelephoneEvent(event=event, end=end, volume=10, duration=800))
        far.sendto(bytes(packet(seq, payload, payload_type=101, timestamp=digit_ts)), target)
    far.sendto(b"\x00\x01 not rtp", target)
    assert _wait(lambda: len(got.frames) >= 4 and len(got.digits) >= 3)
    time.sleep(0.1)
    assert got.digits == ["5", "5", "#"]  # a second press of 5 (new timestamp) counts; retransmissions do not
    assert got.frames[0] == g711.decode_pcma(g711.encode_pcma(pcm))
    samples = [int.from_bytes(got.frames[0][i:i + 2], "little", signed=True) for i in range(0, FRAME_BYTES, 2)]
    assert any(sample % 256 for sample in samples)  # full resolution: pyVoIP's 8-bit audio would not have this
    assert max(abs(got_s - sent) for got_s, sent in zip(samples, range(-8000, 8000, 100))) <= 128  # A-law step/2
    assert stream.stats.malformed == 1
    engine.remove(stream)
    assert got.closed.wait(2)
    far.close()


def test_open_rtp_socket_takes_even_free_ports_and_reports_exhaustion():
    first = open_rtp_socket("127.0.0.1", 41000, 41003)
    second = open_rtp_socket("127.0.0.1", 41000, 41003)
    ports = sorted([first.getsockname()[1], second.getsockname()[1]])
    assert ports == [41000, 41002]
    with pytest.raises(OSError, match="no free RTP port in 41000-41003"):
        open_rtp_socket("127.0.0.1", 41000, 41003)
    first.close()
    second.close()


def _wait(condition, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_caller_audio_still_arrives_while_our_packets_bounce_off_a_closed_port(engine):
    """Our RTP goes to a port nobody listens on (ICMP port unreachable comes back for every packet, and
    Linux reports it on the next recv); the caller's packets from another socket must still be read."""
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    nobody = closed.getsockname()
    closed.close()
    got = Collected()
    stream = MediaStream(open_rtp_socket("127.0.0.1", 30000, 40000), nobody, "PCMU", 101,
                         on_frame=got.frames.append, on_digit=got.digits.append)
    engine.add(stream)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller:
        for seq in range(50):
            caller.sendto(bytes(packet(seq, timestamp=160 * seq)), ("127.0.0.1", stream.local_port))
            time.sleep(0.02)
    assert _wait(lambda: len(got.frames) >= 45)
    engine.remove(stream)


def test_a_ticker_sees_the_frames_of_its_tick_and_what_it_queues_leaves_in_the_same_tick(engine):
    """The media clock of a conference mixer: a ticker that echoes each received frame back; every echo must
    carry the frame's content, and go out in the tick the frame was delivered in (the echo's RTP timestamp
    follows the packets sent before it without a gap of silence frames)."""
    stream, far, got = make_stream("PCMU")
    delivered: list[bytes] = []
    stream.on_frame = delivered.append  # media thread, before the tickers
    ticks: list[int] = []
    left_over: list[int] = []

    def echo() -> None:
        ticks.append(stream.stats.frames_sent)
        left_over.append(stream.queued_frames)  # what the previous tick queued must be sent by now
        while delivered:
            stream.queue_pcm(delivered.pop(0))

    engine.add(stream)
    engine.add_ticker(echo)
    assert engine.ticker_count == 1
    target = ("127.0.0.1", stream.local_port)
    contents = [g711.encode_pcmu(int(1000 * (n + 1)).to_bytes(2, "little", signed=True) * 160) for n in range(5)]
    echoes: list[RtpPacket] = []
    silent = g711.encode_pcmu(bytes(FRAME_BYTES))
    for seq, payload in enumerate(contents):
        far.sendto(bytes(packet(seq, payload, timestamp=160 * seq)), target)
        while True:  # the next non-silent packet is the echo; it must come within a tick or two
            received = RtpPacket.parse(far.recv(2048))
            if received.payload != silent:
                echoes.append(received)
                break
    assert [p.payload for p in echoes] == contents
    engine.remove_ticker(echo)
    assert engine.ticker_count == 0
    calls = len(ticks)
    time.sleep(0.1)
    assert len(ticks) <= calls + 1  # at most a tick that was under way
    # one send per tick, and it took what the ticker had queued in that same tick
    assert all(b - a <= 1 for a, b in zip(ticks, ticks[1:]))
    assert set(left_over) == {0}
    engine.remove(stream)
    far.close()


def test_a_bound_method_ticker_is_removed_by_an_equal_bound_method(engine):
    """`obj.tick` makes a new bound-method object each time: removal compares by equality."""
    counted: list[int] = []

    class Room:
        def tick(self) -> None:
            counted.append(1)

    room = Room()
    engine.add_ticker(room.tick)
    assert _wait(lambda: len(counted) >= 2)
    engine.remove_ticker(room.tick)
    assert engine.ticker_count == 0


def test_every_tick_the_engine_skips_after_a_stall_is_counted_and_accounted_for_in_the_timestamps(engine):
    """A stall longer than MAX_CATCH_UP_FRAMES (here: one stream's callback blocking the media thread for
    0.6 s) makes the engine skip ticks. Each one is counted per stream and in the engine, and the RTP
    timestamps move on by them: sent + skipped frames account for the whole span the far end saw."""
    stream, far, _ = make_stream("PCMU")
    stalled = threading.Event()

    def stall_once() -> None:
        if not stalled.is_set():
            stalled.set()
            time.sleep(0.6)

    stream.on_output_low = stall_once  # called on the media thread when the queue runs empty
    stream.queue_pcm(bytes(FRAME_BYTES * 10))
    engine.add(stream)
    assert stalled.wait(5)
    received = []
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        received.append(RtpPacket.parse(far.recv(2048)))
    engine.remove(stream)
    assert _wait(lambda: stream.closed)
    while True:  # what was in flight when the stream closed
        try:
            far.settimeout(0.2)
            received.append(RtpPacket.parse(far.recv(2048)))
        except OSError:
            break
    far.close()
    assert stream.stats.frames_skipped >= 20  # 0.6 s = 30 ticks, less the 10 it may catch up by sending fast
    assert engine.frames_skipped >= stream.stats.frames_skipped and engine.ticks_skipped >= 20
    assert len(received) == stream.stats.frames_sent  # loopback: nothing lost, so every sent frame arrived
    span = ((received[-1].timestamp - received[0].timestamp) & 0xFFFFFFFF) // 160 + 1
    assert span == stream.stats.frames_sent + stream.stats.frames_skipped
    gap = next(p for p in received[1:] if p.marker)  # the first packet after the skip is marked
    assert gap.sequence_number == (received[received.index(gap) - 1].sequence_number + 1) & 0xFFFF
