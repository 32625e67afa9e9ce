"""One answer of a live caller, heard as it is spoken: frames in (from the call's media thread), the end of
speech found once by the endpointer, the voiced frames decoded by a pool stream while the caller still talks.

    turn = ListeningTurn(Endpointer(timeout=6, end_silence=1.5, max_length=60), pool.try_open_stream("ko"))
    session feeds turn.feed(frame) ... until turn.finished
    result = turn.result()      # waits only for the last 100 ms or so of decoding

Without a stream (no model, recognisers at capacity, or a plain recording) the turn only endpoints: the
result has the audio and `recognised=False`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .endpoint import Endpointer, Phase
from .pool import Stream


@dataclass(frozen=True)
class TurnResult:
    audio: bytes | None  # the utterance (pre-roll to end), None when nobody spoke within the timeout
    text: str | None     # free speech: the words ('' = nothing understood); grammar: the phrase, or None
    recognised: bool     # False: no recogniser, or it could not finish in time (keep the audio for later)


class ListeningTurn:
    """`feed`/`silence` from any thread (quick, never blocks on decoding); `result` from the call's thread."""

    def __init__(self, endpointer: Endpointer, stream: Stream | None, *, result_timeout: float = 10.0,
                 grammar_threshold: float | None = None) -> None:
        self.endpointer = endpointer
        self.stream = stream
        self.result_timeout = result_timeout
        self.grammar_threshold = grammar_threshold
        self._lock = threading.Lock()
        self._cancelled = False
        self._stream_ended = False

    @property
    def recognising(self) -> bool:
        return self.stream is not None

    @property
    def finished(self) -> bool:
        return self._cancelled or self.endpointer.finished

    def feed(self, frame: bytes, queued: bool = False) -> None:
        """One 20 ms frame of the caller; `queued` = it waited while a prompt played (heard, not waited for)."""
        with self._lock:
            if self.finished:
                return
            decode = self.endpointer.push(frame, queued=queued)
            if self.stream is not None:
                for voiced in decode:
                    self.stream.feed(voiced)
            self._end_stream_if_finished()

    def silence(self, seconds: float) -> None:
        with self._lock:
            if not self.finished:
                self.endpointer.silence(seconds)
                self._end_stream_if_finished()

    def cancel(self) -> None:
        """Not wanted any more (a key, a hang-up): the recogniser is given back; harmless after the end."""
        with self._lock:
            self._cancelled = True
            if self.stream is not None and not self._stream_ended:
                self._stream_ended = True
                self.stream.cancel()

    def _end_stream_if_finished(self) -> None:
        if self.stream is None or self._stream_ended or not self.endpointer.finished:
            return
        self._stream_ended = True
        if self.endpointer.phase is Phase.ENDED:
            self.stream.close()   # decode what is left and deliver the final result
        else:
            self.stream.cancel()  # nobody spoke: nothing to decode

    def result(self) -> TurnResult:
        """What was heard; call once `finished`. Waits up to `result_timeout` for the recogniser."""
        if self.endpointer.phase is not Phase.ENDED:
            return TurnResult(None, None, False)
        audio = self.endpointer.utterance
        stream = self.stream
        if stream is None:
            return TurnResult(audio, None, False)
        if not stream.closed.wait(self.result_timeout):
            self._cancelled = True
            stream.cancel()  # the caller goes on without these words: nobody decodes them any more
            return TurnResult(audio, None, False)
        utterances = []
        while (utterance := stream.next_utterance(timeout=0)) is not None:
            utterances.append(utterance)
        if stream.grammar is None:
            return TurnResult(audio, " ".join(u.text for u in utterances if u.text).strip(), True)
        understood = {stream.phrase(u, self.grammar_threshold) for u in utterances} - {None}
        return TurnResult(audio, understood.pop() if len(understood) == 1 else None, True)

