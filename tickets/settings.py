"""The tickets' configurable domain rules, from the optional [tickets] section of the node's INI file (read
by the project's one reader, inifile): response-level durations, named deadline rules, the reminder fraction, the callback rule,
the classification rules file and holiday/workday overrides.

Every hotline sets these differently and they change with policy, so they are configuration; a mistake is
reported with the file, the section and the key, before any ticket gets a wrong deadline.

    [tickets]
    level_1 = 2h            ; h = hours, d = calendar days (response levels are durations)
    level_3 = 7d
    unit_reply = 2wd        ; wd = working days on the statutory calendar; rules also take h
    callback = 2wd          ; after the unit's reply; the callback rule is always named "callback"
    reminder_fraction = 0.8
    classification_rules = rules/classification.yaml   ; relative to the INI file
    holidays = 2027-01-01 2027-02-11                    ; administrator overrides
    workdays = 2027-02-07
    rejection_reasons = rules/rejection_reasons.yaml    ; 不予受理 reasons, relative to the INI file
    reply_channel = phone   ; how approved replies reach the citizen: phone (the callback call), sms, none
    attachments_dir = var/attachments                   ; reply attachments, relative to the INI file
    attachment_max_mb = text:2 audio:20 image:10 video:100
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

from inifile import IniFile, SettingError
from tickets.classify import DEFAULT_RULES
from tickets.deadlines import DeadlineSettings, Rule
from tickets.procedure_settings import (MB, REPLY_CHANNELS, ProcedureSettings, ReasonsError,
                                        load_rejection_reasons)

SECTION = "tickets"
_LEVEL_KEY = re.compile(r"level_([1-4])")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|d|wd)")


@dataclass(frozen=True)
class TicketSettings:
    deadlines: DeadlineSettings = field(default_factory=DeadlineSettings)
    classification_rules: Path = DEFAULT_RULES
    calendar_overrides: dict[date, bool] = field(default_factory=dict)  # True: working day, False: holiday
    procedures: ProcedureSettings = field(default_factory=ProcedureSettings)


def ticket_settings(config: IniFile) -> TicketSettings:
    """[tickets] of the node's file; a file without the section gets the defaults. Values may carry
    `; comments` after them; file names are relative to the file."""
    return config.parse(SECTION, lambda values: from_section(values, config.path.parent), inline_comments=True)


def load_ticket_settings(path: str | Path) -> TicketSettings:
    """ticket_settings of the INI file at `path` (inifile.ConfigError names the file, section and key)."""
    return ticket_settings(IniFile(path))


def from_section(section: Mapping[str, str], relative_to: Path) -> TicketSettings:
    """The settings from the section's raw values; SettingError names the key at fault."""
    defaults = DeadlineSettings()
    levels = dict(defaults.level_durations)
    rules = dict(defaults.rules)
    reminder_fraction = defaults.reminder_fraction
    classification_rules = DEFAULT_RULES
    overrides: dict[date, bool] = {}
    procedures: dict[str, object] = {}
    for key, raw in section.items():
        if level := _LEVEL_KEY.fullmatch(key):
            amount, unit = _duration(raw, ("h", "d"), lambda m: SettingError(key, m))
            levels[int(level.group(1))] = timedelta(hours=amount) if unit == "h" else timedelta(days=amount)
        elif key in rules:
            amount, unit = _duration(raw, ("h", "wd"), lambda m: SettingError(key, m))
            if unit == "wd" and not amount.is_integer():
                raise SettingError(key, f"must be a whole number of working days, got {raw!r}")
            rules[key] = Rule(hours=amount) if unit == "h" else Rule(working_days=int(amount))
        elif key == "reminder_fraction":
            try:
                reminder_fraction = float(raw)
            except ValueError:
                raise SettingError(key, f"must be a number between 0 and 1, got {raw!r}") from None
            if not 0 < reminder_fraction < 1:
                raise SettingError(key, f"must be between 0 and 1, got {raw!r}")
        elif key == "classification_rules":
            classification_rules = (relative_to / raw).resolve()
            if not classification_rules.is_file():
                raise SettingError(key, f"names no file: {classification_rules}")
        elif key in ("holidays", "workdays"):
            for text in raw.replace(",", " ").split():
                try:
                    overrides[date.fromisoformat(text)] = key == "workdays"
                except ValueError:
                    raise SettingError(key, f"expects dates as YYYY-MM-DD, got {text!r}") from None
        elif key in PROCEDURE_KEYS:
            procedures.update(_procedure_setting(key, raw, relative_to))
        else:
            known = ["level_1..level_4", *rules, "reminder_fraction", "classification_rules", "holidays", "workdays",
                     *PROCEDURE_KEYS]
            raise SettingError(key, f"is not a setting; known: {', '.join(known)}")
    deadlines = replace(defaults, level_durations=levels, rules=rules, reminder_fraction=reminder_fraction)
    return TicketSettings(deadlines, classification_rules, overrides, ProcedureSettings(**procedures))


PROCEDURE_KEYS = ("rejection_reasons", "reply_channel", "attachments_dir", "attachment_max_mb")


def _procedure_setting(key: str, raw: str, relative_to: Path) -> dict[str, object]:
    """One ProcedureSettings field from its [tickets] key (file names relative to the INI file)."""
    if key == "rejection_reasons":
        try:
            return {"rejection_reasons": load_rejection_reasons((relative_to / raw).resolve())}
        except ReasonsError as error:
            raise SettingError(key, f"cannot be used: {error}") from None
    if key == "reply_channel":
        if raw not in REPLY_CHANNELS:
            raise SettingError(key, f"must be one of {', '.join(REPLY_CHANNELS)}, got {raw!r}")
        return {"reply_channel": raw}
    if key == "attachments_dir":
        return {"attachments_dir": (relative_to / raw).resolve()}
    limits = dict(ProcedureSettings().attachment_max_bytes)
    for item in raw.replace(",", " ").split():
        kind, _, megabytes = item.partition(":")
        if kind not in limits or not re.fullmatch(r"\d+(\.\d+)?", megabytes) or float(megabytes) <= 0:
            raise SettingError(key, f"expects kind:megabytes for {', '.join(limits)}, e.g. video:100; got {item!r}")
        limits[kind] = int(float(megabytes) * MB)
    return {"attachment_max_bytes": limits}


def _duration(raw: str, units: tuple[str, ...], fail: Callable[[str], SettingError]) -> tuple[float, str]:
    match = _DURATION.fullmatch(raw.strip())
    if not match or match.group(2) not in units or float(match.group(1)) <= 0:
        raise fail(f"must be a positive amount with a unit ({', '.join(units)}), e.g. 2{units[0]}; got {raw!r}")
    return float(match.group(1)), match.group(2)
