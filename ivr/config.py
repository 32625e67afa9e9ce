"""IVR node settings as a typed dataclass, and reading them from the [sip] section of an INI file.

server.py owns the configuration file; this module only knows the telephony settings and checks them, so a
mistake is reported with the setting's name instead of surfacing as a socket error later.
"""
from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from pathlib import Path

SUPPORTED_CODECS = ("PCMU", "PCMA")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the section, the key and the file."""


@dataclass(frozen=True)
class IvrSettings:
    registrar_host: str = "127.0.0.1"
    registrar_port: int = 5060
    extension: str = "12345"
    password: str = ""
    local_ip: str = "127.0.0.1"
    sip_port: int = 0  # 0: any free port (the registrar learns it from the Contact)
    rtp_port_low: int = 10000
    rtp_port_high: int = 20000
    codecs: tuple[str, ...] = SUPPORTED_CODECS  # in order of preference when the caller offers several
    max_calls: int = 100
    register_expires: int = 120  # seconds; re-registered this many seconds minus 5 later
    register_timeout: float = 5.0  # how long to wait for the registrar's answer
    test_extensions: dict[str, str] = field(default_factory=dict)  # extension -> password, for testers

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.registrar_port <= 65535, "registrar_port", "must be 1-65535"),
            (0 <= self.sip_port <= 65535, "sip_port", "must be 0-65535"),
            (1024 <= self.rtp_port_low < self.rtp_port_high <= 65535, "rtp_port_low/rtp_port_high",
             "need 1024 <= low < high <= 65535"),
            (bool(self.codecs) and all(c in SUPPORTED_CODECS for c in self.codecs), "codecs",
             f"must be a non-empty list of {', '.join(SUPPORTED_CODECS)}"),
            (self.max_calls >= 1, "max_calls", "must be at least 1"),
            (self.register_expires >= 30, "register_expires", "must be at least 30 seconds"),
            (bool(self.extension), "extension", "must not be empty"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise SettingsError(f"[sip] {name} {rule}")


_INT_KEYS = ("registrar_port", "sip_port", "rtp_port_low", "rtp_port_high", "max_calls", "register_expires")


def load_settings(path: str | Path) -> IvrSettings:
    """Read [sip] (and the optional [test_extensions] table: extension = password) from an INI file."""
    path = Path(path)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        if not parser.read(path, encoding="utf-8"):
            raise SettingsError(f"configuration file not found: {path}")
    except configparser.Error as exc:  # duplicate keys, lines outside a section...: the message has the line
        raise SettingsError(f"{path}: {exc}") from None
    if not parser.has_section("sip"):
        raise SettingsError(f"{path}: no [sip] section")
    section = parser["sip"]
    known = {f for f in IvrSettings.__dataclass_fields__ if f != "test_extensions"}
    unknown = set(section) - known
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) in [sip]: {', '.join(sorted(unknown))}")
    values: dict[str, object] = {}
    for key, raw in section.items():
        if key in _INT_KEYS:
            try:
                values[key] = int(raw)
            except ValueError:
                raise SettingsError(f"{path}: [sip] {key} must be a whole number, got {raw!r}") from None
        elif key == "register_timeout":
            try:
                values[key] = float(raw)
            except ValueError:
                raise SettingsError(f"{path}: [sip] {key} must be a number of seconds, got {raw!r}") from None
        elif key == "codecs":
            values[key] = tuple(c.strip().upper() for c in raw.split(",") if c.strip())
        else:
            values[key] = raw.strip()
    if parser.has_section("test_extensions"):
        values["test_extensions"] = dict(parser["test_extensions"])
    try:
        return IvrSettings(**values)  # type: ignore[arg-type]
    except SettingsError as exc:
        raise SettingsError(f"{path}: {exc}") from None
