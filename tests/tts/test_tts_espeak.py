"""The one espeak-ng runner and the prompt cache, with the real espeak-ng."""
from __future__ import annotations

import subprocess
import wave

import pytest

from pcm import read_wav
from tts import PromptCache, SynthesisError, speak


def test_speech_comes_as_8khz_16bit_pcm_of_plausible_length():
    pcm = speak("Press one for water.", "en", 160)
    assert len(pcm) % 2 == 0 and 0.8 < len(pcm) / 16000 < 5


def test_an_unknown_voice_is_a_clear_error():
    with pytest.raises(SynthesisError, match="espeak-ng failed for voice 'xx-nowhere'"):
        speak("hello", "xx-nowhere", 160)


def test_text_starting_with_a_dash_is_spoken_not_taken_as_an_option():
    assert len(speak("-h", "en", 160)) > 1600


def test_the_cache_synthesises_once_per_voice_speed_and_text(tmp_path, monkeypatch):
    cache = PromptCache(tmp_path)
    first = cache.get("Goodbye.", "en", 150)
    with wave.open(str(first)) as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
    assert read_wav(first, require_rate=True) == speak("Goodbye.", "en", 150)
    assert cache.path("Goodbye.", "en", 170) != first and cache.path("Goodbye!", "en", 150) != first

    def no_more_processes(*args, **kwargs):
        raise AssertionError("espeak-ng ran again for a cached prompt")

    monkeypatch.setattr(subprocess, "run", no_more_processes)
    assert PromptCache(tmp_path).get("Goodbye.", "en", 150) == first
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no scratch files left behind
