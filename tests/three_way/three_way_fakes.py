"""Fakes of the interfaces three_way states (three_way.ports), for unit tests of its logic: a media clock
ticked by hand, sessions whose audio and keys the test scripts, recordings kept in memory, a dialler that
answers from a script. The real ones (ivr.node, ivr.session) are used by the SIP tests."""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FRAME_BYTES = 320


class FakeCallEnded(Exception):
    pass


class ManualClock:
    """MediaClock whose ticks the test drives (`tick(n)`), like the media thread would every 20 ms."""

    def __init__(self) -> None:
        self.tickers: list[Callable[[], None]] = []

    def add_ticker(self, callback: Callable[[], None]) -> None:
        self.tickers.append(callback)

    def remove_ticker(self, callback: Callable[[], None]) -> None:
        self.tickers = [t for t in self.tickers if t != callback]

    def tick(self, count: int = 1) -> None:
        for _ in range(count):
            for ticker in list(self.tickers):
                ticker()


class FakeSession:
    """LegSession: `say(frame)` is the party speaking (delivered to taps), `heard` what it was sent."""

    def __init__(self, call_id: str = "call", caller: str = "1001") -> None:
        self.call_id = call_id
        self.caller = caller
        self.heard: list[bytes] = []
        self.played: list[Any] = []
        self.taps: list[Callable[[bytes], None]] = []
        self.end_callbacks: list[Callable[[Any], None]] = []
        self.frames: deque[bytes] = deque()
        self.digits: deque[str] = deque()
        self.hangups = 0
        self._ended = False
        self._condition = threading.Condition()
        self.on_play: Callable[[Any], str | None] = lambda audio: None

    @property
    def ended(self) -> bool:
        return self._ended

    def add_tap(self, callback: Callable[[bytes], None]) -> None:
        self.taps.append(callback)

    def remove_tap(self, callback: Callable[[bytes], None]) -> None:
        self.taps = [t for t in self.taps if t != callback]

    def on_end(self, callback: Callable[[Any], None]) -> None:
        self.end_callbacks.append(callback)

    def say(self, frame: bytes) -> None:
        for tap in list(self.taps):
            tap(frame)
        self.frames.append(frame)

    def press(self, digit: str) -> None:
        with self._condition:
            self.digits.append(digit)
            self._condition.notify_all()

    def write_frame(self, pcm: bytes) -> None:
        if self._ended:
            raise FakeCallEnded()
        self.heard.append(pcm)

    def read_frame(self, timeout: float = 1.0) -> bytes | None:
        if self.frames:
            return self.frames.popleft()
        if self._ended:
            raise FakeCallEnded()
        return None

    def next_digit(self, timeout: float) -> str | None:
        with self._condition:
            if not self.digits and not self._ended:
                self._condition.wait(timeout)
            if self.digits:
                return self.digits.popleft()
            if self._ended:
                raise FakeCallEnded()
            return None

    def play(self, audio: Any, *, barge_in: bool = True) -> str | None:
        if self._ended:
            raise FakeCallEnded()
        self.played.append(audio)
        return self.on_play(audio)

    def hang_up_remote(self) -> None:
        """The party hangs up."""
        if self._ended:
            return
        with self._condition:
            self._ended = True
            self._condition.notify_all()
        for callback in self.end_callbacks:
            callback(self)

    def hangup(self) -> None:
        self.hangups += 1
        self.hang_up_remote()


@dataclass
class MemoryRecording:
    path: Path
    data: bytearray = field(default_factory=bytearray)
    closed: bool = False

    def write(self, pcm: bytes) -> None:
        if not self.closed:
            self.data += pcm

    def close(self) -> None:
        self.closed = True


class MemoryRecordings:
    """RecordingFactory keeping every recording in memory, by label."""

    def __init__(self) -> None:
        self.opened: dict[str, MemoryRecording] = {}

    def __call__(self, label: str) -> MemoryRecording:
        recording = MemoryRecording(Path(f"/memory/{label}.wav"))
        self.opened[label] = recording
        return recording


@dataclass
class Dialled:
    status: str
    session: FakeSession | None = None
    sip_status: int | None = None


class ScriptedDialler:
    """Dialler answering each number from `script` (number -> status, or a FakeSession for 'answered');
    `ring_seconds` of waiting can be cut short by `cancel`."""

    def __init__(self, script: dict[str, str | FakeSession], ring_seconds: float = 0.0) -> None:
        self.script = script
        self.ring_seconds = ring_seconds
        self.dialled: list[str] = []

    def dial(self, number: str, timeout: float = 30.0, *, cancel: threading.Event | None = None) -> Dialled:
        self.dialled.append(number)
        if self.ring_seconds and cancel is not None and cancel.wait(self.ring_seconds):
            return Dialled("no_answer")
        answer = self.script.get(number, "failed")
        if isinstance(answer, FakeSession):
            return Dialled("answered", answer, 200)
        return Dialled(answer)


def constant(value: int) -> bytes:
    return np.full(FRAME_BYTES // 2, value, dtype="<i2").tobytes()


def first_sample(frame: bytes) -> int:
    return int(np.frombuffer(frame[:2], dtype="<i2")[0])


def wait_for(condition: Callable[[], object], timeout: float = 15.0) -> bool:
    """Poll `condition` until true (True) or `timeout` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False
