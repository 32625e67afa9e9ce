"""The `Speech` port over asr for live calls: one asr.ListeningTurn per answer.

The turn's endpointer (VAD) finds the answer in the caller's frames as they arrive and hands only voiced
audio to a stream of the shared recognition pool, so decoding overlaps the speech and silence is never
decoded. A recogniser is taken with `try_open_stream`: when the node's recognisers are at capacity the port
says so (None) and the flow serves the caller on keys. Grammar answers count only when asr's own matching
accepts them (whole phrase, confidence threshold), so an unsure answer makes the flow ask again.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from asr import Endpointer, ListeningTurn, RecognitionPool


class VoskSpeech:
    """`callflows.ports.Speech` over `pool` (asr.RecognitionPool; its registry says which languages exist).

    `result_timeout` bounds the wait, after the caller stopped, for the last words: past it the answer
    counts as not recognised (its recording is kept) and the flow goes on on keys."""

    def __init__(self, pool: RecognitionPool, *, result_timeout: float = 10.0) -> None:
        self.pool = pool
        self.result_timeout = result_timeout

    def has_model(self, language: str) -> bool:
        return language in self.pool.registry.available_languages()

    def listen(self, language: str, *, phrases: Sequence[str] | None = None, recognise: bool = True,
               timeout: float, max_length: float, end_silence: float,
               on_partial: Callable[[str], None] | None = None) -> ListeningTurn | None:
        endpointer = Endpointer(timeout=timeout, end_silence=end_silence, max_length=max_length)
        stream = None
        if recognise:
            stream = self.pool.try_open_stream(language, grammar=list(phrases) if phrases else None,
                                               on_partial=on_partial)
            if stream is None:
                return None
        return ListeningTurn(endpointer, stream, result_timeout=self.result_timeout)
