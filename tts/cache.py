"""Synthesised prompts kept on disk as 8 kHz 16-bit mono WAV files, one per (voice, speed, text).

The file name is a hash of what was synthesised, so rewording a prompt makes a new file and an old one is
never played for new text; the folder is safe to delete (everything is synthesised again on demand).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from pcm import write_wav

from .espeak import speak


class PromptCache:
    """`get` returns the cached WAV of a text, synthesising it with espeak-ng the first time."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.cache_dir = Path(cache_dir)

    def path(self, text: str, voice: str, words_per_minute: int) -> Path:
        """Where the WAV of `text` in `voice` at `words_per_minute` is (or will be) kept."""
        key = hashlib.sha256(f"{voice}\0{words_per_minute}\0{text}".encode()).hexdigest()
        return self.cache_dir / f"{key[:32]}.wav"

    def get(self, text: str, voice: str, words_per_minute: int) -> Path:
        target = self.path(text, voice, words_per_minute)
        if not target.is_file():
            pcm = speak(text, voice, words_per_minute)
            # Written in a private scratch folder and renamed: calls asking for the same prompt at once
            # never see half a file.
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
                os.replace(write_wav(Path(scratch) / target.name, pcm), target)
        return target

    def keep_only(self, keep: set[Path]) -> int:
        """Delete every cached WAV but `keep` (a node keeps its flows' fixed prompts: whatever else an older
        version cached, such as prompts with callers' numbers in them, goes). Returns how many went."""
        kept = {path.resolve() for path in keep}
        gone = 0
        for path in self.cache_dir.glob("*.wav"):
            if path.resolve() not in kept:
                path.unlink(missing_ok=True)
                gone += 1
        return gone
