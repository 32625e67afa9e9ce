"""Per-call WAV files of one leg, fed 20 ms frames by a session's recording tap.

Layout: <root>/<YYYY>/<MM>/<DD>/<call id>.wav (UTC date of the call's start), 8 kHz 16-bit mono PCM.
Frames arrive on the media thread while the hang-up may close the file from another thread, so writes and
close share a lock and frames after close are ignored: the file on disk is always a valid, finished WAV.
"""
from __future__ import annotations

import re
import threading
import wave
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Protocol

from pcm import SAMPLE_RATE, SAMPLE_WIDTH


def recording_path(root: str | Path, call_id: str, started: datetime) -> Path:
    """Where a call's recording lives: <root>/YYYY/MM/DD/<HHMMSS>-<call id>.wav (UTC). The node's call ids
    are uuid4 hex; any other id is made file-name safe (a SIP Call-ID holds '@', '/'), and a name already
    taken gets a suffix (WavRecording), so no recording is ever overwritten whatever id a caller brings."""
    moment = started.astimezone(timezone.utc)
    safe_id = re.sub(r"[^A-Za-z0-9._-]", "_", call_id).strip(".") or "call"
    return Path(root) / f"{moment:%Y}" / f"{moment:%m}" / f"{moment:%d}" / f"{moment:%H%M%S}-{safe_id}.wav"


def _unused(path: Path) -> Path:
    """`path`, or path-2, path-3... when a recording of that name exists: never overwrite another call."""
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


class WavRecording:
    """An open WAV file of one call leg. `write(frame)` appends PCM; `close()` finalises the header."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = _unused(path)
        self._lock = threading.Lock()
        self._file = open(self.path, "xb")  # x: fail rather than overwrite another call's recording
        self._wave = wave.open(self._file, "wb")
        self._wave.setnchannels(1)
        self._wave.setsampwidth(SAMPLE_WIDTH)
        self._wave.setframerate(SAMPLE_RATE)
        self.frames_written = 0
        self.closed = False

    def write(self, pcm: bytes) -> None:
        with self._lock:
            if self.closed:
                return  # the media thread may still flush a frame after the hang-up closed the file
            self._wave.writeframesraw(pcm)
            self.frames_written += len(pcm) // SAMPLE_WIDTH

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self._wave.close()  # writes the final sizes into the header
                self._file.close()  # wave does not close a file object it was given


class TappableSession(Protocol):
    """The part of a call session a recorder uses (ivr.session.CallSession fits; recordings does not import
    ivr)."""

    call_id: str
    started_at: datetime | None
    recording_path: str | None

    def add_tap(self, callback: Callable[[bytes], None]) -> None: ...
    def on_end(self, callback: Callable[..., None]) -> None: ...


def record_caller(session: TappableSession, root: str | Path) -> WavRecording:
    """Record what the caller says for the whole call; the file is closed when the call ends."""
    recording = WavRecording(recording_path(root, session.call_id, session.started_at or datetime.now(timezone.utc)))
    session.recording_path = str(recording.path)
    session.add_tap(recording.write)
    session.on_end(lambda _session: recording.close())
    return recording
