"""VoskSpeech (the `Speech` port) with real Vosk on espeak-ng Korean, as a live call hands it over: 20 ms
frames of 8 kHz 16-bit PCM that went through G.711 on the wire, fed to the port's listening one by one."""
from __future__ import annotations

import audioop
import shutil
import subprocess
from pathlib import Path

import pytest

import asr
from app.adapters.speech_adapter import VoskSpeech
from pcm import frames, read_wav

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


def hear(speech: VoskSpeech, pcm: bytes, *, phrases=None, end_silence: float = 0.8, timeout: float = 3.0):
    """Feed `pcm` frame by frame (then silence) as the call's media thread does; the port's result."""
    turn = speech.listen("ko", phrases=phrases, timeout=timeout, max_length=20, end_silence=end_silence)
    assert turn is not None
    for frame in frames(pcm + bytes(16000 * 3)):
        turn.feed(frame)
        if turn.finished:
            break
    assert turn.finished
    return turn, turn.result()


def test_korean_yes_and_no_are_recognised_from_the_grammar(speech, korean):
    assert hear(speech, korean("네"), phrases=YES_NO)[1].text == "네"
    turn, result = hear(speech, korean("아니요"), phrases=YES_NO)
    assert (result.text, result.recognised) == ("아니요", True)
    assert speech.pool.metrics().open_streams == 0  # the recogniser was given back


def test_silence_is_not_taken_for_an_answer_and_is_never_decoded(speech):
    before = speech.pool.metrics().frames_recognised
    turn, result = hear(speech, bytes(16000 * 2), phrases=YES_NO)
    assert (result.audio, result.text, result.recognised) == (None, None, False)  # nobody spoke: timed out
    assert turn.endpointer.frames_seen == 150 and turn.endpointer.frames_decoded == 0
    assert speech.pool.metrics().frames_recognised == before


def test_streaming_recognition_equals_whole_utterance_recognition_on_the_same_audio(speech, korean):
    """The words found while the caller spoke (voiced frames only, as they arrived) are the words asr
    finds decoding the captured utterance whole; and the silence around it was not decoded."""
    pcm = bytes(16000) + korean("우리 집에 물이 안 나와요") + bytes(16000)
    partials: list[str] = []
    turn = speech.listen("ko", timeout=3, max_length=20, end_silence=1.0, on_partial=partials.append)
    for frame in frames(pcm + bytes(16000 * 2)):
        turn.feed(frame)
    result = turn.result()
    whole = asr.transcribe_pcm(result.audio, speech.pool.registry.model("ko"), source="test", language="ko").text
    assert result.recognised and result.text and result.text == whole.strip()
    assert partials and all(partials)  # partial text was reported while the caller spoke
    speech_seconds = (len(pcm) - 2 * 16000 - 2 * 8000) / 16000  # korean() pads 0.5 s either side
    decoded_seconds = turn.endpointer.frames_decoded * 0.02
    assert decoded_seconds <= speech_seconds + 0.8  # pre-roll and short pauses, not the seconds of silence
    assert turn.endpointer.frames_seen * 0.02 >= speech_seconds + 2.0  # 1.5 s before it, 0.5+ s after


def test_a_recogniser_at_capacity_refuses_the_next_caller_until_one_is_given_back(tmp_path, korean):
    """Capacity 1 and two callers speaking: the first gets the recogniser, the second is refused (the flow
    serves it on keys); once the first answer is done, the next caller gets one again."""
    registry = asr.ModelRegistry(asr.AsrSettings(models_dir=tmp_path / "models", cache_dir=tmp_path / "cache",
                                                 realtime_streams=1))
    pool = asr.RecognitionPool(registry)
    try:
        speech = VoskSpeech(pool, result_timeout=120.0)
        first = speech.listen("ko", timeout=3, max_length=20, end_silence=0.8)
        second = speech.listen("ko", timeout=3, max_length=20, end_silence=0.8)
        assert first is not None and second is None
        recording_only = speech.listen("ko", recognise=False, timeout=3, max_length=20, end_silence=0.8)
        assert recording_only is not None and not recording_only.recognising  # endpointing needs no recogniser
        assert pool.metrics().refused == 1 and pool.metrics().load == 1.0
        for frame in frames(korean("네") + bytes(16000 * 2)):
            first.feed(frame)
        assert first.result().text
        third = speech.listen("ko", phrases=YES_NO, timeout=3, max_length=20, end_silence=0.8)
        assert third is not None
        third.cancel()
        assert third.stream.closed.wait(60) and pool.metrics().load == 0.0
    finally:
        pool.shutdown()


def test_models_are_reported_per_language(speech):
    assert speech.has_model("ko") is True
    assert speech.has_model("zh") is False  # no Mandarin model in the test's empty models folder
