"""Deadline policy: response levels (四级响应), working-day rules and reminder times.

Levels are fixed durations from receipt (2 h, 24 h, 7 days, 15 days by default). "N working days" means
23:59:59 Asia/Shanghai on the N-th working day after the day of receipt, on `WorkingCalendar`. Every number
is configuration (`DeadlineSettings`); `python -m tickets due` lets an administrator check the arithmetic.
Each `DeadlineKind` but `response` is a rule of the same name; `response` is the level's duration.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from tickets.calendar import WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
END_OF_DAY = time(23, 59, 59)


class DeadlineKind(StrEnum):
    """Every deadline a ticket can be under (where each comes from in the procedures)."""

    RESPONSE = "response"  # 四级响应: 2 h / 24 h / 7 days / 15 days by level
    UNIT_REPLY = "unit_reply"  # 承办部门应在2个工作日内回复 (from dispatch)
    COMPLAINT_REVIEW = "complaint_review"  # 投诉: 24小时内完成初步审核 (第十九条)
    APPEAL_REVIEW = "appeal_review"  # 申诉: 24小时内完成初步审核 (第十条)
    APPEAL_INVESTIGATION = "appeal_investigation"  # 3个工作日内完成调查核实 (第十一条)
    APPEAL_RESOLUTION = "appeal_resolution"  # 7个工作日内完成解决 (第十四条)
    CALLBACK = "callback"  # 回访 after the reply reached the citizen


@dataclass(frozen=True)
class Rule:
    """A named deadline: either a fixed duration or a number of working days (exactly one is set)."""

    hours: float | None = None
    working_days: int | None = None

    def __post_init__(self) -> None:
        if (self.hours is None) == (self.working_days is None):
            raise ValueError("a deadline rule has either hours or working_days")


def _default_levels() -> dict[int, timedelta]:
    return {1: timedelta(hours=2), 2: timedelta(hours=24), 3: timedelta(days=7), 4: timedelta(days=15)}


def _default_rules() -> dict[str, Rule]:
    return {
        DeadlineKind.UNIT_REPLY: Rule(working_days=2),
        DeadlineKind.COMPLAINT_REVIEW: Rule(hours=24),
        DeadlineKind.APPEAL_REVIEW: Rule(hours=24),
        DeadlineKind.APPEAL_INVESTIGATION: Rule(working_days=3),
        DeadlineKind.APPEAL_RESOLUTION: Rule(working_days=7),
        DeadlineKind.CALLBACK: Rule(working_days=2),  # the procedures set none: what hotlines commonly use
    }


@dataclass(frozen=True)
class DeadlineSettings:
    level_durations: dict[int, timedelta] = field(default_factory=_default_levels)
    rules: dict[str, Rule] = field(default_factory=_default_rules)
    reminder_fraction: float = 0.8  # 催办 when this share of the time has passed

    def __post_init__(self) -> None:
        if not 0 < self.reminder_fraction < 1:
            raise ValueError(f"reminder_fraction must be between 0 and 1, got {self.reminder_fraction}")
        missing = [kind.value for kind in DeadlineKind if kind != DeadlineKind.RESPONSE and kind not in self.rules]
        if missing:
            raise ValueError(f"rules: every deadline kind needs a rule; missing {', '.join(missing)}")


@dataclass(frozen=True)
class Deadline:
    due: datetime
    statutory_data_missing: bool = False


class DeadlinePolicy:
    def __init__(self, settings: DeadlineSettings, calendar: WorkingCalendar):
        self.settings = settings
        self.calendar = calendar

    def for_level(self, received: datetime, level: int) -> Deadline:
        try:
            duration = self.settings.level_durations[level]
        except KeyError:
            raise ValueError(f"level: response level must be one of {sorted(self.settings.level_durations)}, "
                             f"got {level}") from None
        return Deadline(_aware(received) + duration)

    def working_days(self, received: datetime, n: int) -> Deadline:
        if n < 1:
            raise ValueError(f"working_days must be at least 1, got {n}")
        day = _aware(received).astimezone(SHANGHAI).date()
        missing = False
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            missing |= not self.calendar.has_statutory_data(day)
            counted += self.calendar.is_working_day(day)
        return Deadline(datetime.combine(day, END_OF_DAY, SHANGHAI), missing)

    def for_rule(self, received: datetime, rule: str) -> Deadline:
        try:
            spec = self.settings.rules[rule]
        except KeyError:
            raise ValueError(f"rule: unknown deadline rule {rule!r}; known: {', '.join(sorted(self.settings.rules))}"
                             ) from None
        if spec.hours is not None:
            return Deadline(_aware(received) + timedelta(hours=spec.hours))
        return self.working_days(received, spec.working_days)

    def for_kind(self, start: datetime, kind: DeadlineKind | str, level: int) -> Deadline:
        """The due time of a deadline of `kind` started at `start` (`level` matters only for `response`)."""
        if kind == DeadlineKind.RESPONSE:
            return self.for_level(start, level)
        return self.for_rule(start, kind)

    def reminder_at(self, received: datetime, due: datetime) -> datetime:
        start = _aware(received)
        return start + (_aware(due) - start) * self.settings.reminder_fraction


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"a time zone is required, got the naive datetime {moment.isoformat()}")
    return moment
