"""Idle Vosk recognisers kept warm for the next free-speech answer, instead of a new one per answer.

Why: the Korean model's decoding graph is composed lazily (HCLr with Gr, "lookahead" composition), and each
`vosk.KaldiRecognizer` keeps its own cache of the composed states. A new recogniser per answer rebuilds that
cache every time: over the benchmark's 24 answers a fresh recogniser per answer cost 0.31 CPU s per audio s, one
recogniser reused for all of them 0.075 (2026-12-02, bench_asr's "answer by answer" line), with the same words,
times and confidences. A warm recogniser holds 50-120 MB (the cache stops growing); `max_idle` bounds how many
wait unused.

Reuse is safe between callers: Vosk's FinalResult ends the utterance and the next audio starts a new feature
pipeline and decoder (no adaptation carried over); only the graph cache stays. A recogniser handed back without
its FinalResult (an answer cancelled halfway) is finalised first. Its word times keep counting from its first
use, so each lease carries the audio it had decoded before (`offset_seconds`), which StreamRecognizer takes off.

Grammar recognisers are not kept: their small graphs are built in milliseconds and reuse measured no faster.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

import vosk

from pcm import SAMPLE_WIDTH


def free_speech_recognizer(model: vosk.Model, sample_rate: int) -> vosk.KaldiRecognizer:
    """A new Vosk recogniser for free speech as every stream uses it: word times and confidences in its
    results, no words in its partials (only the text is shown while the caller speaks)."""
    recognizer = vosk.KaldiRecognizer(model, float(sample_rate))
    recognizer.SetWords(True)
    recognizer.SetPartialWords(False)
    return recognizer


@dataclass
class WarmRecognizer:
    """A free-speech Vosk recogniser on loan, and how much audio it had decoded before this loan."""

    vosk: vosk.KaldiRecognizer
    model: vosk.Model
    sample_rate: int
    offset_bytes: int = 0  # audio fed in earlier loans: Vosk's word times count from its first byte ever
    fed_bytes: int = 0     # audio fed during this loan

    @property
    def offset_seconds(self) -> float:
        return self.offset_bytes / SAMPLE_WIDTH / self.sample_rate


#: Fed to a recogniser left at an endpoint (Vosk then ignores FinalResult): 10 ms of silence reopens the
#: utterance so that FinalResult can close it.
SETTLE_AUDIO = bytes(160)


def _finalise(warm: WarmRecognizer) -> None:
    """Bring `warm` to Vosk's finalised state (its audio counted, so later word times stay right)."""
    for _ in range(2):  # the settling audio could itself end an utterance once; never twice in a row
        warm.fed_bytes += len(SETTLE_AUDIO)
        if not warm.vosk.AcceptWaveform(SETTLE_AUDIO):
            break
    warm.vosk.FinalResult()


class WarmRecognizers:
    """Free-speech recognisers per (model, sample rate): `take` one (a kept one when there is), `give_back`
    it after its FinalResult. Thread-safe; the least recently used idle recognisers are dropped past
    `max_idle`."""

    def __init__(self, max_idle: int) -> None:
        if max_idle < 0:
            raise ValueError(f"max_idle must be >= 0, got {max_idle}")
        self.max_idle = max_idle
        self._lock = threading.Lock()
        self._idle: OrderedDict[tuple[vosk.Model, int], deque[WarmRecognizer]] = OrderedDict()
        self.reused = 0   # loans served by a kept recogniser
        self.created = 0  # loans that needed a new one

    @property
    def idle(self) -> int:
        with self._lock:
            return self._idle_count()

    def _idle_count(self) -> int:
        return sum(map(len, self._idle.values()))

    def take(self, model: vosk.Model, sample_rate: int) -> WarmRecognizer:
        key = (model, sample_rate)
        with self._lock:
            kept = self._idle.get(key)
            if kept:
                warm = kept.pop()  # the most recently used: the warmest cache
                if not kept:
                    del self._idle[key]
                self.reused += 1
                return warm
            self.created += 1
        return WarmRecognizer(free_speech_recognizer(model, sample_rate), model, sample_rate)

    def give_back(self, warm: WarmRecognizer, *, finalised: bool) -> None:
        """Keep `warm` for the next answer. `finalised`: Vosk's FinalResult ended its last utterance (the next
        audio starts a new feature pipeline); otherwise it is finalised here first."""
        if self.max_idle == 0:
            return
        if not finalised:
            _finalise(warm)
        warm.offset_bytes += warm.fed_bytes
        warm.fed_bytes = 0
        key = (warm.model, warm.sample_rate)
        with self._lock:
            self._idle.setdefault(key, deque()).append(warm)
            self._idle.move_to_end(key)
            while self._idle_count() > self.max_idle:
                oldest_key, oldest = next(iter(self._idle.items()))
                oldest.popleft()
                if not oldest:
                    del self._idle[oldest_key]
