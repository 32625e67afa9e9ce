"""asr.endpoint: one utterance out of 20 ms frames, with a scripted voice classifier (the logic) and the real
webrtcvad classifier on silence, a tone and espeak-ng speech."""

import pytest

from asr.endpoint import FRAME_SECONDS, PRE_ROLL_FRAMES, Endpointer, Phase, VoiceActivity

VOICE, QUIET = b"V" * 320, b"\0" * 320


def scripted(**kwargs) -> Endpointer:
    return Endpointer(is_voice=lambda frame: frame == VOICE, **kwargs)


def push_all(endpointer: Endpointer, frames: list[bytes], **kwargs) -> list[bytes]:
    decoded = []
    for frame in frames:
        decoded += endpointer.push(frame, **kwargs)
    return decoded


def test_nobody_speaks_times_out_after_the_timeout_in_audio_and_nothing_is_decoded():
    endpointer = scripted(timeout=1.0, end_silence=0.5, max_length=5)
    assert push_all(endpointer, [QUIET] * 49) == [] and endpointer.phase is Phase.WAITING
    assert endpointer.push(QUIET) == [] and endpointer.phase is Phase.TIMED_OUT
    assert endpointer.push(VOICE) == [] and endpointer.frames_seen == 50  # after the end nothing is taken


def test_queued_frames_are_listened_to_but_not_counted_as_waiting():
    endpointer = scripted(timeout=0.1, end_silence=0.5, max_length=5)
    push_all(endpointer, [QUIET] * 100, queued=True)  # 2 s that waited while a prompt played
    assert endpointer.phase is Phase.WAITING and endpointer.waited == 0.0
    push_all(endpointer, [QUIET] * 5)
    assert endpointer.phase is Phase.TIMED_OUT


def test_utterance_keeps_pre_roll_and_trailing_quiet_but_only_speech_and_inner_pauses_are_decoded():
    endpointer = scripted(timeout=5, end_silence=0.2, max_length=10)
    lead = [bytes([n]) * 320 for n in range(1, 31)]  # 30 distinct quiet frames before the answer
    decoded = push_all(endpointer, lead + [VOICE] * 3 + [QUIET] * 4 + [VOICE] * 2 + [QUIET] * 10)
    assert endpointer.phase is Phase.ENDED
    # decoded: pre-roll (the last frames before the start), the speech, the pause inside it; not the tail
    pre_roll = lead[-(PRE_ROLL_FRAMES - 2):]  # the window ends with the two voiced frames that started it
    assert decoded == pre_roll + [VOICE] * 3 + [QUIET] * 4 + [VOICE] * 2
    assert endpointer.utterance == b"".join(pre_roll + [VOICE] * 3 + [QUIET] * 4 + [VOICE] * 2 + [QUIET] * 10)
    assert endpointer.frames_decoded == len(decoded) and endpointer.frames_seen == 49


def test_a_lone_click_does_not_start_an_utterance():
    endpointer = scripted(timeout=5, end_silence=0.2, max_length=10)
    assert push_all(endpointer, [QUIET, VOICE, QUIET, QUIET, VOICE, QUIET]) == []
    assert endpointer.phase is Phase.WAITING


def test_max_length_cuts_a_caller_who_never_pauses():
    endpointer = scripted(timeout=5, end_silence=1.0, max_length=1.0)
    push_all(endpointer, [VOICE] * 200)
    assert endpointer.phase is Phase.ENDED
    assert endpointer.utterance_seconds == pytest.approx(1.0, abs=FRAME_SECONDS)


def test_silence_reported_without_frames_counts_as_quiet():
    waiting = scripted(timeout=2.0, end_silence=1.0, max_length=10)
    waiting.silence(1.0)
    assert waiting.phase is Phase.WAITING
    waiting.silence(1.0)
    assert waiting.phase is Phase.TIMED_OUT
    speaking = scripted(timeout=2.0, end_silence=1.0, max_length=10)
    push_all(speaking, [VOICE] * 3)
    speaking.silence(1.0)
    assert speaking.phase is Phase.ENDED


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="positive"):
        scripted(timeout=0, end_silence=1, max_length=1)


def test_webrtcvad_hears_speech_not_silence_or_hum(word_pcm, phone_path):
    vad = VoiceActivity()
    speech = phone_path(word_pcm("민원을 신청하고 싶습니다"))
    frames = [speech[i:i + 320] for i in range(0, len(speech) - 319, 320)]
    assert sum(map(vad, frames)) >= len(frames) // 2
    assert not vad(bytes(320)) and not vad(phone_path(bytes(320)))
    hum = b"".join(int(40 * ((n % 160) < 80)).to_bytes(2, "little", signed=True) for n in range(160))
    assert not vad(hum)  # too quiet to be a voice
    assert not vad(b"\1\0" * 80)  # a short frame is never voice
