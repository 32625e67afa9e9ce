"""Prompt text -> 8 kHz 16-bit mono WAV with espeak-ng, cached on disk by a hash of (voice, spoken text).

Mandarin: espeak-ng's `cmn` voice reads many characters as English-spelled pinyin, while its
`cmn-latn-pinyin` voice speaks tone-numbered pinyin well, so Chinese text is converted with pypinyin first
(digits are written out as Chinese numerals, which pypinyin would otherwise pass through).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from pypinyin import Style, lazy_pinyin

from callflows.templates import number_words, spell_digits
from ivr.prompts import synthesize

VOICES = {"zh": "cmn-latn-pinyin", "ko": "ko"}
SPEEDS = {"zh": 190, "ko": 175}  # words per minute; the pinyin voice counts a syllable as a word
_ZH_PAUSES = str.maketrans({"，": ", ", "、": ", ", "；": ", ", "：": ", ", "。": ". ", "！": ". ", "？": "? ",
                            "（": " ", "）": " ", "“": " ", "”": " ", "《": " ", "》": " "})


def to_pinyin(text: str) -> str:
    """'请按1' -> 'qing3 an4 yao1': tone-numbered pinyin (neutral tone 5) for the cmn-latn-pinyin voice.

    Runs of one or two digits are read as a number (12 -> 十二), longer runs digit by digit (12345)."""
    def numerals(match: re.Match) -> str:
        digits = match.group(0)
        return number_words(int(digits), "zh") if len(digits) <= 2 else spell_digits(digits, "zh").replace(" ", "")

    chinese = re.sub(r"\d+", numerals, text)
    syllables = lazy_pinyin(chinese, style=Style.TONE3, neutral_tone_with_five=True)
    spoken = " ".join(" ".join(syllables).translate(_ZH_PAUSES).split())
    return re.sub(r" ([,.?])", r"\1", spoken)


def spoken_text(text: str, language: str) -> str:
    """What the voice is actually given for `text` in `language`."""
    return to_pinyin(text) if language == "zh" else text


class PromptSynthesizer:
    """Synthesises prompts once; later calls for the same voice and text return the cached file."""

    def __init__(self, cache_dir: Path, *, speeds: dict[str, int] | None = None):
        self.cache_dir = Path(cache_dir)
        self.speeds = {**SPEEDS, **(speeds or {})}

    def cache_path(self, text: str, language: str) -> Path:
        voice = self._voice(language)
        spoken = spoken_text(text, language)
        key = hashlib.sha256(f"{voice}\0{self.speeds[language]}\0{spoken}".encode()).hexdigest()
        return self.cache_dir / f"{key[:32]}.wav"

    def synthesize(self, text: str, language: str) -> Path:
        target = self.cache_path(text, language)
        if not target.exists():
            synthesize(spoken_text(text, language), self._voice(language), self.speeds[language], target)
        return target

    @staticmethod
    def _voice(language: str) -> str:
        try:
            return VOICES[language]
        except KeyError:
            raise ValueError(f"no voice for language {language!r}; expected one of {', '.join(VOICES)}") from None

