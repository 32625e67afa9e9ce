"""Audio helpers of the softphone: loading any format, espeak-ng synthesis, similarity that tells prompts apart."""

from __future__ import annotations

import subprocess
import wave

import pytest

from ivr import g711
from ivr.softphone.audio import load_audio, similarity, synthesize, voiced_seconds
from pcm import write_wav


@pytest.fixture(scope="module")
def greeting() -> bytes:
    return synthesize("Welcome to the city service hotline. Press one for water, two for heating.")


def test_synthesis_is_8khz_16bit_speech(greeting):
    assert len(greeting) % 2 == 0
    assert 2.0 < len(greeting) / 16000 < 10.0
    assert voiced_seconds(greeting) > 1.5


def test_same_prompt_after_g711_and_delay_matches_at_the_right_offset(greeting):
    heard = bytes(8000 * 2) + g711.decode_pcma(g711.encode_pcma(greeting)) + bytes(4000)
    match = similarity(heard, greeting)
    assert match.similarity > 0.95
    assert match.offset_seconds == pytest.approx(1.0, abs=0.01)


def test_a_different_sentence_does_not_match(greeting):
    other = synthesize("Your ticket number is four five six. Goodbye.")
    assert similarity(other + bytes(len(greeting)), greeting).similarity < 0.5


def test_silence_never_matches(greeting):
    assert similarity(bytes(len(greeting) * 2), greeting).similarity < 0.1


def test_loads_other_formats_as_8khz_mono(tmp_path, greeting):
    source = tmp_path / "in.wav"
    write_wav(source, greeting)
    converted = tmp_path / "stereo44.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(source), "-ar", "44100", "-ac", "2", str(converted)],
                   check=True)
    pcm = load_audio(converted)
    assert abs(len(pcm) - len(greeting)) < 8000 * 2 * 0.2  # mp3 padding only
    assert similarity(pcm, greeting[16000:-16000]).similarity > 0.8


def test_written_wav_is_16bit_8khz_mono(tmp_path, greeting):
    path = write_wav(tmp_path / "x" / "out.wav", greeting)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        assert wav.readframes(wav.getnframes()) == greeting


def test_unreadable_audio_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(ValueError, match="cannot decode audio file"):
        load_audio(bad)
    with pytest.raises(FileNotFoundError):
        load_audio(tmp_path / "missing.wav")
