"""ivr.session.CallSession logic with a scripted media side (no network): barge-in, digit collection with
first-digit/inter-digit timeouts, maximum length and terminator, frames, taps, hang-up and CallEnded."""
from __future__ import annotations

import threading
import time
from collections import deque

import pytest

from ivr.media import OUTPUT_LOW_FRAMES
from ivr.session import PLAYBACK_LEAD_FRAMES, CallEnded, CallSession
from pcm import FRAME_BYTES


class FakeOutput:
    """Stands in for the media stream: a send clock that takes one queued frame every `tick` seconds and,
    like ivr.media.MediaStream, tells `on_output_low` when its queue falls to OUTPUT_LOW_FRAMES and to 0."""

    def __init__(self, tick: float = 0.002) -> None:
        self.queue: deque[bytes] = deque()
        self.sent: list[bytes] = []
        self.cleared = 0
        self.queue_calls = 0
        self.on_output_low = lambda: None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(tick,), daemon=True)
        self._thread.start()

    def _run(self, tick: float) -> None:
        while not self._stop.wait(tick):
            if self.queue:
                self.sent.append(self.queue.popleft())
                if len(self.queue) in (OUTPUT_LOW_FRAMES, 0):
                    self.on_output_low()

    def queue_pcm(self, pcm: bytes) -> None:
        self.queue_calls += 1
        self.queue.extend(pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES))

    def clear_outgoing(self) -> None:
        self.cleared += 1
        self.queue.clear()

    @property
    def queued_frames(self) -> int:
        return len(self.queue)

    def stop(self) -> None:
        self._stop.set()


@pytest.fixture
def session():
    output = FakeOutput()
    hangups: list[str] = []
    call = CallSession("call-1", "1001", "12345", "PCMU", output, hangup=lambda: hangups.append("bye"))
    output.on_output_low = call.output_low
    call.test_output = output  # type: ignore[attr-defined]
    call.test_hangups = hangups  # type: ignore[attr-defined]
    yield call
    output.stop()


