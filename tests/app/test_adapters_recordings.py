"""WavRecordings (the `Recordings` port): utterances land as real WAV files beside the call's recording."""
from __future__ import annotations

import struct
import wave
from datetime import datetime, timezone
from pathlib import Path

from app.adapters.recordings_adapter import WavRecordings

WHEN = datetime(2026, 11, 29, 1, 30, tzinfo=timezone.utc)


def tone(samples: int) -> bytes:
    return struct.pack(f"<{samples}h", *[(n * 97) % 20000 - 10000 for n in range(samples)])


def test_an_utterance_is_kept_as_8_khz_wav_beside_the_call_recording(tmp_path):
    recordings = WavRecordings(tmp_path, clock=lambda: WHEN)
    pcm = tone(8000)

    ref = recordings.save("a84b@10.0.0.1", "request", pcm)

    assert Path(ref) == tmp_path / "2026" / "11" / "29" / "013000-a84b_10.0.0.1-request-1.wav"
    with wave.open(ref, "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        assert wav.readframes(wav.getnframes()) == pcm


def test_asking_again_keeps_every_answer(tmp_path):
    recordings = WavRecordings(tmp_path, clock=lambda: WHEN)

    first = recordings.save("call-1", "name", tone(160))
    second = recordings.save("call-1", "name", tone(320))

    assert (Path(first).name, Path(second).name) == ("013000-call-1-name-1.wav", "013000-call-1-name-2.wav")
    with wave.open(first, "rb") as wav:
        assert wav.getnframes() == 160
    with wave.open(second, "rb") as wav:
        assert wav.getnframes() == 320


def test_a_label_cannot_leave_the_recordings_folder(tmp_path):
    ref = WavRecordings(tmp_path, clock=lambda: WHEN).save("call-1", "../../etc/x", tone(160))

    assert Path(ref).parent == tmp_path / "2026" / "11" / "29"
    assert Path(ref).name == "013000-call-1-.._.._etc_x-1.wav"
