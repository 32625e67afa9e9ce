"""Live streams on the worker pool: results delivered off the feeding thread, backlog queued not dropped."""

import threading

import pytest

from pcm import FRAME_BYTES, frames
from asr.errors import ModelNotFound
from asr.pool import RecognitionPool

pytestmark = pytest.mark.vosk

MENU_GRAMMAR = ["네", "아니요", "민원", "구", "칠"]
SILENCE_1S = b"\0" * 16000


@pytest.fixture(scope="module")
def pool(registry):
    pool = RecognitionPool(registry)
    yield pool
    pool.shutdown()


def test_grammar_answer_through_the_pool(pool, word_pcm, phone_path):
    stream = pool.open_stream("ko", grammar=MENU_GRAMMAR)
    for frame in frames(phone_path(SILENCE_1S + word_pcm("아니요") + SILENCE_1S * 2)):
        stream.feed(frame)
    utterance = stream.next_utterance(timeout=60)
    assert utterance is not None and stream.phrase(utterance) == "아니요"
    stream.close()
    assert stream.next_utterance(timeout=60) is None  # closed: nothing more was said
    assert stream.closed.wait(60)
    stream.feed(b"\0" * FRAME_BYTES)  # a late frame after the hang-up is ignored, not queued
    assert stream.backlog_frames == 0


def test_callbacks_run_on_a_worker_and_close_flushes_the_last_words(pool, word_pcm, phone_path):
    got, threads, partials = [], set(), []

    def on_utterance(utterance):
        got.append(utterance.text)
        threads.add(threading.current_thread().name)

    stream = pool.open_stream("ko", grammar=MENU_GRAMMAR, on_utterance=on_utterance, on_partial=partials.append)
    for frame in frames(phone_path(SILENCE_1S + word_pcm("민원"))):  # no trailing silence: no endpoint
        stream.feed(frame)
    stream.close()
    assert stream.closed.wait(60)
    assert got == ["민원"]
    assert all(name.startswith("asr") for name in threads)
    assert partials  # partial text was reported while audio was recognised


def test_backlog_is_queued_not_dropped_and_visible(pool, word_pcm, phone_path):
    """Six streams fed 5 s each as fast as possible: more than the workers can keep up with at once."""
    audio = phone_path(SILENCE_1S + word_pcm("네") + SILENCE_1S * 3)
    before = pool.metrics()
    results = [[] for _ in range(6)]
    streams = [pool.open_stream("ko", grammar=MENU_GRAMMAR, on_utterance=r.append) for r in results]
    for frame in frames(audio):
        for stream in streams:
            stream.feed(frame)
    during = pool.metrics()
    for stream in streams:
        stream.close()
    assert all(stream.closed.wait(120) for stream in streams)
    after = pool.metrics()
    assert during.backlog_frames > 0 and after.max_backlog_frames >= during.backlog_frames
    assert after.backlog_frames == 0
    assert after.frames_recognised - before.frames_recognised == 6 * len(audio) // FRAME_BYTES
    assert [[u.text for u in r] for r in results] == [["네"]] * 6
    assert after.open_streams == before.open_streams


def test_unknown_language(pool, registry):
    with pytest.raises(ModelNotFound, match=str(registry.settings.models_dir / "xx")):
        pool.open_stream("xx")


def test_a_live_stream_for_an_unknown_language_raises_and_keeps_no_capacity(pool):
    before = pool.metrics()
    with pytest.raises(ModelNotFound):
        pool.try_open_stream("xx")
    after = pool.metrics()
    assert (after.load, after.open_streams, after.refused) == (before.load, before.open_streams, before.refused)
