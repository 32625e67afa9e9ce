"""Deadlines are spoken in the hotline's local time, whatever time zone the ticket service hands out; numbers
in Mandarin prompts are written out for the pinyin voice."""
from datetime import datetime, timezone

from callflows.templates import speak_date, spoken_numbers


def test_a_utc_deadline_is_spoken_in_shanghai_time():
    due = datetime(2026, 11, 29, 18, 30, tzinfo=timezone.utc)  # 02:30 on 30 November in Shanghai
    assert speak_date(due, "zh", with_time=True) == "十一月三十日二点三十分"
    assert speak_date(due, "ko", with_time=True) == "십일월 삼십일 이시 삼십분"
    assert speak_date(datetime(2026, 11, 29, 18, 30), "zh", with_time=True) == "十一月二十九日十八点三十分"


def test_digits_in_mandarin_become_numbers_or_digit_by_digit_and_other_languages_keep_them():
    assert spoken_numbers("12345热线，转接110请按9", "zh") == "幺二三四五热线，转接幺幺零请按九"
    assert spoken_numbers("12月3日", "zh") == "十二月三日"
    assert spoken_numbers("12345 민원", "ko") == "12345 민원"
