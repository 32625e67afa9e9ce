"""recordings.wav_writer: layout by date and call id, valid WAV after close, writes after close ignored,
and recording a session through its tap (a minimal session double: recordings knows no ivr)."""
from __future__ import annotations

import wave
from datetime import datetime, timedelta, timezone

from recordings.wav_writer import WavRecording, record_caller, recording_path


def test_layout_is_by_utc_date_and_a_file_safe_call_id(tmp_path):
    started = datetime(2026, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=8)))  # still 28 Feb in UTC
    assert recording_path(tmp_path, "a84b4c76e66710@pc33.example/x", started) == \
        tmp_path / "2026" / "02" / "28" / "173000-a84b4c76e66710_pc33.example_x.wav"


def test_a_repeated_call_id_never_overwrites_an_earlier_recording(tmp_path):
    path = recording_path(tmp_path, "4b22@127.0.0.1", datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc))
    first, second = WavRecording(path), WavRecording(path)
    first.close()
    second.close()
    assert (first.path, second.path) == (path, path.with_name(path.stem + "-2.wav"))


def test_file_is_valid_after_close_and_later_frames_are_ignored(tmp_path):
    recording = WavRecording(tmp_path / "a" / "call.wav")
    frame = (1234).to_bytes(2, "little", signed=True) * 160
    for _ in range(50):
        recording.write(frame)
    recording.close()
    recording.write(frame)  # the media thread flushing after the hang-up
    recording.close()
    with wave.open(str(recording.path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()) == (1, 2, 8000, 8000)
        assert wav.readframes(160) == frame


class SessionDouble:
    def __init__(self) -> None:
        self.call_id = "call-7"
        self.started_at = datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc)
        self.recording_path = None
        self.taps = []
        self.end_callbacks = []

    def add_tap(self, callback):
        self.taps.append(callback)

    def on_end(self, callback):
        self.end_callbacks.append(callback)


def test_record_caller_taps_the_session_and_closes_when_it_ends(tmp_path):
    session = SessionDouble()
    recording = record_caller(session, tmp_path)
    assert session.recording_path == str(tmp_path / "2026" / "11" / "29" / "090000-call-7.wav")
    for value in range(10):
        session.taps[0](value.to_bytes(2, "little") * 160)
    session.end_callbacks[0](session)
    assert recording.closed
    with wave.open(session.recording_path, "rb") as wav:
        assert wav.getnframes() == 1600
