"""How one call hears its caller's answers: digits, or an utterance the Speech port finds and recognises
while it is spoken.

The caller's frames go straight from the call's media thread into the port's listening (`Call.stream_frames`),
so nothing here is woken per frame: the call's thread sleeps in `next_digit` until a key is pressed or the
listening finished (the end of speech is found once, by the port). Recognition overlaps the speech, so when
the caller stops only the last fraction of a second is left to decode.

Graceful overload: when the node's recognisers are at capacity the port refuses a new listening; the call is
then served on keys for the rest of the call (keypad prompts, recorded answers transcribed later) instead of
waiting for a recogniser, so the extra callers get keys and nobody's speech queues past what they can wait.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from callflows.ports import Call, CallObserver, Listening, Speech

log = logging.getLogger(__name__)

SILENCE_STEP = 1.0  # seconds without any frame that count as that much quiet (a phone silent in pauses)


@dataclass
class Heard:
    digit: str | None = None
    audio: bytes | None = None
    text: str | None = None   # see ports.HeardSpeech
    recognised: bool = False


class CallListener:
    """One per call. `keypad_only` turns on when the recognisers were full once, and stays on."""

    def __init__(self, call: Call, speech: Speech, observer: CallObserver) -> None:
        self.call = call
        self.speech = speech
        self.observer = observer
        self.keypad_only = False

    def speech_available(self, language: str) -> bool:
        return not self.keypad_only and self.speech.has_model(language)

    @contextmanager
    def turn(self, language: str, *, phrases: Sequence[str] | None, recognise: bool, record: bool,
             timeout: float, max_length: float, end_silence: float) -> Iterator[Listening | None]:
        """A listening for one answer: recognised when `recognise` and a recogniser is free; otherwise,
        when `record`, one that only finds the utterance (`recognising` False); otherwise None (keys only).
        Cancelled on leaving, so a key, a hang-up or an operator jump always gives the recogniser back."""
        recognise = recognise and self.speech_available(language)
        listening = None
        if recognise:
            listening = self.speech.listen(language, phrases=phrases, recognise=True, timeout=timeout,
                                           max_length=max_length, end_silence=end_silence,
                                           on_partial=self._partial)
            if listening is None:
                self.keypad_only = True
                log.warning("call %s: speech recognisers at capacity, the caller is served on keys",
                            self.call.call_id)
        if listening is None and record:
            listening = self.speech.listen(language, phrases=None, recognise=False, timeout=timeout,
                                           max_length=max_length, end_silence=end_silence)
        try:
            yield listening
        finally:
            if listening is not None:
                listening.cancel()

    def hear(self, listening: Listening, *, pending: str | None = None) -> Heard:
        """Until a key (returned, left for nobody: it is taken here) or the end of the utterance."""
        queued = self.call.next_digit(0)
        if queued or pending:
            return Heard(digit=queued or pending)
        arrived = [0]

        def sink(frame: bytes, was_queued: bool) -> None:
            arrived[0] += 1
            listening.feed(frame, was_queued)

        stop = self.call.stream_frames(sink)
        try:
            while True:
                before = arrived[0]
                digit = self.call.next_digit(SILENCE_STEP, until=lambda: listening.finished)
                if digit:
                    listening.cancel()
                    return Heard(digit=digit)
                if listening.finished:
                    break
                if arrived[0] == before:
                    listening.silence(SILENCE_STEP)
        finally:
            stop()
        result = listening.result()
        if result.audio is not None and listening.recognising and not result.recognised:
            self.keypad_only = True  # the recogniser could not finish in time: keys from now on
            log.warning("call %s: recognition did not finish in time, the caller is served on keys",
                        self.call.call_id)
        return Heard(audio=result.audio, text=result.text, recognised=result.recognised)

    def _partial(self, text: str) -> None:
        """On a recognition worker: an observer's failure must cost neither the answer nor the call."""
        try:
            self.observer.partial_transcript(self.call.call_id, text)
        except Exception:
            log.exception("call %s: partial transcript observer failed", self.call.call_id)
