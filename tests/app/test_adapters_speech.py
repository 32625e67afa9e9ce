"""VoskSpeech (the `Speech` port) with real Vosk on espeak-ng Korean, as the interpreter hands it over:
one utterance of 8 kHz 16-bit PCM that went through G.711 on the wire."""
from __future__ import annotations

import audioop
import shutil
import subprocess
from pathlib import Path

import pytest

import asr
from app.adapters.speech_adapter import VoskSpeech
from pcm import read_wav

pytestmark = pytest.mark.vosk
YES_NO = ["네", "아니요"]


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> VoskSpeech:
    registry = asr.ModelRegistry(asr.AsrSettings(models_dir=tmp_path_factory.mktemp("models"),
                                                 cache_dir=tmp_path_factory.mktemp("asr-cache")))
    registry.model("ko")  # load once (seconds), not inside the first test's wait
    pool = asr.RecognitionPool(registry)
    yield VoskSpeech(pool, result_timeout=120.0)
    pool.shutdown()


@pytest.fixture(scope="module")
def korean(tmp_path_factory):
    """korean(text) -> what the IVR would pass on: espeak-ng Korean, 8 kHz 16-bit, through mu-law and back,
    with half a second of silence either side as the interpreter's cut leaves it."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is needed for speech tests (Debian package espeak-ng)")
    folder: Path = tmp_path_factory.mktemp("speech")

    def utterance(text: str) -> bytes:
        path = folder / f"{len(list(folder.iterdir()))}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", text, "-w", str(path)], check=True)
        pcm = read_wav(path)
        silence = bytes(8000)
        return audioop.ulaw2lin(audioop.lin2ulaw(silence + pcm + silence, 2), 2)
    return utterance


def test_korean_yes_and_no_are_recognised_from_the_grammar(speech, korean):
    assert speech.recognize(korean("네"), "ko", YES_NO) == "네"
    assert speech.recognize(korean("아니요"), "ko", YES_NO) == "아니요"


def test_silence_is_not_taken_for_an_answer(speech):
    assert speech.recognize(bytes(16000 * 2), "ko", YES_NO) is None
    assert speech.transcribe(bytes(16000 * 2), "ko") == ""


def test_free_speech_is_the_same_text_as_asr_decoding_the_audio_directly(speech, korean):
    """espeak-ng free speech is not reliably recognised word for word, so compare with asr's own decoding of
    the same PCM: the adapter must neither lose nor add utterances."""
    pcm = korean("우리 집에 물이 안 나와요")
    direct = asr.transcribe_pcm(pcm, speech.pool.registry.model("ko"), source="test", language="ko").text

    assert direct.strip()
    assert speech.transcribe(pcm, "ko") == direct.strip()


def test_models_are_reported_per_language(speech):
    assert speech.has_model("ko") is True
    assert speech.has_model("zh") is False  # no Mandarin model in the test's empty models folder
