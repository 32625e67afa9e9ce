"""One-call answers over a whole buffer of caller audio, for code that already holds the utterance (a call
flow that recorded the answer, a script): no streams, no callbacks.

Live calls should use RecognitionPool streams instead, so recognition runs while the caller speaks.
"""

from __future__ import annotations

from collections.abc import Sequence

from .audio import PHONE_RATE, SAMPLE_WIDTH
from .models import ModelRegistry, default_registry
from .recognizer import match_phrase
from .transcript import transcribe_pcm


def has_model(language: str, registry: ModelRegistry | None = None) -> bool:
    """True when `language` has an installed model, so a flow can offer speech or fall back to the keypad.
    Does not load the model."""
    return language in (registry or default_registry()).available_languages()


def recognize(pcm: bytes, language: str, phrases: Sequence[str], *, threshold: float | None = None,
              registry: ModelRegistry | None = None) -> str | None:
    """The phrase of `phrases` the caller said in `pcm` (8 kHz 16-bit mono), or None for "not understood":
    silence, out-of-grammar speech, or confidence below `threshold` (default: the settings' grammar
    confidence). A new grammar recogniser per call, never SetGrammar on a used one (that aborts Kaldi).
    Raises ModelNotFound for a language without a model."""
    registry = registry or default_registry()
    _check_pcm(pcm)
    threshold = registry.settings.grammar_confidence if threshold is None else threshold
    transcript = transcribe_pcm(pcm, registry.model(language), source="<pcm>", language=language,
                                grammar=list(phrases),
                                max_utterance_seconds=registry.settings.max_utterance_seconds)
    for utterance in transcript.utterances:
        phrase = match_phrase(utterance, phrases, threshold)
        if phrase is not None:
            return phrase
    return None


def transcribe(pcm: bytes, language: str, *, registry: ModelRegistry | None = None) -> str:
    """Free-speech text of `pcm` (8 kHz 16-bit mono), utterances joined by spaces; "" for silence.
    Raises ModelNotFound for a language without a model."""
    registry = registry or default_registry()
    _check_pcm(pcm)
    transcript = transcribe_pcm(pcm, registry.model(language), source="<pcm>", language=language,
                                max_utterance_seconds=registry.settings.max_utterance_seconds)
    return transcript.text


def _check_pcm(pcm: bytes) -> None:
    if len(pcm) % SAMPLE_WIDTH:
        raise ValueError(f"PCM must be {SAMPLE_WIDTH * 8}-bit samples at {PHONE_RATE} Hz; got {len(pcm)} bytes, "
                         f"an odd count")

