"""The `PromptAudio` the interpreter plays from: synthesised text, or a recorded WAV as it is.

This is the flows' side of text to speech: numbers written out in the caller's language and the fixed
prompts of a flow found before the first call. The synthesis itself is an edge of its own (tts/), handed
in by the composition (app/) as a `Synthesizer`.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from callflows.model import Flow, Prompt
from callflows.templates import placeholders, spoken_numbers


class Synthesizer(Protocol):
    """Prompt text in a language → a cached WAV file, or PCM in memory (tts.PromptSynthesizer fits)."""

    def synthesize(self, text: str, language: str) -> Path: ...

    def pcm(self, text: str, language: str) -> bytes: ...


class PromptLibrary:
    """Fixed prompts are synthesised once and cached on disk; prompts with a caller's data in them (their
    number, their ticket number) are synthesised in memory for the one call and never cached, either on the
    call's thread when needed (`variable`) or ahead of time on a small pool of synthesis threads (`prefetch`,
    at most `workers` espeak-ng processes at once for all calls)."""

    def __init__(self, synthesizer: Synthesizer, *, workers: int = 2):
        self.synthesizer = synthesizer
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prompt-synthesis")

    def text(self, text: str, language: str) -> Path:
        return self.synthesizer.synthesize(spoken_numbers(text, language), language)

    def variable(self, text: str, language: str) -> bytes:
        return self.synthesizer.pcm(spoken_numbers(text, language), language)

    def prefetch(self, text: str, language: str) -> Future[bytes]:
        return self._pool.submit(self.variable, text, language)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def recorded(self, path: Path) -> Path:
        return path

    def prewarm(self, flow: Flow) -> set[Path]:
        """Synthesise every prompt of `flow` that has no variables, so the first caller waits for none;
        returns their files (the composition keeps only these in the cache: tts.PromptSynthesizer.keep_only)."""
        return {self.text(text, language) for language, text in fixed_texts(flow)}


def fixed_texts(flow: Flow) -> list[tuple[str, str]]:
    """(language, text) of every prompt of `flow` spoken from text without variables, in the flow's order."""
    found = []
    for node in flow.nodes.values():
        for prompt in prompts_of(node):
            for language, text in prompt.texts.items():
                if language not in prompt.wav_by_language and not prompt.wav and not placeholders(text):
                    found.append((language, text))
    return found


def prompts_of(node: object) -> list[Prompt]:
    """Every prompt a node may speak (its prompt, keypad prompt, read-back, announcement...)."""
    found = []
    for value in vars(node).values():
        if isinstance(value, Prompt):
            found.append(value)
    return found
