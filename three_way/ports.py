"""What three_way needs from the rest of the system, stated as small Protocols (structural typing).

three_way is an edge: it imports neither ivr nor tickets nor callflows. The composition hands it objects that
have these methods: ivr.session.CallSession is a `LegSession`, ivr.node.IvrNode a `Dialler` (its
`media_clock` a `MediaClock`), tickets.calendar.WorkingCalendar a `WorkingDays`, and a recordings WAV file a
`RecordingSink`. The seat directory (`SeatDirectory`) is read from the member-unit records by the composition.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Protocol

Audio = str | Path | bytes
"""A prompt as LegSession.play takes it: a sound file, or 16-bit 8 kHz mono PCM."""


class LegSession(Protocol):
    """One call taking part in a conference (ivr.session.CallSession fits). Blocking methods raise the
    session's own call-ended exception, which three_way's classes are given as `call_ended`."""

    call_id: str

    @property
    def ended(self) -> bool: ...

    def add_tap(self, callback: Callable[[bytes], None]) -> None:
        """`callback(frame)` for every 20 ms frame the party says, on the media thread."""
        ...

    def remove_tap(self, callback: Callable[[bytes], None]) -> None: ...

    def on_end(self, callback: Callable[[Any], None]) -> None:
        """`callback(session)` once, when either side hung up."""
        ...

    def write_frame(self, pcm: bytes) -> None:
        """Queue 20 ms for the party to hear; raises the call-ended exception once the call is over."""
        ...

    def read_frame(self, timeout: float = 1.0) -> bytes | None: ...

    def next_digit(self, timeout: float) -> str | None: ...

    def play(self, audio: Audio, *, barge_in: bool = True) -> str | None: ...

    def hangup(self) -> None: ...


class MediaClock(Protocol):
    """The node's 20 ms media clock (ivr.media.MediaEngine): tickers run on the media thread every tick,
    after the tick's received audio was delivered and before anything is sent."""

    def add_ticker(self, callback: Callable[[], None]) -> None: ...

    def remove_ticker(self, callback: Callable[[], None]) -> None: ...


class DialOutcome(Protocol):
    """ivr.node.DialResult fits: status is answered | busy | no_answer | failed."""

    status: str
    session: LegSession | None


class Dialler(Protocol):
    """Places outgoing calls (ivr.node.IvrNode fits); setting `cancel` stops the ringing at once."""

    def dial(self, number: str, timeout: float = 30.0, *,
             cancel: threading.Event | None = None) -> DialOutcome: ...


class RecordingSink(Protocol):
    """One open recording (recordings.wav_writer.WavRecording fits): `write` is called on the media thread
    and `close` from another, so both must be thread-safe, and a write after close ignored."""

    path: Path

    def write(self, pcm: bytes) -> None: ...

    def close(self) -> None: ...


RecordingFactory = Callable[[str], RecordingSink]
"""Opens the recording labelled 'mixed' or a leg's id, for one conference."""


class WorkingDays(Protocol):
    """The statutory calendar with make-up working days (tickets.calendar.WorkingCalendar fits)."""

    def is_working_day(self, day: date) -> bool: ...
