"""ivr.playout.Timeline: audio placed by RTP timestamp; gaps as silence, overlaps trimmed, wrap-around, and
a timestamp jump that cannot make the timeline outgrow the wall clock."""
from __future__ import annotations

from ivr.playout import Timeline

FRAME = 160  # samples


def audio(frame_number: int) -> bytes:
    """One 20 ms frame whose samples all say which frame it is (never zero, so never mistaken for silence)."""
    return (frame_number + 1).to_bytes(2, "little") * FRAME


def silence(samples: int) -> bytes:
    return bytes(2 * samples)


def test_consecutive_timestamps_follow_on_and_a_skipped_stretch_becomes_silence_of_its_length():
    timeline = Timeline()
    out = [timeline.place(1000 + FRAME * n, now=0.02 * n, pcm=audio(n)) for n in (0, 1)]
    # the sender's clock stalled: frames 2..16 never sent, the sequence goes on, the timestamp jumped
    out.append(timeline.place(1000 + FRAME * 17, now=0.34, pcm=audio(17)))
    out.append(timeline.place(1000 + FRAME * 18, now=0.36, pcm=audio(18)))
    assert b"".join(out) == audio(0) + audio(1) + silence(15 * FRAME) + audio(17) + audio(18)
    assert (timeline.samples, timeline.gap_samples, timeline.jumps) == (19 * FRAME, 15 * FRAME, 0)


def test_a_repeated_packet_adds_nothing_and_an_overlapping_one_only_its_new_part():
    timeline = Timeline()
    assert timeline.place(500, now=0.0, pcm=audio(0)) == audio(0)
    assert timeline.place(500, now=0.02, pcm=audio(0)) == b""  # the same samples again (a duplicate)
    overlapping = audio(1)[:2 * 80] + audio(2)[:2 * 80]  # starts halfway through what was placed
    assert timeline.place(500 + 80, now=0.02, pcm=overlapping) == audio(2)[:2 * 80]
    assert timeline.place(500 + 240, now=0.04, pcm=audio(3)) == audio(3)
    assert (timeline.samples, timeline.gap_samples, timeline.jumps) == (400, 0, 0)


def test_timestamps_wrap_around_at_32_bits():
    timeline = Timeline()
    start = (1 << 32) - FRAME
    assert timeline.place(start, now=0.0, pcm=audio(0)) == audio(0)
    assert timeline.place(0, now=0.02, pcm=audio(1)) == audio(1)  # 2**32 is 0 again: no gap
    assert timeline.place(2 * FRAME, now=0.06, pcm=audio(3)) == silence(FRAME) + audio(3)  # a lost frame across it
    assert timeline.jumps == 0


def test_a_huge_jump_gets_no_more_silence_than_the_wall_clock_allows_and_later_packets_follow_it():
    timeline = Timeline(lead_seconds=1.0)
    timeline.place(0, now=0.0, pcm=audio(0))
    # 2**31 - 1 samples ahead (three days at 8 kHz) 0.125 s after the first packet: 1000 samples of wall clock
    placed = timeline.place((1 << 31) - 1, now=0.125, pcm=audio(1))
    assert placed == silence(1000 + 8000 - FRAME) + audio(1)  # elapsed + 1 s of lead, minus frame 0 placed
    assert timeline.jumps == 1
    assert timeline.place((1 << 31) - 1 + FRAME, now=0.125, pcm=audio(2)) == audio(2)  # on from the new place
    assert timeline.place((1 << 31) - 1 + 3 * FRAME, now=0.125, pcm=audio(4)) == audio(4)  # no time left for a gap
    assert timeline.jumps == 2
    assert timeline.place((1 << 31) - 1 + 5 * FRAME, now=1.0, pcm=audio(6)) == silence(FRAME) + audio(6)  # time passed


def test_a_clock_far_behind_is_a_restarted_sender_followed_from_its_packet():
    timeline = Timeline()
    timeline.place(900_000, now=0.0, pcm=audio(0))
    assert timeline.place(17, now=0.02, pcm=audio(1)) == audio(1)  # not 'already placed': a new clock
    assert timeline.place(17 + FRAME, now=0.04, pcm=audio(2)) == audio(2)
    assert timeline.jumps == 1


def test_a_key_press_is_silence_for_its_duration_once_and_audio_resumes_after_it():
    timeline = Timeline()
    out = timeline.place(0, now=0.0, pcm=audio(0))
    for duration in (FRAME, 2 * FRAME, 3 * FRAME, 3 * FRAME, 3 * FRAME):  # RFC 4733: one timestamp, growing
        out += timeline.place(FRAME, now=0.02, silence=duration)
    out += timeline.place(6 * FRAME, now=0.12, pcm=audio(6))  # two frame times of end packets, then audio
    assert out == audio(0) + silence(5 * FRAME) + audio(6)


def test_a_new_source_follows_on_directly():
    timeline = Timeline()
    timeline.place(40_000, now=0.0, pcm=audio(0))
    timeline.new_source()
    assert timeline.place(123, now=0.02, pcm=audio(1)) == audio(1)
    assert timeline.jumps == 0
