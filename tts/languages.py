"""Prompts by language: which espeak-ng voice and speed speaks each language the hotline serves, and the
Mandarin text turned into what that voice reads well.

Mandarin: espeak-ng's `cmn` voice reads many characters as English-spelled pinyin, while its
`cmn-latn-pinyin` voice speaks tone-numbered pinyin well, so Chinese text is converted with pypinyin first.
pypinyin passes digits through and the pinyin voice cannot read them: give it numbers written out in
Chinese (the call flows do: callflows.templates.spoken_numbers).
"""
from __future__ import annotations

import re
from pathlib import Path

from pypinyin import Style, lazy_pinyin

from .cache import PromptCache
from .espeak import speak

VOICES = {"zh": "cmn-latn-pinyin", "ko": "ko"}
SPEEDS = {"zh": 190, "ko": 175}  # words per minute; the pinyin voice counts a syllable as a word
_ZH_PAUSES = str.maketrans({"，": ", ", "、": ", ", "；": ", ", "：": ", ", "。": ". ", "！": ". ", "？": "? ",
                            "（": " ", "）": " ", "“": " ", "”": " ", "《": " ", "》": " "})


def to_pinyin(text: str) -> str:
    """'请按幺' -> 'qing3 an4 yao1': tone-numbered pinyin (neutral tone 5) for the cmn-latn-pinyin voice,
    with Chinese punctuation turned into pauses the voice makes."""
    syllables = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
    spoken = " ".join(" ".join(syllables).translate(_ZH_PAUSES).split())
    return re.sub(r" ([,.?])", r"\1", spoken)


def spoken_text(text: str, language: str) -> str:
    """What the voice is actually given for `text` in `language`."""
    return to_pinyin(text) if language == "zh" else text


class PromptSynthesizer:
    """Prompt text in a language → a cached 8 kHz WAV (synthesised once, then found in `cache_dir`), or PCM
    in memory for text that must not be cached."""

    def __init__(self, cache_dir: str | Path, *, speeds: dict[str, int] | None = None):
        self.cache = PromptCache(cache_dir)
        self.speeds = {**SPEEDS, **(speeds or {})}

    def cache_path(self, text: str, language: str) -> Path:
        return self.cache.path(spoken_text(text, language), voice_for(language), self.speeds[language])

    def synthesize(self, text: str, language: str) -> Path:
        return self.cache.get(spoken_text(text, language), voice_for(language), self.speeds[language])

    def keep_only(self, keep: set[Path]) -> int:
        return self.cache.keep_only(keep)

    def pcm(self, text: str, language: str) -> bytes:
        """`text` spoken as 8 kHz 16-bit PCM, in memory only: for prompts with a caller's data in them
        (a phone or ticket number), which must not be left on disk or kept after the call."""
        return speak(spoken_text(text, language), voice_for(language), self.speeds[language])


def voice_for(language: str) -> str:
    try:
        return VOICES[language]
    except KeyError:
        raise ValueError(f"no voice for language {language!r}; expected one of {', '.join(VOICES)}") from None