def frames_of(value: int, count: int) -> bytes:
    return value.to_bytes(2, "little", signed=True) * (FRAME_BYTES // 2) * count


def later(delay: float, action) -> None:
    threading.Timer(delay, action).start()


def test_play_sends_every_frame_in_order_and_returns_none(session):
    prompt = b"".join(frames_of(n, 1) for n in range(1, 41))  # 40 distinct frames
    assert session.play(prompt) is None
    assert session.test_output.sent == [frames_of(n, 1) for n in range(1, 41)]


def test_barge_in_stops_the_prompt_and_the_digit_stays_queued(session):
    later(0.03, lambda: session.deliver_digit("3"))
    assert session.play(frames_of(5, 2000)) == "3"  # 40 s prompt cut at once
    assert len(session.test_output.sent) < 200 and session.test_output.queued_frames == 0
    assert session.collect_digits(max_digits=2, inter_digit_timeout=0.1) == "3"


def test_a_prompt_is_queued_a_second_ahead_and_topped_up_when_the_queue_runs_low(session):
    prompt = b"".join(frames_of(n, 1) for n in range(1, 301))  # 6 s, 300 distinct frames
    assert session.play(prompt) is None
    assert session.test_output.sent == [frames_of(n, 1) for n in range(1, 301)]  # nothing lost or reordered
    # One top-up per OUTPUT_LOW_FRAMES sent (plus the first fill), not one per frame.
    refills = (300 - PLAYBACK_LEAD_FRAMES) / (PLAYBACK_LEAD_FRAMES - OUTPUT_LOW_FRAMES)
    assert session.test_output.queue_calls <= refills + 2


def test_a_barge_in_digit_empties_the_send_queue_before_the_application_thread_runs(session):
    played = threading.Thread(target=session.play, args=(frames_of(5, 2000),))
    played.start()
    deadline = time.monotonic() + 5
    while session.test_output.queued_frames == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    session.deliver_digit("7")  # on the media thread in real life: the queue is empty when this returns
    assert session.test_output.queued_frames == 0 and session.test_output.cleared >= 1
    played.join(5)
    assert not played.is_alive() and session.next_digit(0) == "7"


def test_without_barge_in_the_prompt_finishes_and_digits_wait(session):
    session.deliver_digit("9")
    assert session.play(frames_of(5, 30), barge_in=False) is None
    assert len(session.test_output.sent) == 30
    assert session.next_digit(0) == "9"


def test_collect_digits_max_length_terminator_and_timeouts(session):
    for digit in "12345":
        session.deliver_digit(digit)
    assert session.collect_digits(max_digits=3) == "123"
    assert session.collect_digits(max_digits=5, inter_digit_timeout=0.05) == "45"  # inter-digit timeout
    for digit in "78#9":
        session.deliver_digit(digit)
    assert session.collect_digits(max_digits=10) == "78"  # terminator not included
    assert session.collect_digits(max_digits=3, terminator=None, inter_digit_timeout=0.05) == "9"
    started = time.monotonic()
    assert session.collect_digits(max_digits=3, first_digit_timeout=0.2) == ""
    assert 0.2 <= time.monotonic() - started < 1.0
    with pytest.raises(ValueError, match="max_digits"):
        session.collect_digits(max_digits=0)


def test_inter_digit_timeout_runs_from_the_last_digit(session):
    later(0.05, lambda: session.deliver_digit("1"))
    later(0.25, lambda: session.deliver_digit("2"))  # 0.2 s after the first: within 0.4 s
    later(0.90, lambda: session.deliver_digit("3"))  # too late
    assert session.collect_digits(max_digits=4, first_digit_timeout=1, inter_digit_timeout=0.4) == "12"


def test_hang_up_during_collection_keeps_the_digits_and_queued_ones_are_still_handed_out(session):
    session.deliver_digit("4")
    later(0.05, session.mark_ended)
    with pytest.raises(CallEnded) as ended:
        session.collect_digits(max_digits=4, inter_digit_timeout=5)
    assert ended.value.collected == "4"
    assert session.digits_received == "4" and session.ended and session.ended_at is not None


def test_caller_hangs_up_mid_prompt(session):
    later(0.03, session.mark_ended)
    with pytest.raises(CallEnded):
        session.play(frames_of(1, 5000), barge_in=False)
    with pytest.raises(CallEnded):
        session.write_frame(frames_of(1, 1))


def test_read_frame_taps_and_end(session):
    tapped: list[bytes] = []
    session.add_tap(tapped.append)
    session.add_tap(lambda frame: 1 / 0)  # a broken tap must not break the call
    assert session.read_frame(timeout=0.05) is None
    session.deliver_frame(frames_of(7, 1))
    session.deliver_frame(frames_of(8, 1))
    session.mark_ended()
    assert [session.read_frame(), session.read_frame()] == [frames_of(7, 1), frames_of(8, 1)]
    with pytest.raises(CallEnded):
        session.read_frame()
    assert tapped == [frames_of(7, 1), frames_of(8, 1)]


def test_a_removed_tap_gets_no_more_frames_and_the_others_keep_theirs(session):
    kept: list[bytes] = []
    removed: list[bytes] = []
    session.add_tap(kept.append)
    session.add_tap(removed.append)
    session.deliver_frame(frames_of(1, 1))
    session.remove_tap(removed.append)
    session.remove_tap(lambda frame: None)  # not a tap: nothing happens
    session.deliver_frame(frames_of(2, 1))
    assert kept == [frames_of(1, 1), frames_of(2, 1)]
    assert removed == [frames_of(1, 1)]


def test_hangup_sends_bye_once_and_runs_end_callbacks_once(session):
    ended: list[str] = []
    session.on_end(lambda s: ended.append(s.call_id))
    session.hangup()
    session.hangup()
    session.mark_ended()
    assert session.test_hangups == ["bye"] and ended == ["call-1"]


def test_end_callbacks_finish_before_the_application_sees_the_end(session):
    """The recording is closed by an end callback on the media thread; the application, woken by the end,
    must find it closed (its detail record is stored right after)."""
    closed = threading.Event()

    def slow_close(_session) -> None:
        time.sleep(0.2)
        closed.set()

    session.on_end(slow_close)
    later(0.05, session.mark_ended)
    with pytest.raises(CallEnded):
        session.next_digit(5)
    assert closed.is_set()
    session.hangup()  # after the end: no BYE, returns at once
    assert session.test_hangups == []


def test_stream_frames_hands_queued_then_live_frames_to_the_sink_and_until_wakes_the_waiter(session):
    session.deliver_frame(frames_of(1, 1))
    session.deliver_frame(frames_of(2, 1))
    got: list[tuple[bytes, bool]] = []
    stop = session.stream_frames(lambda frame, queued: got.append((frame, queued)))
    assert got == [(frames_of(1, 1), True), (frames_of(2, 1), True)]
    with pytest.raises(RuntimeError, match="another sink"):
        session.stream_frames(lambda frame, queued: None)
    later(0.05, lambda: session.deliver_frame(frames_of(3, 1)))
    later(0.10, lambda: session.deliver_frame(frames_of(4, 1)))
    started = time.monotonic()
    # woken by the frame that makes `until` hold (the second live one), long before the 10 s time-out
    assert session.next_digit(10, until=lambda: len(got) >= 4) is None
    assert time.monotonic() - started < 5 and got[2:] == [(frames_of(3, 1), False), (frames_of(4, 1), False)]
    assert session.read_frame(0) is None  # streamed frames are not queued for read_frame as well
    stop()
    session.deliver_frame(frames_of(5, 1))
    assert len(got) == 4 and session.read_frame(0) == frames_of(5, 1)
