"""The project's one audio contract: 16-bit signed little-endian mono PCM at 8 kHz in 20 ms frames.

Every package may import this module (ivr, asr, recordings, tts, tickets, callflows, app): it is a leaf with
no project imports, so it adds no edge between packages; it only states the format they already share.
Conversion to other formats happens at the edges (G.711 on the wire in ivr, the model's rate in asr,
compressed formats for storage in recordings); everything between them is this PCM.

`read_wav` and `write_wav` are the one-shot WAV helpers (a call's streaming recording is
recordings.wav_writer's); `to_pcm` turns anything playable (a sound file, a pydub segment, raw PCM) into
the format.
"""
from __future__ import annotations

import audioop
import pathlib
import wave
from pathlib import Path

from pydub import AudioSegment

SAMPLE_RATE = 8000  # Hz: the telephone band, G.711's rate
SAMPLE_WIDTH = 2  # bytes per sample: 16-bit signed little-endian
FRAME_SECONDS = 0.020  # one RTP packet's worth (ptime 20)
FRAME_SAMPLES = 160  # samples in one frame: SAMPLE_RATE * FRAME_SECONDS
FRAME_BYTES = FRAME_SAMPLES * SAMPLE_WIDTH  # 320
SILENCE_FRAME = bytes(FRAME_BYTES)


class AudioFileError(ValueError):
    """A file that is missing, empty, not audio, or not at the sample rate required; the message names it."""


def read_wav(path: str | Path, *, rate: int = SAMPLE_RATE, require_rate: bool = False) -> bytes:
    """The file's audio as 16-bit mono PCM at `rate` Hz (resampled unless `require_rate`).

    The stdlib `wave` + `audioop` read PCM WAVs of any rate, width and channel count, which is what call
    recordings and espeak-ng produce; other formats go through `to_pcm`."""
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


def write_wav(path: str | Path, pcm: bytes, *, rate: int = SAMPLE_RATE) -> Path:
    """Store 16-bit mono PCM as a WAV file (folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return path


def frames(pcm: bytes, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    """Split PCM into 20 ms frames (the last one may be short), as a call delivers it."""
    return [pcm[i:i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]


def seconds(pcm: bytes, rate: int = SAMPLE_RATE) -> float:
    """How long `pcm` (16-bit mono at `rate`) plays."""
    return len(pcm) / SAMPLE_WIDTH / rate


def to_pcm(audio: str | pathlib.Path | AudioSegment | bytes) -> bytes:
    """Anything playable → 8 kHz 16-bit mono PCM: a sound file in any format ffmpeg reads, a pydub segment,
    or bytes, which are taken as that PCM already."""
    if isinstance(audio, (bytes, bytearray, memoryview)):
        pcm = bytes(audio)
        if len(pcm) % SAMPLE_WIDTH:
            raise ValueError("raw PCM must be 16-bit samples (an even number of bytes)")
        return pcm
    if isinstance(audio, (str, pathlib.Path)):
        path = pathlib.Path(audio)
        if not path.is_file():
            raise FileNotFoundError(f"audio file not found: {path}")
        segment = AudioSegment.from_file(path)
    elif isinstance(audio, AudioSegment):
        segment = audio
    else:
        raise TypeError(f"cannot play {type(audio).__name__}: give a path, an AudioSegment or PCM bytes")
    return segment.set_frame_rate(SAMPLE_RATE).set_channels(1).set_sample_width(SAMPLE_WIDTH).raw_data
