"""IVR node settings as a typed dataclass, and which sections of the node's INI file hold them.

The file is read by the project's one reader (inifile); this module only knows the telephony settings and
checks them, so a mistake is reported with the setting's name instead of surfacing as a socket error later.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from inifile import IniFile, SettingError

SUPPORTED_CODECS = ("PCMU", "PCMA")


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
    ack_timeout: float = 32.0  # an answered call with neither ACK nor media this long is hung up (RFC 3261 64*T1)
    media_timeout: float = 60.0  # a call whose far end sends no RTP this long is hung up; 0 = never
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
            (self.ack_timeout > 0, "ack_timeout", "must be a positive number of seconds"),
            (self.media_timeout >= 0, "media_timeout", "must be 0 (never) or a positive number of seconds"),
            (bool(self.extension), "extension", "must not be empty"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise SettingError(name, rule)


def ivr_settings(config: IniFile) -> IvrSettings:
    """[sip] (required) and the optional [test_extensions] table (extension = password) of the node's file."""
    return config.typed("sip", IvrSettings, required=True, convert={"codecs": _codecs},
                        extra={"test_extensions": config.values("test_extensions")})


def load_settings(path: str | Path) -> IvrSettings:
    """ivr_settings of the INI file at `path` (inifile.ConfigError names the file, section and key)."""
    return ivr_settings(IniFile(path))


def _codecs(raw: str) -> tuple[str, ...]:
    return tuple(codec.strip().upper() for codec in raw.split(",") if codec.strip())
