"""app.config: the whole node configuration from the shipped example, and mistakes across sections."""
from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from datetime import time, timedelta

from app.config import CallbackSettings, CallflowSettings, JournalSettings, ServerSettings, load_config
from inifile import ConfigError
from tickets.settings import TicketSettings

EXAMPLE = Path(__file__).resolve().parents[2] / "sip.conf.example"


def test_the_shipped_example_loads_into_every_section():
    config = load_config(EXAMPLE)
    assert config.path == EXAMPLE
    assert config.server == ServerSettings()
    assert config.callflows == CallflowSettings()
    assert config.tickets == TicketSettings()
    assert config.journal == JournalSettings()
    assert config.callbacks == CallbackSettings()
    policy = config.callbacks.policy()
    assert (policy.attempts, policy.retry_interval, policy.quiet_start, policy.quiet_end, policy.call_on_holidays) == (
        3, timedelta(hours=2), time(21), time(8), False)
    assert (config.sip.extension, config.sip.test_extensions["1001"]) == ("12345", "test1001")


@pytest.mark.parametrize("section, key, value, message", [
    ("server", "http_port", "web", "[server] http_port must be a whole number, got 'web'"),
    ("callflows", "operator_seat", "front desk", "[callflows] operator_seat must be a SIP number (digits), got 'front desk'"),
    ("callflows", "flow", "hotline", "[callflows] flow 'hotline': no flow file"),
    ("tickets", "level_1", "soon", "[tickets] level_1 must be a positive amount with a unit (h, d)"),
    ("sip", "max_calls", "0", "[sip] max_calls must be at least 1"),
    ("journal", "reserved_numbers", "-1", "[journal] reserved_numbers must not be negative, got -1"),
    ("journal", "replay_interval_seconds", "0", "[journal] replay_interval_seconds must be positive, got 0.0"),
    ("journal", "keep_days", "a month", "[journal] keep_days must be a whole number, got 'a month'"),
    ("callbacks", "quiet_hours", "9pm-8am", "[callbacks] quiet_hours expects HH:MM-HH:MM, e.g. 21:00-08:00; got '9pm-8am'"),
    ("callbacks", "attempts", "0", "[callbacks] attempts must be at least 1, got 0"),
    ("callbacks", "retry_hours", "0", "[callbacks] retry_hours must be positive, got 0.0"),
    ("callbacks", "call_on_holidays", "sometimes", "[callbacks] call_on_holidays must be yes or no, got 'sometimes'"),
    ("callbacks", "flow", "survey", "[callbacks] flow 'survey': no flow file"),
])
def test_a_mistake_in_any_section_names_file_section_and_key(tmp_path, section, key, value, message):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(EXAMPLE, encoding="utf-8")
    parser[section][key] = value
    path = tmp_path / "sip.conf"
    with path.open("w", encoding="utf-8") as file:
        parser.write(file)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: {message}")


def test_police_referral_numbers_are_read_as_a_set_and_must_be_digits():
    from app.referrals import referral_vars
    from inifile import SettingError

    numbers = CallflowSettings(police_referral_numbers=" 110, 0433110 ").referral_numbers
    assert numbers == {"110", "0433110"}
    assert referral_vars(numbers, "0433110", "12345") == {"referred_by": "110"}      # by the calling number
    assert referral_vars(numbers, "1001", "110") == {"referred_by": "110"}           # by the number dialled
    assert referral_vars(numbers, "1001", "12345") == {}
    assert CallflowSettings().referral_numbers == frozenset()
    with pytest.raises(SettingError, match="police_referral_numbers"):
        CallflowSettings(police_referral_numbers="110, desk")
