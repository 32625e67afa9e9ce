"""The [tickets] section: durations, working-day rules, reminder fraction, rules file and overrides, and
mistakes reported with the key."""
from datetime import date, timedelta

import pytest

from tickets.deadlines import DeadlineSettings, Rule
from inifile import ConfigError
from tickets.settings import TicketSettings, load_ticket_settings


def write(tmp_path, text: str):
    path = tmp_path / "sip.conf"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_section_means_the_defaults(tmp_path):
    assert load_ticket_settings(write(tmp_path, "[sip]\nextension = 12345\n")) == TicketSettings()


def test_every_kind_of_setting(tmp_path):
    (tmp_path / "rules.yaml").write_text("levels: []\n", encoding="utf-8")
    settings = load_ticket_settings(write(tmp_path, (
        "[tickets]\nlevel_1 = 1h\nlevel_3 = 5d ; shorter than the national 7 days\nunit_reply = 3wd\n"
        "appeal_review = 12h\ncallback = 36h\nreminder_fraction = 0.75\nclassification_rules = rules.yaml\n"
        "holidays = 2027-01-01, 2027-02-11\nworkdays = 2027-02-07\n")))
    deadlines = settings.deadlines
    assert deadlines.level_durations == {1: timedelta(hours=1), 2: timedelta(hours=24), 3: timedelta(days=5),
                                         4: timedelta(days=15)}
    assert deadlines.rules["unit_reply"] == Rule(working_days=3)
    assert deadlines.rules["appeal_review"] == Rule(hours=12)
    assert deadlines.rules["callback"] == Rule(hours=36)
    assert deadlines.rules["appeal_resolution"] == DeadlineSettings().rules["appeal_resolution"]
    assert deadlines.reminder_fraction == 0.75
    assert settings.classification_rules == (tmp_path / "rules.yaml").resolve()
    assert settings.calendar_overrides == {date(2027, 1, 1): False, date(2027, 2, 11): False,
                                           date(2027, 2, 7): True}


@pytest.mark.parametrize("line, message", [
    ("level_5 = 2h", "level_5 is not a setting; known: level_1..level_4, unit_reply"),
    ("level_1 = 2wd", "level_1 must be a positive amount with a unit (h, d)"),
    ("unit_reply = 2d", "unit_reply must be a positive amount with a unit (h, wd)"),
    ("unit_reply = 1.5wd", "unit_reply must be a whole number of working days"),
    ("appeal_review = 0h", "appeal_review must be a positive amount"),
    ("reminder_fraction = 80%", "reminder_fraction must be a number between 0 and 1, got '80%'"),
    ("reminder_fraction = 1", "reminder_fraction must be between 0 and 1"),
    ("classification_rules = nowhere.yaml", "classification_rules names no file"),
    ("holidays = 2027-13-01", "holidays expects dates as YYYY-MM-DD, got '2027-13-01'"),
])
def test_mistakes_name_the_key(tmp_path, line, message):
    path = write(tmp_path, f"[tickets]\n{line}\n")
    with pytest.raises(ConfigError) as error:
        load_ticket_settings(path)
    assert str(error.value).startswith(f"{path}: [tickets] ")
    assert message in str(error.value)


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_ticket_settings(tmp_path / "missing.conf")
    with pytest.raises(ConfigError, match=r"\[line  3\]: option .level_1. in section .tickets. already exists"):
        load_ticket_settings(write(tmp_path, "[tickets]\nlevel_1 = 1h\nlevel_1 = 2h\n"))


def test_the_procedures_choices(tmp_path):
    (tmp_path / "reasons.yaml").write_text("out_of_area: 不属本市\nother: 其他\n", encoding="utf-8")
    settings = load_ticket_settings(write(tmp_path, (
        "[tickets]\ncomplaint_review = 12h\nrejection_reasons = reasons.yaml\nreply_channel = sms\n"
        "attachments_dir = files\nattachment_max_mb = video:50, text:0.5\n"))).procedures
    assert settings.rejection_reasons == {"out_of_area": "不属本市", "other": "其他"}
    assert (settings.reply_channel, settings.attachments_dir) == ("sms", (tmp_path / "files").resolve())
    assert settings.attachment_max_bytes["video"] == 50 * 1024 * 1024
    assert settings.attachment_max_bytes["text"] == 512 * 1024
    assert settings.attachment_max_bytes["image"] == 10 * 1024 * 1024  # the default


@pytest.mark.parametrize("line, message", [
    ("reply_channel = pigeon", "reply_channel must be one of phone, sms, none"),
    ("attachment_max_mb = video:lots", "attachment_max_mb expects kind:megabytes"),
    ("attachment_max_mb = pdf:3", "attachment_max_mb expects kind:megabytes"),
    ("rejection_reasons = missing.yaml", "rejection_reasons cannot be used"),
    ("rejection_reasons = no_other.yaml", "the reasons must include 'other'"),
])
def test_bad_procedure_settings_name_the_key(tmp_path, line, message):
    (tmp_path / "no_other.yaml").write_text("out_of_area: 不属本市\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_ticket_settings(write(tmp_path, f"[tickets]\n{line}\n"))
