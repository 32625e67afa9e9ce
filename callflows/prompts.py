"""The `PromptAudio` the interpreter plays from: synthesised text, or a recorded WAV as it is.

This is the flows' side of text to speech: numbers written out in the caller's language and the fixed
prompts of a flow found before the first call. The synthesis itself is an edge of its own (tts/), handed
in by the composition (app/) as a `Synthesizer`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from callflows.model import Flow, Prompt
from callflows.templates import placeholders, spoken_numbers


class Synthesizer(Protocol):
    """Prompt text in a language → a WAV file (tts.PromptSynthesizer fits)."""

    def synthesize(self, text: str, language: str) -> Path: ...


class PromptLibrary:
    def __init__(self, synthesizer: Synthesizer):
        self.synthesizer = synthesizer

    def text(self, text: str, language: str) -> Path:
        return self.synthesizer.synthesize(spoken_numbers(text, language), language)

    def recorded(self, path: Path) -> Path:
        return path

    def prewarm(self, flow: Flow) -> int:
        """Synthesise every prompt of `flow` that has no variables, so the first caller waits for none;
        returns how many texts there were."""
        count = 0
        for node in flow.nodes.values():
            for prompt in _prompts_of(node):
                for language, text in prompt.texts.items():
                    if language not in prompt.wav_by_language and not prompt.wav and not placeholders(text):
                        self.text(text, language)
                        count += 1
        return count


def _prompts_of(node: object) -> list[Prompt]:
    found = []
    for value in vars(node).values():
        if isinstance(value, Prompt):
            found.append(value)
    return found
