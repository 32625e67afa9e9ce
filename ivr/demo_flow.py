"""The built-in demo flow that proves the telephony path (the real flows live in callflows/).

Greeting, "press 1 ..., press 2 ...", up to two attempts; the chosen digit goes into the call's detail
record as details["choice"] (and what the caller typed is in the record's digits anyway).

A tool beside the telephony edge (like the simulated caller), so it may use the text-to-speech edge (tts)
for its English prompts; ivr's protocol modules never import tts.
"""
from __future__ import annotations

from pathlib import Path

from tts import PromptCache

from .session import CallEnded, CallSession

GREETING = "Welcome to the twelve three four five city service hotline."
MENU = "For a consultation, press 1. To make a complaint, press 2."
INVALID = "Sorry, that is not a valid choice."
GOODBYE = "Thank you. Your choice has been recorded. Goodbye."
CHOICES = {"1": "consultation", "2": "complaint"}
ATTEMPTS = 2


class DemoFlow:
    """`on_call` for IvrNode: DemoFlow(cache_dir).on_call."""

    def __init__(self, cache_dir: str | Path, voice: str = "en", digit_timeout: float = 8.0,
                 words_per_minute: int = 150) -> None:
        self.prompts = PromptCache(cache_dir)
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.digit_timeout = digit_timeout

    def prompt(self, text: str) -> Path:
        return self.prompts.get(text, self.voice, self.words_per_minute)

    def prepare(self) -> None:
        """Synthesise every prompt now, so the first caller does not wait for espeak-ng."""
        for text in (GREETING, MENU, INVALID, GOODBYE):
            self.prompt(text)

    def on_call(self, session: CallSession) -> None:
        try:
            session.play(self.prompt(GREETING))
            for _ in range(ATTEMPTS):
                session.play(self.prompt(MENU))
                digit = session.collect_digits(max_digits=1, first_digit_timeout=self.digit_timeout,
                                               terminator=None)
                if digit in CHOICES:
                    session.details["choice"] = digit
                    session.details["choice_name"] = CHOICES[digit]
                    session.play(self.prompt(GOODBYE), barge_in=False)
                    return
                session.play(self.prompt(INVALID))
        except CallEnded:
            return  # the caller left; the node stores the record with the digits received so far
        finally:
            session.hangup()
