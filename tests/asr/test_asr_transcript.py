"""Full-call transcripts: a caller recording written the way the IVR writes it, transcribed in the
background, stored as JSON with word timings, handed to a completion callback."""

import json
import time

import pytest

from pcm import frames, read_wav
from asr.errors import AudioFileError
from asr.transcript import Transcript, TranscriptionStopped, TranscriptJobs, transcript_path_for
from recordings.wav_writer import WavRecording

pytestmark = pytest.mark.vosk

SILENCE_1S = b"\0" * 16000
SENTENCE = "안녕하세요 민원을 신청하고 싶습니다 도로에 구멍이 있어요"


@pytest.fixture
def call_recording(tmp_path, speak, word_pcm, phone_path):
    """A caller leg as the IVR's recording tap stores it: 20 ms frames after G.711, 8 kHz 16-bit WAV."""
    audio = phone_path(SILENCE_1S + word_pcm("네") + SILENCE_1S + read_wav(speak(SENTENCE)) + SILENCE_1S)
    recording = WavRecording(tmp_path / "2026" / "11" / "29" / "call-1.wav")
    for frame in frames(audio):
        recording.write(frame)
    recording.close()
    return recording.path, len(audio) / 16000


def test_job_stores_words_with_times_beside_the_recording(registry, call_recording, word_pcm):
    path, duration = call_recording
    ne_seconds = len(word_pcm("네")) / 16000
    done = []
    jobs = TranscriptJobs(registry)
    try:
        stored = jobs.submit(path, on_done=lambda t, p: done.append((t, p))).result(timeout=120)
    finally:
        jobs.shutdown()
    assert stored == transcript_path_for(path) == path.with_name("call-1.transcript.json")
    transcript, callback_path = done[0]
    assert callback_path == stored
    assert Transcript.from_json(stored.read_text(encoding="utf-8")) == transcript
    assert json.loads(stored.read_text(encoding="utf-8"))["text"] == transcript.text
    assert transcript.duration == pytest.approx(duration, abs=0.01)
    assert transcript.source == str(path) and transcript.language == "ko"
    words = transcript.words
    assert len(words) >= 5
    assert words[0].start >= 0.9  # nothing in the leading second of silence
    assert all(w.start < w.end <= duration for w in words)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(words, words[1:]))
    assert all(0 <= w.conf <= 1 for w in words)
    # Words sit where the speech is: the isolated word in the 2nd second, then nothing in the silent 3rd.
    assert any(0.9 <= w.start <= 1.0 + ne_seconds for w in words)
    assert not any(1.0 + ne_seconds + 0.3 <= w.start <= 2.0 + ne_seconds - 0.1 for w in words)


def test_failed_job_reports_the_error_and_writes_nothing(registry, tmp_path):
    empty = tmp_path / "call-2.wav"
    empty.write_bytes(b"")
    errors = []
    jobs = TranscriptJobs(registry)
    try:
        future = jobs.submit(empty, on_done=lambda *a: pytest.fail("no transcript expected"),
                             on_error=lambda path, exc: errors.append((path, exc)))
        with pytest.raises(AudioFileError, match="empty file"):
            future.result(timeout=60)
    finally:
        jobs.shutdown()
    assert errors and errors[0][0] == empty
    assert not transcript_path_for(empty).exists()


def test_output_path_can_be_given(registry, tmp_path, word_pcm):
    path = tmp_path / "short.wav"
    recording = WavRecording(path)
    recording.write(SILENCE_1S + word_pcm("민원") + SILENCE_1S)
    recording.close()
    target = tmp_path / "transcripts" / "t.json"
    jobs = TranscriptJobs(registry)
    try:
        assert jobs.submit(path, output=target).result(timeout=120) == target
    finally:
        jobs.shutdown()
    assert Transcript.from_json(target.read_text(encoding="utf-8")).words


def test_shutdown_stops_the_running_job_within_a_second_of_audio_and_drops_the_queue(registry, tmp_path, speak):
    """A node that stops must not wait for a backlog of long calls: the jobs are kept elsewhere (the node's
    journal) and submitted again at the next start."""
    path = tmp_path / "long.wav"
    recording = WavRecording(path)
    speech = read_wav(speak(SENTENCE))
    for _ in range(20):  # over a minute of speech: tens of seconds to decode on this machine
        for frame in frames(speech + SILENCE_1S):
            recording.write(frame)
    recording.close()
    registry.model("ko")  # loaded before timing anything
    jobs = TranscriptJobs(registry)
    running = jobs.submit(path)
    queued = jobs.submit(path, output=tmp_path / "second.json")
    time.sleep(1.0)
    jobs.shutdown()
    with pytest.raises(TranscriptionStopped, match="stopped at"):  # it did not decode to the end
        running.result(timeout=0)
    assert queued.cancelled()
    assert not transcript_path_for(path).exists() and not (tmp_path / "second.json").exists()
