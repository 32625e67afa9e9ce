"""A streaming recogniser for one caller: 20 ms frames of 8 kHz 16-bit PCM in, partial text while they speak,
a final Utterance (words, start/end, confidence) at each endpoint.

Free speech is cut at `max_utterance_seconds` (forced finalisation) so a caller who never pauses cannot make
the recogniser's memory grow without bound. With a grammar, the phrase list is fixed at construction:
Vosk's SetGrammar after audio has been fed is a Kaldi fatal error that aborts the whole process, so this class
never calls it — make a new recogniser for each prompt instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import vosk

from pcm import SAMPLE_RATE, SAMPLE_WIDTH
from .results import Utterance, parse_final, parse_partial
from .warm import WarmRecognizer, WarmRecognizers, free_speech_recognizer

#: This model's out-of-vocabulary word (not "[unk]" as in some other Vosk models).
UNKNOWN_WORD = "<UNK>"


def grammar_json(phrases: Sequence[str]) -> str:
    """The grammar as Vosk reads it: literally, so Hangul/Han must not be \\u-escaped (they would all be
    "missing in vocabulary" and every result silently empty). The unknown word lets out-of-grammar speech
    land somewhere other than a phrase."""
    if not phrases or any(not p.strip() for p in phrases):
        raise ValueError(f"grammar phrases must be non-empty strings, got {list(phrases)!r}")
    return json.dumps([*phrases, UNKNOWN_WORD], ensure_ascii=False)


class StreamRecognizer:
    """One stream's recogniser. With `warm` (free speech only), its Vosk recogniser is a kept one from
    asr.warm (several times cheaper per second of audio than a new one), taken when the first audio comes
    (on the recognition worker, by when the caller's previous answer has usually given its one back);
    `release()` hands it back."""

    def __init__(self, model: vosk.Model, *, grammar: Sequence[str] | None = None,
                 sample_rate: int = SAMPLE_RATE, max_utterance_seconds: float = 15.0,
                 warm: WarmRecognizers | None = None) -> None:
        self.sample_rate = sample_rate
        self.grammar = tuple(grammar) if grammar else None
        self._max_utterance_bytes = int(max_utterance_seconds * sample_rate) * SAMPLE_WIDTH
        self._model = model
        self._warm_pool = warm if self.grammar is None else None
        self._loan: WarmRecognizer | None = None
        self._offset = 0.0  # seconds a kept recogniser had decoded before: its word times count from then
        self._kaldi: vosk.KaldiRecognizer | None = None
        if self._warm_pool is None:
            self._kaldi = self._new_kaldi()
        self._utterance_bytes = 0
        self._finalised = True  # Vosk's state: FinalResult closed the last utterance (see asr.warm)
        self.fed_bytes = 0

    def _new_kaldi(self) -> vosk.KaldiRecognizer:
        if not self.grammar:
            return free_speech_recognizer(self._model, self.sample_rate)
        kaldi = vosk.KaldiRecognizer(self._model, float(self.sample_rate), grammar_json(self.grammar))
        kaldi.SetWords(True)
        return kaldi

    @property
    def _vosk(self) -> vosk.KaldiRecognizer:
        if self._kaldi is None:
            assert self._warm_pool is not None
            self._loan = self._warm_pool.take(self._model, self.sample_rate)
            self._kaldi, self._offset = self._loan.vosk, -self._loan.offset_seconds
        return self._kaldi

    @property
    def fed_seconds(self) -> float:
        return self.fed_bytes / SAMPLE_WIDTH / self.sample_rate

    def accept(self, pcm: bytes) -> Utterance | None:
        """Feed audio; return the final Utterance when the caller paused (or the utterance hit its length
        limit), else None. Word times count from the first byte this recogniser was fed."""
        self.fed_bytes += len(pcm)
        self._utterance_bytes += len(pcm)
        self._finalised = False
        if self._vosk.AcceptWaveform(pcm):
            self._utterance_bytes = 0
            return parse_final(self._vosk.Result(), offset=self._offset)
        if self._utterance_bytes >= self._max_utterance_bytes:
            self._utterance_bytes = 0
            self._finalised = True
            return parse_final(self._vosk.FinalResult(), offset=self._offset, forced=True)
        return None

    def partial(self) -> str:
        """The text recognised so far in the current utterance."""
        if self._kaldi is None:
            return ""  # no audio yet: no recogniser taken
        return parse_partial(self._vosk.PartialResult())

    def finish(self) -> Utterance:
        """Flush: the final Utterance of whatever was fed since the last one (empty text if nothing)."""
        if self._kaldi is None:
            return Utterance(text="")  # no audio ever: no recogniser taken
        # After an endpoint (Result) Vosk answers FinalResult with nothing and stays mid-stream: only a
        # FinalResult with audio since the last result finalises it.
        self._finalised = self._utterance_bytes > 0 or self._finalised
        self._utterance_bytes = 0
        return parse_final(self._vosk.FinalResult(), offset=self._offset)

    def release(self) -> None:
        """Done with this stream: a kept recogniser goes back for the next answer (once; harmless again)."""
        loan, self._loan = self._loan, None
        if loan is not None:  # only a stream with a pool of kept recognisers takes a loan
            assert self._warm_pool is not None
            self._kaldi = None
            loan.fed_bytes = self.fed_bytes
            self._warm_pool.give_back(loan, finalised=self._finalised)


def match_phrase(utterance: Utterance, phrases: Sequence[str], threshold: float) -> str | None:
    """The phrase the caller said, or None for "not understood, ask again": only an exact match of a whole
    phrase counts (this model maps much out-of-grammar speech onto some grammar word, so partial or
    unknown-bearing results are rejected) and only with mean word confidence >= threshold."""
    if utterance.text in phrases and UNKNOWN_WORD not in utterance.text and utterance.confidence >= threshold:
        return utterance.text
    return None
