"""Prompt synthesis by language with the real espeak-ng: pinyin for Mandarin, 8 kHz 16-bit mono, disk cache."""
from __future__ import annotations

import audioop
import subprocess
import wave
from pathlib import Path

import pytest

from tts import VOICES, PromptSynthesizer, to_pinyin


def test_the_voices_exist_in_this_espeak_ng():
    voices = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True, check=True).stdout
    names = {line.split()[1] for line in voices.splitlines()[1:]}
    assert {"cmn-latn-pinyin", "ko"} <= names


def test_chinese_text_becomes_tone_numbered_pinyin():
    assert to_pinyin("您好，请说出您的诉求。") == "nin2 hao3, qing3 shuo1 chu1 nin2 de5 su4 qiu2."
    assert to_pinyin("幺二三四五热线，转接幺幺零请按九") == ("yao1 er4 san1 si4 wu3 re4 xian4, zhuan3 jie1 yao1 yao1 "
                                                       "ling2 qing3 an4 jiu3")
    assert to_pinyin("十二月三日") == "shi2 er4 yue4 san1 ri4"


def read_wav(path: Path) -> tuple[wave._wave_params, bytes]:
    with wave.open(str(path)) as wav:
        return wav.getparams(), wav.readframes(wav.getnframes())


@pytest.mark.parametrize("language, text", [("zh", "您好，这里是12345热线。"), ("ko", "용건을 말씀해 주십시오.")])
def test_synthesised_prompt_is_8khz_16bit_mono_speech(tmp_path, language, text):
    path = PromptSynthesizer(tmp_path).synthesize(text, language)
    params, pcm = read_wav(path)
    assert (params.framerate, params.sampwidth, params.nchannels) == (8000, 2, 1)
    seconds = params.nframes / 8000
    assert 0.8 < seconds < 8, seconds
    assert audioop.rms(pcm, 2) > 300  # speech, not silence


def test_second_request_is_a_cache_hit_without_running_espeak(tmp_path, monkeypatch):
    synthesizer = PromptSynthesizer(tmp_path)
    first = synthesizer.synthesize("感谢您的来电，再见。", "zh")
    stamp = first.stat().st_mtime_ns

    def no_more_processes(*args, **kwargs):
        raise AssertionError("espeak-ng ran again for a cached prompt")

    monkeypatch.setattr(subprocess, "run", no_more_processes)
    assert PromptSynthesizer(tmp_path).synthesize("感谢您的来电，再见。", "zh") == first
    assert first.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]  # no scratch files left behind


def test_cache_key_depends_on_voice_and_text(tmp_path):
    synthesizer = PromptSynthesizer(tmp_path)
    assert synthesizer.cache_path("再见", "zh") == synthesizer.cache_path("再见", "zh")
    assert synthesizer.cache_path("네", "ko") != synthesizer.cache_path("네", "zh")
    assert synthesizer.cache_path("你好", "zh") != synthesizer.cache_path("您好", "zh")


def test_unknown_language_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no voice for language 'en'; expected one of zh, ko"):
        PromptSynthesizer(tmp_path).synthesize("hello", "en")


def test_every_language_a_flow_may_speak_has_a_voice():
    from callflows.templates import LANGUAGES

    assert set(LANGUAGES) <= set(VOICES)


def test_a_prompt_with_a_callers_data_is_spoken_in_memory_and_leaves_no_file(tmp_path):
    synthesizer = PromptSynthesizer(tmp_path / "cache")
    text = "민원 번호는 이 육 삼 삼 육 공 공 공 사 일입니다."
    pcm = synthesizer.pcm(text, "ko")
    assert audioop.rms(pcm, 2) > 300 and len(pcm) > 8000 * 2  # more than a second of speech
    assert pcm == read_wav(synthesizer.synthesize(text, "ko"))[1]  # the same audio as the cached way
    (tmp_path / "cache" / synthesizer.cache_path(text, "ko").name).unlink()
    synthesizer.pcm(text, "ko")
    assert list((tmp_path / "cache").iterdir()) == []  # nothing written for it


def test_keep_only_clears_every_other_cached_prompt(tmp_path):
    synthesizer = PromptSynthesizer(tmp_path)
    fixed = synthesizer.synthesize("感谢您的来电，再见。", "zh")
    personal = synthesizer.synthesize("您的号码是幺三九零四", "zh")  # as an older version cached them
    (tmp_path / "notes.txt").write_text("not a prompt")
    assert synthesizer.keep_only({fixed}) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fixed.name, "notes.txt"])
    assert not personal.exists()
