"""`python -m asr transcribe`: text, grammar answers, JSON, and clear errors with exit status 2."""

import json
import subprocess
import sys
import wave

import pytest

from asr.__main__ import main

pytestmark = pytest.mark.vosk


def test_grammar_answer_from_espeak_wav_at_its_own_rate(registry, speak, capsys):
    assert main(["transcribe", str(speak("아니요")), "--grammar", "네,아니요,민원"]) == 0
    assert capsys.readouterr().out.strip() == "아니요"


def test_json_has_words_times_and_confidences(registry, speak, capsys):
    assert main(["transcribe", str(speak("민원")), "--grammar", "네,아니요,민원", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["text"] == "민원"
    [word] = data["utterances"][0]["words"]
    assert word["word"] == "민원" and 0 <= word["start"] < word["end"] and 0 < word["conf"] <= 1


def test_missing_model_names_the_folder(registry, speak, capsys):
    assert main(["transcribe", str(speak("네")), "--lang", "zh-cn"]) == 2
    err = capsys.readouterr().err
    assert "no speech model for language 'zh-cn'" in err and str(registry.settings.models_dir / "zh-cn") in err


@pytest.mark.parametrize("content, message", [(b"", "empty file"), (b"hello, not audio\n" * 4, "not a PCM WAV")])
def test_bad_files(registry, tmp_path, capsys, content, message):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    assert main(["transcribe", str(bad)]) == 2
    assert f"error: {bad}: {message}" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    """The real `python -m asr` process (loads its own model only after the audio checks pass)."""
    silent = tmp_path / "silence.wav"
    with wave.open(str(silent), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(b"")
    run = subprocess.run([sys.executable, "-m", "asr", "transcribe", str(silent)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and "holds no audio" in run.stderr
    run = subprocess.run([sys.executable, "-m", "asr", "languages"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "ko" in run.stdout.split()
