"""Reading WAV files into the project's audio format (16-bit signed mono PCM) at a chosen rate.

The stdlib `wave` + `audioop` cover PCM WAVs of any rate, width and channel count; that is what call
recordings and espeak-ng produce. Errors say which file and what is wrong with it.
"""

from __future__ import annotations

import audioop
import wave
from pathlib import Path

from .errors import AudioFileError

PHONE_RATE = 8000
SAMPLE_WIDTH = 2
FRAME_BYTES = 320  # 20 ms of 8 kHz 16-bit mono


def read_wav(path: str | Path, *, rate: int = PHONE_RATE, require_rate: bool = False) -> bytes:
    """Return the file's audio as 16-bit mono PCM at `rate` Hz, resampling unless `require_rate`."""
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioFileError(f"{path}: empty file")
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, file_rate, n_frames = (
                wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes())
            data = wav.readframes(n_frames)
    except (wave.Error, EOFError) as exc:
        raise AudioFileError(f"{path}: not a PCM WAV file ({exc})") from exc
    if not data:
        raise AudioFileError(f"{path}: WAV file holds no audio")
    if require_rate and file_rate != rate:
        raise AudioFileError(f"{path}: sample rate {file_rate} Hz, expected {rate} Hz")
    if width == 1:
        data = audioop.bias(data, 1, -128)  # 8-bit WAV is unsigned
    if width != SAMPLE_WIDTH:
        data = audioop.lin2lin(data, width, SAMPLE_WIDTH)
    if channels == 2:
        data = audioop.tomono(data, SAMPLE_WIDTH, 0.5, 0.5)
    elif channels != 1:
        raise AudioFileError(f"{path}: {channels} channels, only mono or stereo are read")
    if file_rate != rate:
        data, _ = audioop.ratecv(data, SAMPLE_WIDTH, 1, file_rate, rate, None)
    return data


def frames(pcm: bytes, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    """Split PCM into 20 ms frames (the last one may be short), as a call delivers it."""
    return [pcm[i:i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]
