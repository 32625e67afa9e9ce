"""Real Vosk on real (espeak-ng) Korean speech. The model (~0.5 GB) is loaded once per test session through
the process-wide registry, so the CLI tested in-process shares it."""

from __future__ import annotations

import audioop
import shutil
import subprocess
from pathlib import Path

import pytest

import asr
from pcm import read_wav



@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> asr.ModelRegistry:
    settings = asr.AsrSettings(models_dir=tmp_path_factory.mktemp("models"),
                               cache_dir=tmp_path_factory.mktemp("asr-cache"))
    registry = asr.configure(settings)
    registry.model("ko")
    return registry


@pytest.fixture(scope="session")
def ko_model(registry):
    return registry.model("ko")


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is needed for speech tests (Debian package espeak-ng)")
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def speak(speech_dir):
    """speak(text) -> path of espeak-ng's WAV (22.05 kHz) of `text` in Korean."""
    made: dict[str, Path] = {}

    def synthesise(text: str) -> Path:
        if text not in made:
            path = speech_dir / f"utt{len(made)}.wav"
            subprocess.run(["espeak-ng", "-v", "ko", text, "-w", str(path)], check=True)
            made[text] = path
        return made[text]
    return synthesise


@pytest.fixture(scope="session")
def phone_path():
    """phone_path(pcm) -> what the IVR hands to ASR after the wire: G.711 mu-law encode and decode, 16-bit."""
    return lambda pcm: audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2)


@pytest.fixture(scope="session")
def word_pcm(speak):
    """word_pcm(word) -> 8 kHz 16-bit PCM of the word, decoded directly (no G.711)."""
    return lambda word: read_wav(speak(word))
