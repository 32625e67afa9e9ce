"""The streaming recogniser with real Vosk on espeak-ng Korean. Only what synthetic speech supports honestly:
grammar answers of the reliable words, endpoints, silence, word timings, repeatability, bounded utterances.
Free-speech accuracy is never asserted (espeak-ng's Korean transcribes as garbage)."""

import os

import pytest

from pcm import frames, read_wav
from asr.recognizer import UNKNOWN_WORD, StreamRecognizer, grammar_json, match_phrase
from asr.results import Utterance, Word

pytestmark = pytest.mark.vosk

RELIABLE_WORDS = ("네", "아니요", "민원")
MENU_GRAMMAR = ["네", "아니요", "민원", "구", "칠"]
SILENCE_1S = b"\0" * 16000
SENTENCE = "안녕하세요 민원을 신청하고 싶습니다 도로에 구멍이 있어요"


def decode(model, pcm, **options):
    """Feed `pcm` as 20 ms frames; return [(utterance, seconds fed when it came)] and the flushed rest."""
    recognizer = StreamRecognizer(model, **options)
    finals = []
    for frame in frames(pcm):
        utterance = recognizer.accept(frame)
        if utterance is not None:
            finals.append((utterance, recognizer.fed_seconds))
    return finals, recognizer.finish()


@pytest.mark.parametrize("word", RELIABLE_WORDS)
def test_grammar_word_over_the_phone_path_same_as_direct(ko_model, word_pcm, phone_path, word):
    audio = SILENCE_1S + word_pcm(word) + SILENCE_1S * 2
    [(direct, _)], _ = decode(ko_model, audio, grammar=MENU_GRAMMAR)
    [(phone, _)], _ = decode(ko_model, phone_path(audio), grammar=MENU_GRAMMAR)
    assert match_phrase(phone, MENU_GRAMMAR, 0.6) == word
    assert phone.text == direct.text == word
    assert [w.word for w in phone.words] == [word]


def test_endpoint_comes_within_about_a_second_of_the_end_of_speech(ko_model, word_pcm, phone_path):
    speech = phone_path(word_pcm("민원"))
    finals, _ = decode(ko_model, SILENCE_1S + speech + SILENCE_1S * 3, grammar=MENU_GRAMMAR)
    assert len(finals) == 1
    utterance, endpoint_at = finals[0]
    speech_end = utterance.words[-1].end
    assert 1.0 < speech_end < 1.0 + len(speech) / 16000 + 0.1  # the word is where we put it
    assert 0 < endpoint_at - speech_end <= 1.6  # model.conf: 1.0 s trailing silence ends an utterance


def test_silence_gives_an_empty_result(ko_model):
    finals, rest = decode(ko_model, SILENCE_1S * 4)
    assert finals == [] or all(u.text == "" for u, _ in finals)
    assert rest == Utterance(text="", words=[])
    finals, rest = decode(ko_model, SILENCE_1S * 4, grammar=MENU_GRAMMAR)
    assert rest.text == "" and all(u.text == "" for u, _ in finals)


def test_word_timings_and_confidences_present_and_monotonic(ko_model, speak, phone_path):
    pcm = phone_path(read_wav(speak(SENTENCE)))
    finals, rest = decode(ko_model, SILENCE_1S + pcm + SILENCE_1S * 2)
    words = [w for u, _ in finals for w in u.words] + rest.words
    assert len(words) >= 5
    assert all(0 <= w.conf <= 1 for w in words)
    assert all(w.start < w.end for w in words)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(words, words[1:]))
    assert words[0].start >= 0.9  # after the leading second of silence
    assert words[-1].end <= 1 + len(pcm) / 16000 + 0.1


def test_decoding_is_repeatable(ko_model, speak, phone_path):
    """Dither 0 (the overlay): the same audio gives the same words, times and confidences every time."""
    pcm = phone_path(read_wav(speak(SENTENCE)))
    assert decode(ko_model, pcm) == decode(ko_model, pcm)


def test_long_utterance_is_cut_and_memory_stays_bounded(ko_model, speak):
    """Speech without a pause grows a recogniser by several MB per second; forced cuts keep it bounded.
    Memory is compared between 10 s and 30 s of the same repeated sentence, so the model's lazily filled
    graph caches (warm after the first copies) do not count."""
    sentence = read_wav(speak(SENTENCE))
    sentence = sentence[:len(sentence) - 1600]  # trim espeak's trailing silence: no endpoint between copies
    pcm = sentence * 7  # ~30 s of continuous speech
    recognizer = StreamRecognizer(ko_model, max_utterance_seconds=5.0)
    finals, rss_at_10s = [], None
    for frame in frames(pcm):
        utterance = recognizer.accept(frame)
        if utterance is not None:
            finals.append(utterance)
        if rss_at_10s is None and recognizer.fed_seconds >= 10:
            rss_at_10s = resident_mb()
    growth = resident_mb() - rss_at_10s
    assert any(u.forced for u in finals)
    spans = [u.words[-1].end - u.words[0].start for u in finals if u.words]
    assert max(spans) <= 5.0 + 0.1
    # RSS also moves with allocator and graph-cache effects (~20 MB here), so the bound is generous.
    assert growth < 50, f"recogniser grew by {growth:.0f} MB from 10 s to 30 s of speech"


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_grammar_json_keeps_hangul_and_adds_the_unknown_word():
    assert grammar_json(["네", "아니요"]) == '["네", "아니요", "<UNK>"]'
    with pytest.raises(ValueError):
        grammar_json([])
    with pytest.raises(ValueError):
        grammar_json(["네", " "])


@pytest.mark.parametrize("utterance, expected", [
    (Utterance("네", [Word("네", 1.0, 1.2, 0.9)]), "네"),
    (Utterance("네", [Word("네", 1.0, 1.2, 0.4)]), None),                       # below the threshold
    (Utterance("네 네", [Word("네", 1.0, 1.2, 1.0), Word("네", 1.3, 1.5, 1.0)]), None),  # not one phrase
    (Utterance(UNKNOWN_WORD, [Word(UNKNOWN_WORD, 1.0, 1.2, 1.0)]), None),
    (Utterance("", []), None),
])
def test_only_exact_confident_matches_are_understood(utterance, expected):
    assert match_phrase(utterance, ["네", "아니요"], 0.6) == expected
