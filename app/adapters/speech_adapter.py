"""The `Speech` port over asr's recognition pool, for live calls.

The interpreter has already cut one utterance out of the caller's audio; here it goes through a fresh
stream of the shared pool (whose workers bound the CPU used by all calls together) and the call's thread
waits for the result. Grammar answers count only when asr's own matching accepts them (whole phrase,
confidence threshold), so an unsure answer makes the flow ask again instead of guessing.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

from asr import RecognitionPool, Stream, Utterance

log = logging.getLogger(__name__)


class VoskSpeech:
    """`callflows.ports.Speech` over `pool` (asr.RecognitionPool; its registry says which languages exist).

    `result_timeout` bounds the wait for the pool, in seconds: on a saturated machine a caller is asked
    again (or sent to the keypad) rather than left in silence forever."""

    def __init__(self, pool: RecognitionPool, *, result_timeout: float = 30.0) -> None:
        self.pool = pool
        self.result_timeout = result_timeout

    def has_model(self, language: str) -> bool:
        return language in self.pool.registry.available_languages()

    def recognize(self, pcm: bytes, language: str, phrases: Sequence[str]) -> str | None:
        stream = self.pool.open_stream(language, grammar=list(phrases))
        understood = {stream.phrase(utterance) for utterance in self._utterances(stream, pcm)}
        understood.discard(None)
        return understood.pop() if len(understood) == 1 else None

    def transcribe(self, pcm: bytes, language: str) -> str:
        stream = self.pool.open_stream(language)
        return " ".join(u.text for u in self._utterances(stream, pcm) if u.text).strip()

    def _utterances(self, stream: Stream, pcm: bytes) -> list[Utterance]:
        """Every final result of `pcm` (the pool endpoints inside it too), up to the stream's end."""
        stream.feed(pcm)
        stream.close()
        if not stream.closed.wait(self.result_timeout):
            log.warning("speech recognition gave no result within %.0f s; treated as not understood",
                        self.result_timeout)
            return []
        utterances = []  # all queued before `closed` was set, ended by the stream's None
        while (utterance := stream.next_utterance(timeout=0)) is not None:
            utterances.append(utterance)
        return utterances
