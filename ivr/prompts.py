"""Prompts synthesised once with espeak-ng and cached as 8 kHz 16-bit mono WAV files.

The cache key is a hash of voice, speed and text, so changing a prompt's wording makes a new file and a
recorded WAV placed at `override_dir/<name>.wav` wins over synthesis (DESIGN.md §4).
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
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
            self._synthesize(text, voice, words_per_minute, path)
        return path

    @staticmethod
    def _synthesize(text: str, voice: str, words_per_minute: int, path: Path) -> None:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise PromptError("espeak-ng is not installed (Debian package espeak-ng); cannot synthesise prompts")
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = path.with_suffix(".espeak.wav")
        result = subprocess.run([binary, "-v", voice, "-s", str(words_per_minute), "-w", str(raw), text],
                                capture_output=True, check=False, timeout=60)
        if result.returncode != 0 or not raw.is_file():
            raise PromptError(f"espeak-ng failed for voice {voice!r}: {result.stderr.decode(errors='replace')}")
        segment = AudioSegment.from_file(raw).set_frame_rate(SAMPLE_RATE).set_channels(1).set_sample_width(2)
        temporary = path.with_suffix(".partial.wav")
        segment.export(temporary, format="wav")
        temporary.replace(path)  # atomic: concurrent calls never read half a file
        raw.unlink(missing_ok=True)
