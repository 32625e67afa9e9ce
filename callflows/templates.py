"""Prompt templates: `{var}` or `{var:format}` placeholders spoken in the caller's language.

Formats: `digits` (a ticket or phone number read digit by digit), `date` (month and day),
`datetime` (month, day, hour, minutes), `label` (a code such as `complaint` turned into words through the
flow's `labels`). Numbers are written out as words because the TTS voices read bare digits unreliably.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_]+))?\}")
FORMATS = ("digits", "date", "datetime", "label")
HOTLINE_TIME = ZoneInfo("Asia/Shanghai")  # callers hear deadlines in local time, whatever the database stores
# The languages a flow may speak: numbers and dates are worded for each, and the text-to-speech edge has a
# voice for each (tts.VOICES; tests/tts check that the two agree).
LANGUAGES = ("zh", "ko")

# Digit by digit, as numbers are read on the phone: 1 is 幺 in Mandarin, 0 is 공 in Korean.
_PHONE_DIGITS = {"zh": dict(zip("0123456789", "零幺二三四五六七八九")),
                 "ko": dict(zip("0123456789", ["공", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"]))}
_UNITS = {"zh": ("零一二三四五六七八九", "十"), "ko": (["영", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"], "십")}


def placeholders(template: str) -> list[tuple[str, str | None]]:
    """(variable, format) of every placeholder in `template`."""
    return [(match.group(1), match.group(2)) for match in PLACEHOLDER.finditer(template)]


def render(template: str, values: Mapping[str, Any], language: str,
           labels: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None) -> str:
    """Fill `template`; a variable that is not set speaks as nothing rather than breaking the call."""

    def fill(match: re.Match) -> str:
        name, fmt = match.group(1), match.group(2)
        value = values.get(name)
        if value is None:
            return ""
        if fmt == "digits":
            return spell_digits(str(value), language)
        if fmt in ("date", "datetime"):
            return speak_date(_as_datetime(value), language, with_time=fmt == "datetime")
        if fmt == "label":
            return (labels or {}).get(name, {}).get(str(value), {}).get(language, str(value))
        return str(value)

    return PLACEHOLDER.sub(fill, template)


def spell_digits(text: str, language: str) -> str:
    """'2026001' -> '二 零 二 六 ...' (other characters are kept)."""
    table = _PHONE_DIGITS.get(language, {})
    return " ".join(table.get(char, char) for char in text)


def spoken_numbers(text: str, language: str) -> str:
    """Digits in a Mandarin prompt written out for the voice: runs of one or two digits as a number
    (12 -> 十二), longer runs digit by digit as phone numbers are read (12345 -> 幺二三四五). The Mandarin
    voice reads pinyin, in which digits have no sound; the other voices read digits themselves, so their
    text is returned as it is."""
    if language != "zh":
        return text

    def numerals(match: re.Match) -> str:
        digits = match.group(0)
        return number_words(int(digits), "zh") if len(digits) <= 2 else spell_digits(digits, "zh").replace(" ", "")

    return re.sub(r"\d+", numerals, text)


def number_words(n: int, language: str) -> str:
    """0..99 in Sino-Chinese / Sino-Korean words, enough for months, days, hours and minutes."""
    if language not in _UNITS or not 0 <= n < 100:
        return str(n)
    ones, ten = _UNITS[language]
    if n < 10:
        return ones[n]
    tens, unit = divmod(n, 10)
    head = ten if tens == 1 else ones[tens] + ten
    return head + (ones[unit] if unit else "")


def speak_date(when: datetime | date, language: str, *, with_time: bool) -> str:
    if isinstance(when, datetime) and when.tzinfo is not None:
        when = when.astimezone(HOTLINE_TIME)
    month, day = number_words(when.month, language), number_words(when.day, language)
    hour = minute = ""
    if with_time and isinstance(when, datetime):
        hour = number_words(when.hour, language)
        minute = number_words(when.minute, language) if when.minute else ""
    if language == "zh":
        return f"{month}月{day}日" + (f"{hour}点" if hour else "") + (f"{minute}分" if minute else "")
    if language == "ko":
        return f"{month}월 {day}일" + (f" {hour}시" if hour else "") + (f" {minute}분" if minute else "")
    return when.isoformat(sep=" ", timespec="minutes") if isinstance(when, datetime) else when.isoformat()


def _as_datetime(value: Any) -> datetime | date:
    if isinstance(value, (datetime, date)):
        return value
    return datetime.fromisoformat(str(value))
