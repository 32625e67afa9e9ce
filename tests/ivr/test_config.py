"""ivr.config: the shipped sip.conf.example loads, and every kind of mistake names the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from inifile import ConfigError
from ivr.config import IvrSettings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "sip.conf.example"


def test_the_shipped_example_documents_and_loads_every_setting():
    settings = load_settings(EXAMPLE)
    assert settings == IvrSettings(registrar_host="127.0.0.1", registrar_port=5060, extension="12345",
                                   password="change-me", local_ip="127.0.0.1", sip_port=0, rtp_port_low=10000,
                                   rtp_port_high=20000, codecs=("PCMU", "PCMA"), max_calls=100,
                                   register_expires=120, register_timeout=5.0,
                                   test_extensions={"1001": "test1001", "1002": "test1002", "1003": "test1003"})
    text = EXAMPLE.read_text()
    for name in IvrSettings.__dataclass_fields__:
        if name != "test_extensions":
            assert f"\n{name} = " in text, f"{name} is not documented in sip.conf.example"


@pytest.mark.parametrize("line,message", [
    ("registrar_port = five", r"\[sip\] registrar_port must be a whole number, got 'five'"),
    ("max_calls = 0", r"\[sip\] max_calls must be at least 1"),
    ("codecs = PCMU, G729", r"\[sip\] codecs must be a non-empty list of PCMU, PCMA"),
    ("rtp_port_high = 9000", r"\[sip\] rtp_port_low/rtp_port_high need 1024 <= low < high"),
    ("max_calls = 5\nmax_calls = 6", r"\[line  4\]: option 'max_calls' in section 'sip' already exists"),
    ("registar_host = typo", r"unknown setting\(s\) in \[sip\]: registar_host"),
    ("ack_timeout = 0", r"\[sip\] ack_timeout must be a positive number of seconds"),
    ("media_timeout = -1", r"\[sip\] media_timeout must be 0 \(never\) or a positive number of seconds"),
])
def test_mistakes_name_the_file_and_the_key(tmp_path, line, message):
    path = tmp_path / "sip.conf"
    path.write_text(f"[sip]\nrtp_port_low = 10000\n{line}\n")
    with pytest.raises(ConfigError, match=message) as error:
        load_settings(path)
    assert str(path) in str(error.value)


def test_missing_file_or_section(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.conf")
    (tmp_path / "other.conf").write_text("[http]\nport = 8000\n")
    with pytest.raises(ConfigError, match=r"no \[sip\] section"):
        load_settings(tmp_path / "other.conf")
