"""The call session an application drives, one per call: 20 ms PCM frames in and out, DTMF digits, prompt
playback with barge-in, digit collection, a recording tap and hang-up.

Audio is 16-bit signed little-endian mono PCM at 8 kHz; one frame is 20 ms = 320 bytes. The media thread
pushes caller frames and digits in (`deliver_frame`, `deliver_digit`, `mark_ended`); the application's thread
calls the blocking methods, which raise CallEnded once either side has hung up and nothing is left to read.
"""
from __future__ import annotations

import logging
import pathlib
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Protocol

from pydub import AudioSegment

from pcm import FRAME_BYTES, FRAME_SECONDS, to_pcm

log = logging.getLogger(__name__)

PLAYBACK_LEAD_FRAMES = 50  # a prompt is queued up to 1 s ahead of the send clock and topped up when the
# media stream says its queue fell to half (ivr.media.OUTPUT_LOW_FRAMES): two wake-ups a second per playing
# call instead of one per frame. A barge-in digit empties the queue on the media thread, so the cut does not
# wait for the application thread either.
PLAYBACK_WAIT_MARGIN = 1.0  # seconds past the queued audio's end a play() waits before looking again
INBOUND_FRAMES_KEPT = 250  # 5 s of caller audio waits for read_frame; older frames are dropped (taps got them)


class CallEnded(Exception):
    """Raised by blocking session calls when either side hung up. `collected` holds the digits a
    collect_digits call had gathered before the end."""

    def __init__(self, message: str = "call ended", collected: str = "") -> None:
        super().__init__(message)
        self.collected = collected


