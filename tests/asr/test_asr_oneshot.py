"""The one-call API the call flows use (has_model, recognize, transcribe) with real Vosk on espeak-ng Korean
over the phone path. Free-speech accuracy is never asserted: only that speech yields text and silence none."""

import pytest

import asr
from asr.errors import ModelNotFound

pytestmark = pytest.mark.vosk

YES_NO = ["네", "아니요"]
SILENCE_1S = b"\0" * 16000


def test_has_model_names_installed_languages_only(registry):
    assert asr.has_model("ko") is True
    assert asr.has_model("xx") is False


@pytest.mark.parametrize("word", YES_NO)
def test_recognize_returns_the_phrase_said_over_the_phone_path(registry, word_pcm, phone_path, word):
    audio = phone_path(SILENCE_1S + word_pcm(word) + SILENCE_1S)
    assert asr.recognize(audio, "ko", YES_NO) == word


def test_recognize_silence_and_unconfident_answers_are_not_understood(registry, word_pcm, phone_path):
    assert asr.recognize(SILENCE_1S * 3, "ko", YES_NO) is None
    audio = phone_path(SILENCE_1S + word_pcm("네") + SILENCE_1S)
    assert asr.recognize(audio, "ko", YES_NO, threshold=1.01) is None  # no confidence exceeds 1


def test_transcribe_gives_text_for_speech_and_nothing_for_silence(registry, word_pcm, phone_path):
    assert asr.transcribe(SILENCE_1S * 3, "ko") == ""
    speech = phone_path(SILENCE_1S + word_pcm("안녕하세요 민원을 신청하고 싶습니다") + SILENCE_1S)
    text = asr.transcribe(speech, "ko")
    assert text.strip() != ""  # what the words are is not asserted: espeak-ng free speech decodes as garbage


def test_unknown_language_and_malformed_pcm_are_clear_errors(registry):
    with pytest.raises(ModelNotFound, match=str(registry.settings.models_dir / "xx")):
        asr.recognize(SILENCE_1S, "xx", YES_NO)
    with pytest.raises(ModelNotFound, match="xx"):
        asr.transcribe(SILENCE_1S, "xx")
    with pytest.raises(ValueError, match="odd"):
        asr.recognize(b"\0\0\0", "ko", YES_NO)
