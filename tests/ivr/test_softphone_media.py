"""CallerMedia on the IVR's media engine over real loopback UDP (no SIP): exact RFC 4733 packets, paced
G.711 audio, recording with silence where packets were lost."""

from __future__ import annotations

import math
import socket
import struct
import time

import pytest

from ivr import g711
from ivr.dtmf import TelephoneEvent
from ivr.media import MediaEngine, MediaStream
from ivr.rtp import RtpPacket
from ivr.softphone.audio import similarity
from ivr.softphone.media import CallerMedia

TONE = b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(8000))


@pytest.fixture
def link():
    """(media, peer socket): the media sends to `peer`, the peer can send back to the media's port."""
    media_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    media_sock.bind(("127.0.0.1", 0))
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(2)
    engine = MediaEngine("test-media")
    engine.start()

    def make(codec: str = "PCMU") -> tuple[CallerMedia, socket.socket]:
        return CallerMedia(engine, media_sock, peer.getsockname(), codec), peer

    yield make
    engine.stop()
    peer.close()


def receive(peer: socket.socket, count: int) -> list[RtpPacket]:
    return [RtpPacket.parse(peer.recv(2048)) for _ in range(count)]


def test_a_digit_is_sent_as_rfc4733_events_with_three_end_packets(link):
    media, peer = link()
    media.send_dtmf("5", duration=0.06, gap=0.04)  # 3 tone packets
    media.start()
    packets = receive(peer, 12)
    events = [p for p in packets if p.payload_type == 101]
    assert [(TelephoneEvent.parse(p.payload).duration, TelephoneEvent.parse(p.payload).end) for p in events] == [
        (160, False), (320, False), (480, True), (480, True), (480, True)]
    assert {TelephoneEvent.parse(p.payload).event for p in events} == {5}
    assert [p.marker for p in events] == [True, False, False, False, False]
    assert len({p.timestamp for p in events}) == 1
    sequence = [p.sequence_number for p in packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(sequence, sequence[1:]))
    assert packets[-1].payload_type == 0  # audio resumes after the digit and its gap
    assert len({p.ssrc for p in packets}) == 1


def test_rejects_keys_that_are_not_dtmf(link):
    media, _ = link()
    with pytest.raises(ValueError):
        media.send_dtmf("1x")


@pytest.mark.parametrize("codec, payload_type, decode", [("PCMU", 0, g711.decode_pcmu), ("PCMA", 8, g711.decode_pcma)])
def test_queued_audio_goes_out_as_paced_g711_frames(link, codec, payload_type, decode):
    media, peer = link(codec)
    media.play(TONE)
    started = time.monotonic()
    media.start()
    packets = receive(peer, 50)
    elapsed = time.monotonic() - started
    assert {p.payload_type for p in packets} == {payload_type}
    assert [len(p.payload) for p in packets] == [160] * 50
    timestamps = [p.timestamp for p in packets]
    assert all((b - a) & 0xFFFFFFFF == 160 for a, b in zip(timestamps, timestamps[1:]))
    assert elapsed > 0.9  # paced in real time, not burst out
    assert similarity(b"".join(decode(p.payload) for p in packets), TONE[:16000]).similarity > 0.99
    assert media.wait_idle(5)


def test_recording_follows_rtp_timestamps_and_counts_losses(link):
    media, peer = link()
    media.start()
    remote = media.stream.sock.getsockname()
    frame = g711.encode_pcmu(TONE[:320])
    for seq, ts in [(10, 1000), (11, 1160), (14, 1640)]:  # 12 and 13 lost
        peer.sendto(bytes(RtpPacket(payload_type=0, sequence_number=seq, timestamp=ts, ssrc=7, payload=frame)), remote)
    peer.sendto(b"\x00garbage", remote)  # not RTP: ignored
    deadline = time.monotonic() + 3
    while media.stats.packets_lost < 2 and time.monotonic() < deadline:  # declared lost after the jitter delay
        time.sleep(0.02)
    heard = media.heard()
    assert media.stats.packets_received == 3 and media.stats.packets_lost == 2
    first = heard.index(g711.decode_pcmu(frame)[:40])
    # frames at 0, 160 and 640 samples after the first: silence where 320..639 were lost
    assert heard[first + 640: first + 1280] == bytes(640)
    assert heard[first + 1280: first + 1920] == g711.decode_pcmu(frame)


class _SkipLog(MediaStream):
    """The IVR's own stream, noting after how many frames sent each stall skipped how many."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.skips: list[tuple[int, int]] = []

    def skip(self, frames: int) -> None:
        self.skips.append((self.stats.frames_sent, frames))
        super().skip(frames)


def test_frames_a_stalled_sender_skipped_are_heard_as_silence_at_their_place(link):
    """The IVR's engine stalls mid-prompt (here a ticker sleeps 0.5 s on its media thread): it skips those
    ticks, the timestamp jumps, the sequence goes on (RFC 3550). The caller's recording keeps the gap where
    it was on the line instead of closing it up, and counts exactly the skipped samples; read without gaps
    it is the whole prompt as sent."""
    caller, _ = link()
    ivr_engine = MediaEngine("test-ivr-media")
    prompt = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * (200 + 300 * i / 8000) * i / 8000)))
                      for i in range(16000))  # a 2 s rising chirp: every frame differs
    ivr = _SkipLog(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), ("127.0.0.1", 0), "PCMU", 101,
                   on_frame=lambda frame: None, on_digit=lambda digit: None)
    stalled = []

    def stall() -> None:
        if not stalled and ivr.stats.frames_sent >= 25:
            stalled.append(ivr.stats.frames_sent)
            time.sleep(0.5)

    try:
        ivr.sock.bind(("127.0.0.1", 0))
        ivr.retarget(caller.stream.sock.getsockname())
        caller.stream.retarget(ivr.sock.getsockname())
        ivr.queue_pcm(prompt)
        ivr_engine.add_ticker(stall)
        caller.start()
        ivr_engine.start()
        ivr_engine.add(ivr)
        deadline = time.monotonic() + 10
        while (ivr.queued_frames or not ivr.skips) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the last frames' way through the caller's jitter buffer
    finally:
        ivr_engine.stop()
    heard, closed_up = caller.heard(), caller.heard(keep_gaps=False)
    caller.stop()

    assert stalled and ivr.skips and ivr.skips[0][1] >= 20, ivr.skips  # 0.5 s: about 24 ticks skipped
    skipped = sum(frames for _, frames in ivr.skips)
    assert caller.stream.stats.gap_samples == 160 * skipped  # every skipped frame, no more
    through = g711.decode_pcmu(g711.encode_pcmu(prompt))
    expected, position = b"", 0
    for frames_sent, frames in ivr.skips:  # the prompt as the caller's line carried it
        expected += through[position:frames_sent * 320] + bytes(320 * frames)
        position = frames_sent * 320
    expected += through[position:]
    start = heard.index(through[:320])
    assert heard[start:start + len(expected)] == expected
    assert closed_up[start:start + len(through)] == through  # what was said, without the gaps: the whole prompt
    assert caller.heard(start / 16000 + 0.5, keep_gaps=False) == closed_up[start + 8000:]  # from a time on
