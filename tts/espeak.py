"""Prompts synthesised once with espeak-ng and cached as 8 kHz 16-bit mono WAV files.

`synthesize` is the one place that runs espeak-ng for the project (the call flows' prompt library uses it
too, adding its per-language voices and pinyin).

The cache key is a hash of voice, speed and text, so changing a prompt's wording makes a new file and a
recorded WAV placed at `override_dir/<name>.wav` wins over synthesis (DESIGN.md §4).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pydub import AudioSegment

SAMPLE_RATE = 8000


class PromptError(RuntimeError):
    """A prompt could not be produced (espeak-ng missing or failing)."""


class PromptCache:
    def __init__(self, cache_dir: str | Path, override_dir: str | Path | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.override_dir = Path(override_dir) if override_dir else None

    def get(self, name: str, text: str, voice: str = "en", words_per_minute: int = 150) -> Path:
        """The WAV for prompt `name`: the recorded override if present, else the cached synthesis."""
        if self.override_dir is not None:
            recorded = self.override_dir / f"{name}.wav"
            if recorded.is_file():
                return recorded
        key = hashlib.sha256(f"{voice}|{words_per_minute}|{text}".encode()).hexdigest()[:16]
        path = self.cache_dir / f"{name}-{key}.wav"
        if not path.is_file():
            synthesize(text, voice, words_per_minute, path)
        return path


def synthesize(text: str, voice: str, words_per_minute: int, target: Path) -> None:
    """Speak `text` with espeak-ng into `target` as 8 kHz 16-bit mono WAV. Written through a private scratch
    folder and renamed, so concurrent calls asking for the same prompt never see half a file."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise PromptError("espeak-ng is not installed (Debian package espeak-ng); cannot synthesise prompts")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        raw, converted = Path(scratch) / "espeak.wav", Path(scratch) / "8k.wav"
        result = subprocess.run([binary, "-v", voice, "-s", str(words_per_minute), "-w", str(raw), "--", text],
                                capture_output=True, check=False, timeout=60)
        if result.returncode != 0 or not raw.is_file():
            raise PromptError(f"espeak-ng failed for voice {voice!r}: {result.stderr.decode(errors='replace')}")
        segment = AudioSegment.from_file(raw).set_frame_rate(SAMPLE_RATE).set_channels(1).set_sample_width(2)
        segment.export(converted, format="wav")
        os.replace(converted, target)
