"""The `Recordings` port over recordings/: one WAV file per utterance or message the flow keeps.

Files sit beside the call's full recording (recordings.wav_writer.recording_path), named
`<HHMMSS>-<call id>-<label>-<n>.wav` (the time the answer was saved), so an operator finds a call's pieces together; `n` counts up because a flow
may ask the same question again after a retry and every answer is kept.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from recordings.wav_writer import WavRecording, recording_path


class WavRecordings:
    """`callflows.ports.Recordings` writing 8 kHz 16-bit WAV files under `root` (the server's recordings_dir).
    The returned reference is the file's path, as the call's own recording is referenced."""

    def __init__(self, root: str | Path, *, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.root = Path(root)
        self.clock = clock

    def save(self, call_id: str, label: str, pcm: bytes) -> str:
        call_file = recording_path(self.root, call_id, self.clock())
        safe_label = re.sub(r"[^A-Za-z0-9._-]", "_", label) or "audio"
        path = next(candidate for n in range(1, 10_000)
                    if not (candidate := call_file.with_name(f"{call_file.stem}-{safe_label}-{n}.wav")).exists())
        recording = WavRecording(path)
        try:
            recording.write(pcm)
        finally:
            recording.close()
        return str(path)
