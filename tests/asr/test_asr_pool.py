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


def test_an_answer_whose_words_came_too_late_is_not_decoded_for_nobody(registry, word_pcm, phone_path):
    """One worker, held by another caller's stream (its result callback waits): this caller's answer ends
    (the endpointer closes its stream) but cannot be decoded within the turn's wait, so the call goes on
    without it. Its queued audio is then dropped, not decoded later for nobody: the recogniser's capacity
    and the backlog that later callers are admitted by come back at once."""
    from dataclasses import replace

    from asr.endpoint import Endpointer
    from asr.turn import ListeningTurn

    pool = RecognitionPool(registry, replace(registry.settings, workers=1))
    release, busy = threading.Event(), threading.Event()

    def hold_the_worker(_):
        busy.set()
        release.wait(120)

    try:
        other = pool.open_stream("ko", grammar=MENU_GRAMMAR, on_utterance=hold_the_worker)
        held_audio = phone_path(SILENCE_1S + word_pcm("민원"))
        for frame in frames(held_audio):
            other.feed(frame)
        other.close()
        assert busy.wait(60), "the other caller's stream never reached the worker"
        before = pool.metrics()
        turn = ListeningTurn(Endpointer(timeout=5, end_silence=1.0, max_length=30), pool.try_open_stream("ko"),
                             result_timeout=0.5)
        answer = phone_path(SILENCE_1S + word_pcm("수도 단수 민원입니다") * 3 + SILENCE_1S * 2)
        for frame in frames(answer):
            turn.feed(frame)
        assert turn.finished and pool.metrics().backlog_frames > before.backlog_frames  # its words wait
        result = turn.result()
        assert result.audio and (result.text, result.recognised) == (None, False)
        assert pool.metrics().backlog_frames == before.backlog_frames  # dropped at once (the rest is the other's)
        release.set()
        assert turn.stream.closed.wait(60) and other.closed.wait(60)
        after = pool.metrics()
        # only the other caller's audio, held on the worker, was decoded afterwards
        assert after.frames_recognised - before.frames_recognised == before.backlog_frames
        assert (after.load, after.open_streams) == (0.0, 0)
        assert turn.stream.next_utterance(timeout=0) is None  # no result delivered for the abandoned answer
    finally:
        release.set()
        pool.shutdown()