class OutgoingAudio(Protocol):
    """What a session needs from the media layer to send audio (ivr.media.MediaStream fits)."""

    def queue_pcm(self, pcm: bytes) -> None: ...
    def clear_outgoing(self) -> None: ...
    @property
    def queued_frames(self) -> int: ...
    # and calls the session's `output_low()` when its queue runs low (see ivr.media.MediaStream.on_output_low)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class CallSession:
    """One call as the application sees it. Created by the IVR node; see CONTRACTS.md."""

    def __init__(self, call_id: str, caller: str, called: str, codec: str, outgoing: OutgoingAudio | None,
                 hangup: Callable[[], None], *, sip_call_id: str | None = None) -> None:
        self.call_id = call_id  # ours (the node gives each call a uuid4 at answer): what everything keys on
        self.sip_call_id = sip_call_id  # the SIP Call-ID, a SIP detail: callers choose it and repeat it
        self.caller = caller
        self.called = called
        self.codec = codec
        self.started_at: datetime | None = _now()
        self.answered_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.digits_received = ""  # every key the caller pressed, in order (for the detail record)
        self.details: dict[str, str] = {}  # what the application wants kept in the call's detail record
        self.recording_path: str | None = None  # set by whoever records the call
        self._outgoing = outgoing
        self._send_hangup = hangup
        self._condition = threading.Condition()
        self._frames: deque[bytes] = deque(maxlen=INBOUND_FRAMES_KEPT)
        self._frame_waiters = 0  # application threads blocked in read_frame: only they are woken per frame
        self._sink: Callable[[bytes, bool], None] | None = None  # stream_frames: frames go here, not queued
        self._wake_when: Callable[[], bool] | None = None  # next_digit(until=...) of the waiting thread
        self._digits: deque[str] = deque()
        self._barge_in_playing = False  # a play(barge_in=True) is running: a digit empties the send queue
        self._taps: list[Callable[[bytes], None]] = []
        self._end_callbacks: list[Callable[[CallSession], None]] = []
        self._ended = False
        self._ending_thread: threading.Thread | None = None
        self._end_done = threading.Event()

    # ---- media side (media thread / SIP thread)

    def attach_output(self, outgoing: OutgoingAudio) -> None:
        """The media stream is built after the session (it needs the session's callbacks)."""
        self._outgoing = outgoing

    def deliver_frame(self, pcm: bytes) -> None:
        for tap in self._taps:
            try:
                tap(pcm)
            except Exception:  # a broken recorder must not break the call
                log.exception("recording tap failed on call %s", self.call_id)
        with self._condition:
            if self._sink is not None:
                try:
                    self._sink(pcm, False)
                except Exception:  # a broken listener must not break the call's media
                    log.exception("frame sink failed on call %s", self.call_id)
                    self._sink = None
            else:
                self._frames.append(pcm)
            if self._frame_waiters or (self._wake_when is not None and self._wake_when()):
                self._condition.notify_all()

    def deliver_digit(self, digit: str) -> None:
        with self._condition:
            self._digits.append(digit)
            self.digits_received += digit
            if self._barge_in_playing and self._outgoing is not None:
                self._outgoing.clear_outgoing()  # cut the prompt at this very tick
            self._condition.notify_all()

    def output_low(self) -> None:
        """The media stream's send queue ran low (media thread): wake a play() to top it up."""
        with self._condition:
            self._condition.notify_all()

    def mark_answered(self) -> None:
        self.answered_at = _now()

    def mark_ended(self) -> None:
        """Either side hung up: run the end callbacks once (e.g. the recording is closed), THEN let the
        application see `ended`, so whatever it does after the call (its detail record is read at once)
        finds the call fully wound up. Any other thread calling this meanwhile waits for the same."""
        with self._condition:
            first = self._ending_thread is None
            if first:
                self._ending_thread = threading.current_thread()
                self.ended_at = _now()
        if not first:
            if self._ending_thread is not threading.current_thread():  # re-entry from a callback: no wait
                self._end_done.wait(5.0)
            return
        for callback in self._end_callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("end callback failed on call %s", self.call_id)
        with self._condition:
            self._ended = True
            self._condition.notify_all()
        self._end_done.set()

    def on_end(self, callback: Callable[[CallSession], None]) -> None:
        self._end_callbacks.append(callback)

    # ---- application side

    @property
    def ended(self) -> bool:
        return self._ended

    def wait_ended(self, timeout: float) -> bool:
        """Block until either side hung up (True) or `timeout` seconds passed (False); consumes nothing."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while not self._ended:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
            return True

    def add_tap(self, callback: Callable[[bytes], None]) -> None:
        """`callback(frame)` for every 20 ms caller frame, on the media thread: keep it quick."""
        self._taps = [*self._taps, callback]  # replaced, never mutated: the media thread iterates it unlocked

    def remove_tap(self, callback: Callable[[bytes], None]) -> None:
        """Stop calling `callback` (no-op when it is not a tap), e.g. when the call leaves a conference."""
        self._taps = [tap for tap in self._taps if tap != callback]

    def read_frame(self, timeout: float = 1.0) -> bytes | None:
        """Next 20 ms of caller audio (320 bytes), None after `timeout` seconds without audio."""
        return self._take(self._frames, timeout)

    def stream_frames(self, sink: Callable[[bytes, bool], None]) -> Callable[[], None]:
        """Hand every caller frame to `sink(frame, queued)` from now on, on the media thread (keep it quick),
        instead of queueing it for read_frame: first the frames queued since the last read (queued=True),
        then each one as it arrives (False). Returns the function that stops it. One sink at a time."""
        with self._condition:
            if self._sink is not None:
                raise RuntimeError("frames are already streamed to another sink")
            while self._frames:
                sink(self._frames.popleft(), True)
            self._sink = sink

        def stop() -> None:
            with self._condition:
                if self._sink is sink:
                    self._sink = None
        return stop

    def write_frame(self, pcm: bytes) -> None:
        """Queue audio to the caller (normally 20 ms; longer PCM is cut into frames)."""
        if self._ended:
            raise CallEnded()
        self._outgoing.queue_pcm(pcm)

    def next_digit(self, timeout: float, *, until: Callable[[], bool] | None = None) -> str | None:
        """The oldest digit not yet taken, waiting up to `timeout` seconds, or less: None as soon as
        `until()` holds (checked on the media thread after each frame went to a stream_frames sink, so a
        listener that found the end of speech wakes this thread). Digits pressed before the hang-up are
        still handed out, then CallEnded."""
        return self._take(self._digits, timeout, until)

    def _take(self, queue: deque, timeout: float, until: Callable[[], bool] | None = None) -> Any:
        """The oldest item of `queue`, waiting up to `timeout` seconds (None then, or once `until()`);
        what arrived before the hang-up is still handed out, after that CallEnded."""
        deadline = time.monotonic() + timeout
        waits_for_frames = queue is self._frames
        with self._condition:
            while not queue:
                if self._ended:
                    raise CallEnded()
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (until is not None and until()):
                    return None
                self._frame_waiters += waits_for_frames
                self._wake_when = until
                try:
                    self._condition.wait(remaining)
                finally:
                    self._frame_waiters -= waits_for_frames
                    self._wake_when = None
            return queue.popleft()

    def play(self, audio: str | pathlib.Path | AudioSegment | bytes, *, barge_in: bool = True) -> str | None:
        """Play a prompt to the end; with `barge_in`, a key press stops it and that digit is returned (it stays
        queued for next_digit/collect_digits)."""
        pcm = to_pcm(audio)
        position, chunk = 0, PLAYBACK_LEAD_FRAMES * FRAME_BYTES
        with self._condition:
            self._barge_in_playing = barge_in
            try:
                while True:
                    if self._ended:
                        raise CallEnded()
                    if barge_in and self._digits:
                        self._outgoing.clear_outgoing()  # normally done already by deliver_digit
                        return self._digits[0]
                    queued = self._outgoing.queued_frames
                    if position >= len(pcm) and queued == 0:
                        return None
                    if position < len(pcm) and queued * FRAME_BYTES < chunk:
                        room = chunk - queued * FRAME_BYTES
                        self._outgoing.queue_pcm(pcm[position:position + room])
                        position += room
                        queued = self._outgoing.queued_frames
                    # Woken by output_low (half the lead sent, or all of it), a digit or the end of the call.
                    self._condition.wait(queued * FRAME_SECONDS + PLAYBACK_WAIT_MARGIN)
            finally:
                self._barge_in_playing = False

    def collect_digits(self, *, max_digits: int, first_digit_timeout: float = 5.0,
                       inter_digit_timeout: float = 3.0, terminator: str | None = "#") -> str:
        """Up to `max_digits` digits; stops at the terminator (not included) or when the caller pauses too long.
        CallEnded carries the digits gathered so far in `collected`."""
        if max_digits < 1:
            raise ValueError(f"max_digits must be at least 1, got {max_digits}")
        collected = ""
        while len(collected) < max_digits:
            try:
                digit = self.next_digit(first_digit_timeout if not collected else inter_digit_timeout)
            except CallEnded:
                raise CallEnded(collected=collected) from None
            if digit is None or digit == terminator:
                break
            collected += digit
        return collected

    def hangup(self) -> None:
        """End the call from our side (BYE); harmless when it already ended (or is ending)."""
        try:
            if self._ending_thread is None:
                self._send_hangup()
        finally:
            self.mark_ended()
