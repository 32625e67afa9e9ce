"""Kept (warm) recognisers, with real Vosk on espeak-ng Korean: a reused recogniser must hear the next caller
exactly as a new one would (words, times, confidences), whatever state the last caller left it in, and the
pool must give every recogniser back and keep no more than its bound."""

import time
from dataclasses import replace

import pytest

from pcm import FRAME_BYTES, frames, read_wav
from asr.pool import RecognitionPool
from asr.recognizer import StreamRecognizer
from asr.warm import WarmRecognizers

pytestmark = pytest.mark.vosk

SILENCE_1S = b"\0" * 16000
FIRST = "도로에 구멍이 있어요"
SECOND = "안녕하세요 민원을 신청하고 싶습니다"


def decode(recognizer: StreamRecognizer, pcm: bytes) -> list:
    """Every utterance `recognizer` gives for `pcm`, the flushed rest included."""
    found = [u for u in map(recognizer.accept, frames(pcm)) if u is not None]
    return found + [recognizer.finish()]


@pytest.fixture(scope="module")
def second(speak, phone_path):
    return phone_path(SILENCE_1S + read_wav(speak(SECOND)) + SILENCE_1S)


@pytest.fixture(scope="module")
def fresh_result(ko_model, second):
    return decode(StreamRecognizer(ko_model), second)


def test_a_kept_recogniser_hears_the_next_caller_as_a_new_one_would(ko_model, speak, phone_path, second,
                                                                     fresh_result):
    warm = WarmRecognizers(max_idle=2)
    first = StreamRecognizer(ko_model, warm=warm)
    decode(first, phone_path(read_wav(speak(FIRST)) + SILENCE_1S))
    first.release()
    assert (warm.idle, warm.created, warm.reused) == (1, 1, 0)

    again = StreamRecognizer(ko_model, warm=warm)
    result = decode(again, second)
    assert (warm.idle, warm.reused) == (0, 1)
    assert result == fresh_result  # same words, word times from this caller's first byte, confidences
    assert any(u.words for u in result) and min(w.start for u in result for w in u.words) >= 0.9


def test_a_recogniser_left_at_an_endpoint_is_finalised_before_the_next_caller(ko_model, speak, phone_path,
                                                                             second, fresh_result):
    warm = WarmRecognizers(max_idle=1)
    first = StreamRecognizer(ko_model, warm=warm)
    spoken = phone_path(read_wav(speak(FIRST)))
    endpoints = [u for u in map(first.accept, frames(spoken + SILENCE_1S * 3)) if u is not None]
    assert endpoints and endpoints[-1].text  # Vosk ended the utterance itself; no audio came after
    assert first.finish().text == ""          # ... so its FinalResult is empty and leaves it mid-stream
    first.release()
    assert decode(StreamRecognizer(ko_model, warm=warm), second) == fresh_result


def test_a_recogniser_abandoned_halfway_is_finalised_before_the_next_caller(ko_model, speak, phone_path,
                                                                          second, fresh_result):
    warm = WarmRecognizers(max_idle=1)
    first = StreamRecognizer(ko_model, warm=warm)
    spoken = phone_path(read_wav(speak(FIRST)))
    for frame in frames(spoken[: len(spoken) // 2]):  # the caller pressed a key mid-word
        first.accept(frame)
    first.release()
    assert decode(StreamRecognizer(ko_model, warm=warm), second) == fresh_result


def test_at_most_max_idle_are_kept_and_none_with_zero(ko_model):
    warm = WarmRecognizers(max_idle=2)
    loans = [StreamRecognizer(ko_model, warm=warm) for _ in range(3)]
    for loan in loans:
        loan.accept(b"\0" * FRAME_BYTES)  # a recogniser is taken with the first audio
    for loan in loans:
        loan.release()
        loan.release()  # twice is harmless: given back once
    assert (warm.created, warm.idle) == (3, 2)
    none_kept = WarmRecognizers(max_idle=0)
    loan = StreamRecognizer(ko_model, warm=none_kept)
    loan.accept(b"\0" * FRAME_BYTES)
    loan.release()
    assert none_kept.idle == 0
    with pytest.raises(ValueError, match="max_idle"):
        WarmRecognizers(max_idle=-1)


def test_a_stream_without_audio_takes_no_recogniser(ko_model):
    warm = WarmRecognizers(max_idle=2)
    silent = StreamRecognizer(ko_model, warm=warm)
    assert silent.partial() == "" and silent.finish().text == ""
    silent.release()
    assert (warm.created, warm.idle) == (0, 0)


def test_the_pool_warms_its_recognisers_and_streams_give_them_back(registry, speak, phone_path, second,
                                                                  fresh_result):
    pool = RecognitionPool(registry, replace(registry.settings, warm_recognizers=3))
    try:
        pool.warm_up("ko", phone_path(read_wav(speak(FIRST)))).join(120)
        assert (pool.warm.created, pool.warm.idle) == (3, 3)

        closed = pool.open_stream("ko")
        for frame in frames(second):
            closed.feed(frame)
        closed.close()
        assert closed.closed.wait(60)
        heard = []
        while (utterance := closed.next_utterance(timeout=0)) is not None:
            heard.append(utterance)
        assert [u for u in heard if u.text] == [u for u in fresh_result if u.text]

        cancelled = pool.open_stream("ko")
        for frame in frames(second[: len(second) // 2]):
            cancelled.feed(frame)
        deadline = time.monotonic() + 60
        while cancelled.backlog_frames and time.monotonic() < deadline:  # decoding began: a recogniser is out
            time.sleep(0.01)
        cancelled.cancel()
        assert cancelled.closed.wait(60)
        assert (pool.warm.created, pool.warm.reused, pool.warm.idle) == (3, 2, 3)
    finally:
        pool.shutdown()
