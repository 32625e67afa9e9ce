"""Deadlines on the 2026 statutory calendar (Spring Festival, National Day, make-up Saturdays), at day
boundaries, and past the end of chinesecalendar's data (2027)."""
import logging
from datetime import date, datetime, timedelta, timezone

import pytest

from tickets.calendar import WorkingCalendar
from tickets.deadlines import SHANGHAI, DeadlinePolicy, DeadlineSettings, Rule


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def end_of(day: str) -> datetime:
    return at(f"{day}T23:59:59")


@pytest.fixture
def policy():
    return DeadlinePolicy(DeadlineSettings(), WorkingCalendar())


def test_calendar_knows_2026_make_up_days_and_holidays():
    calendar = WorkingCalendar()
    assert calendar.is_working_day(date(2026, 2, 14))  # Saturday, make-up day before Spring Festival
    assert not calendar.is_working_day(date(2026, 2, 16))  # Monday inside Spring Festival
    assert calendar.is_working_day(date(2026, 10, 10))  # Saturday, make-up day after National Day
    assert not calendar.is_working_day(date(2026, 10, 5))
    assert calendar.has_statutory_data(date(2026, 12, 31)) and not calendar.has_statutory_data(date(2027, 1, 4))


@pytest.mark.parametrize("received, n, due", [
    ("2026-02-13T10:00", 2, "2026-02-24"),  # Fri; Sat 14th is a make-up working day, 15th-23rd holiday
    ("2026-02-12T10:00", 2, "2026-02-14"),  # Thu; Fri 13th, make-up Sat 14th
    ("2026-02-16T09:00", 1, "2026-02-24"),  # received on a holiday: first working day after it
    ("2026-09-30T17:00", 2, "2026-10-09"),  # National Day 1st-7th
    ("2026-10-09T12:00", 1, "2026-10-10"),  # Fri; the make-up Saturday counts
    ("2026-10-09T12:00", 2, "2026-10-12"),
    ("2026-09-18T08:00", 7, "2026-09-29"),  # Mid-Autumn 25th-27th, make-up Sunday 20th counts
])
def test_working_days_across_statutory_holidays(policy, received, n, due):
    deadline = policy.working_days(at(received), n)
    assert deadline.due == end_of(due)
    assert deadline.statutory_data_missing is False


def test_day_boundaries_count_from_the_day_of_receipt_in_shanghai(policy):
    assert policy.working_days(at("2026-03-02T00:00:00"), 2).due == end_of("2026-03-04")
    assert policy.working_days(at("2026-03-02T23:59:59"), 2).due == end_of("2026-03-04")
    assert policy.working_days(at("2026-03-03T00:00:00"), 2).due == end_of("2026-03-05")
    # 2026-03-02 16:30 UTC is already 00:30 on the 3rd in Shanghai
    received_utc = datetime(2026, 3, 2, 16, 30, tzinfo=timezone.utc)
    assert policy.working_days(received_utc, 2).due == end_of("2026-03-05")


def test_levels_are_durations_from_receipt(policy):
    received = at("2026-02-14T22:30")
    assert [policy.for_level(received, level).due for level in (1, 2, 3, 4)] == [
        at("2026-02-15T00:30"), at("2026-02-15T22:30"), at("2026-02-21T22:30"), at("2026-03-01T22:30")]
    with pytest.raises(ValueError, match="level"):
        policy.for_level(received, 5)


def test_appeal_rules(policy):
    received = at("2026-09-30T09:00")
    assert policy.for_rule(received, "appeal_review").due == at("2026-10-01T09:00")
    assert policy.for_rule(received, "appeal_investigation").due == end_of("2026-10-10")
    assert policy.for_rule(received, "appeal_resolution").due == end_of("2026-10-15")
    assert policy.for_rule(received, "unit_reply").due == end_of("2026-10-09")
    with pytest.raises(ValueError, match="unknown deadline rule 'nap'"):
        policy.for_rule(received, "nap")


def test_past_the_calendar_data_falls_back_and_says_so(policy, caplog):
    with caplog.at_level(logging.WARNING, logger="tickets.calendar"):
        deadline = policy.working_days(at("2027-03-05T10:00"), 2)  # Fri, 2027: Mon-Fri fallback
    assert deadline == type(deadline)(end_of("2027-03-09"), True)


def test_crossing_into_2027_with_an_administrator_override():
    received = at("2026-12-30T10:00")
    plain = DeadlinePolicy(DeadlineSettings(), WorkingCalendar()).working_days(received, 3)
    assert (plain.due, plain.statutory_data_missing) == (end_of("2027-01-04"), True)  # counts Fri 1 Jan
    overridden = DeadlinePolicy(DeadlineSettings(), WorkingCalendar({date(2027, 1, 1): False}))
    assert overridden.working_days(received, 3).due == end_of("2027-01-05")
    inside_2026 = overridden.working_days(at("2026-12-28T10:00"), 2)
    assert (inside_2026.due, inside_2026.statutory_data_missing) == (end_of("2026-12-30"), False)


def test_override_turns_a_statutory_working_day_into_a_holiday():
    calendar = WorkingCalendar({date(2026, 3, 3): False, date(2026, 3, 7): True})
    policy = DeadlinePolicy(DeadlineSettings(), calendar)
    assert policy.working_days(at("2026-03-02T10:00"), 1).due == end_of("2026-03-04")
    assert policy.working_days(at("2026-03-06T10:00"), 1).due == end_of("2026-03-07")


def test_reminder_and_callback_and_configuration():
    settings = DeadlineSettings(level_durations={1: timedelta(hours=1)}, reminder_fraction=0.5,
                                rules={**DeadlineSettings().rules, "callback": Rule(hours=12)})
    policy = DeadlinePolicy(settings, WorkingCalendar())
    received = at("2026-05-06T08:00")
    due = policy.for_level(received, 1).due
    assert policy.reminder_at(received, due) == at("2026-05-06T08:30")
    assert policy.for_kind(at("2026-05-06T09:00"), "callback", 1).due == at("2026-05-06T21:00")
    assert policy.for_kind(at("2026-05-06T09:00"), "response", 1).due == at("2026-05-06T10:00")
    with pytest.raises(ValueError, match="reminder_fraction"):
        DeadlineSettings(reminder_fraction=1.5)
    with pytest.raises(ValueError, match="missing unit_reply"):
        DeadlineSettings(rules={"callback": Rule(hours=12)})
    with pytest.raises(ValueError, match="either hours or working_days"):
        Rule(hours=1, working_days=1)
    with pytest.raises(ValueError, match="time zone"):
        policy.for_level(datetime(2026, 5, 6, 8), 1)
