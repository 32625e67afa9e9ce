"""Audio the simulated caller speaks and hears: loading, synthesis, similarity.

Everything is the project's internal format (pcm: 16-bit signed LE mono PCM at 8 kHz); conversion happens
here, at the tester's edge. `similarity` is how tests prove a *specific* prompt was heard (normalised
cross-correlation), not merely that some sound arrived. Speech comes from the project's one espeak-ng
runner (tts): the simulated caller is a tool beside the telephony edge, not part of its protocol modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import tts
from pcm import FRAME_BYTES, FRAME_SECONDS, SAMPLE_RATE, to_pcm


def load_audio(path: str | Path) -> bytes:
    """A sound file in any format ffmpeg/pydub reads, as 8 kHz 16-bit mono PCM."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        return to_pcm(path)
    except Exception as exc:  # pydub raises CouldntDecodeError, IndexError... for bad files
        raise ValueError(f"cannot decode audio file {path}: {exc}") from exc


def synthesize(text: str, voice: str = "en", words_per_minute: int = 160) -> bytes:
    """Text spoken by espeak-ng, as 8 kHz 16-bit mono PCM (the caller's 'microphone' in tests)."""
    return tts.speak(text, voice, words_per_minute)


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


def voiced_seconds(pcm: bytes, threshold: float = 300.0) -> float:
    """Seconds of 20 ms frames louder than `threshold` RMS (silence and comfort noise stay below)."""
    frames = len(pcm) // FRAME_BYTES
    if frames == 0:
        return 0.0
    samples = np.frombuffer(pcm[: frames * FRAME_BYTES], dtype="<i2").astype(np.float64).reshape(frames, -1)
    loud = np.sqrt(np.mean(samples**2, axis=1)) > threshold
    return float(loud.sum()) * FRAME_SECONDS


@dataclass(frozen=True)
class Match:
    similarity: float  # normalised cross-correlation at the best offset, 0..1 (1 = identical shape)
    offset_seconds: float  # where the reference starts inside the heard audio


def similarity(heard: bytes, reference: bytes) -> Match:
    """Best normalised cross-correlation of `reference` anywhere inside `heard` (both 8 kHz 16-bit PCM).

    G.711 round trips keep it above ~0.95 for the same audio; unrelated speech stays well below 0.3.
    """
    x = np.frombuffer(heard[: len(heard) // 2 * 2], dtype="<i2").astype(np.float64)
    y = np.frombuffer(reference[: len(reference) // 2 * 2], dtype="<i2").astype(np.float64)
    if y.size == 0 or x.size < y.size:
        return Match(0.0, 0.0)
    y = y - y.mean()
    y_norm = np.linalg.norm(y)
    if y_norm == 0:
        return Match(0.0, 0.0)
    size = 1 << int(np.ceil(np.log2(x.size + y.size)))
    correlation = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(y, size)), size)[: x.size - y.size + 1]
    # Energy of every window of `heard` the reference could align with (mean removed per window).
    cumsum = np.concatenate(([0.0], np.cumsum(x)))
    cumsum_sq = np.concatenate(([0.0], np.cumsum(x * x)))
    n = y.size
    window_sum = cumsum[n:] - cumsum[:-n]
    window_energy = np.maximum(cumsum_sq[n:] - cumsum_sq[:-n] - window_sum**2 / n, 1e-9)
    scores = correlation / (np.sqrt(window_energy) * y_norm)
    best = int(np.argmax(scores))
    return Match(float(scores[best]), best / SAMPLE_RATE)


def tone_share(pcm: bytes, hz: float, bandwidth: float = 15.0) -> float:
    """Share (0..1) of the audio's energy within `bandwidth` Hz of `hz`, by FFT (Hann window).

    How tests tell which phones' tones a recording holds: a party's own tone absent (< 0.01), each other
    party's present (a few tenths when three tones share the audio)."""
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
    if x.size < 2 or not x.any():
        return 0.0
    power = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(x.size))) ** 2
    frequencies = np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE)
    total = power.sum()
    return float(power[np.abs(frequencies - hz) <= bandwidth].sum() / total) if total else 0.0
