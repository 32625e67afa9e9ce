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
    def __init__(self, model: vosk.Model, *, grammar: Sequence[str] | None = None,
                 sample_rate: int = SAMPLE_RATE, max_utterance_seconds: float = 15.0) -> None:
        self.sample_rate = sample_rate
        self.grammar = tuple(grammar) if grammar else None
        self._max_utterance_bytes = int(max_utterance_seconds * sample_rate) * SAMPLE_WIDTH
        if self.grammar:
            self._vosk = vosk.KaldiRecognizer(model, float(sample_rate), grammar_json(self.grammar))
        else:
            self._vosk = vosk.KaldiRecognizer(model, float(sample_rate))
            self._vosk.SetPartialWords(False)
        self._vosk.SetWords(True)
        self._utterance_bytes = 0
        self.fed_bytes = 0

    @property
    def fed_seconds(self) -> float:
        return self.fed_bytes / SAMPLE_WIDTH / self.sample_rate

    def accept(self, pcm: bytes) -> Utterance | None:
        """Feed audio; return the final Utterance when the caller paused (or the utterance hit its length
        limit), else None. Word times count from the first byte this recogniser was fed."""
        self.fed_bytes += len(pcm)
        self._utterance_bytes += len(pcm)
        if self._vosk.AcceptWaveform(pcm):
            self._utterance_bytes = 0
            return parse_final(self._vosk.Result())
        if self._utterance_bytes >= self._max_utterance_bytes:
            self._utterance_bytes = 0
            return parse_final(self._vosk.FinalResult(), forced=True)
        return None

    def partial(self) -> str:
        """The text recognised so far in the current utterance."""
        return parse_partial(self._vosk.PartialResult())

    def finish(self) -> Utterance:
        """Flush: the final Utterance of whatever was fed since the last one (empty text if nothing)."""
        self._utterance_bytes = 0
        return parse_final(self._vosk.FinalResult())


def match_phrase(utterance: Utterance, phrases: Sequence[str], threshold: float) -> str | None:
    """The phrase the caller said, or None for "not understood, ask again": only an exact match of a whole
    phrase counts (this model maps much out-of-grammar speech onto some grammar word, so partial or
    unknown-bearing results are rejected) and only with mean word confidence >= threshold."""
    if utterance.text in phrases and UNKNOWN_WORD not in utterance.text and utterance.confidence >= threshold:
        return utterance.text
    return None
