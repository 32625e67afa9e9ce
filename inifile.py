"""The project's one configuration reader: an INI file → each package's typed settings, and which file.

A node is configured by one INI file (`sip.conf`, documented in `sip.conf.example`). Each package keeps its
own typed settings dataclass and its own rules (ivr.config for [sip], tickets.settings for [tickets],
app.config for [server] and [callflows]); this module reads the file once, converts values by the
dataclass's field types, and reports every mistake as `<file>: [<section>] <key> <what is wrong>`.

A leaf module like `pcm`: no project imports, so every package may use it. That matters because tools inside
the packages read the same file as the server (the simulated caller `python -m ivr.softphone` and
`python -m tickets due --config`), and those must not import the composition package (app/).
"""
from __future__ import annotations

import configparser
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent
CONFIG_ENV = "HOTLINE_SIP_CONF"

T = TypeVar("T")
_INLINE_COMMENT = re.compile(r"\s+;.*$")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file, and the section and key when one is at fault."""


class SettingError(ValueError):
    """Raised by a package's settings code for one bad value; the reader adds the file and the section."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key} {message}")
        self.key = key


def config_path(root: Path = ROOT) -> Path:
    """The configuration file of this checkout, the same for the server and the tools:
    $HOTLINE_SIP_CONF when set, else `sip.conf` when present, else the documented `sip.conf.example`."""
    if configured := os.environ.get(CONFIG_ENV):
        return Path(configured)
    local = root / "sip.conf"
    return local if local.is_file() else root / "sip.conf.example"


class IniFile:
    """One INI file, read once. Sections are looked up by name; a missing section is empty."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._parser = configparser.ConfigParser(interpolation=None)
        try:
            if not self._parser.read(self.path, encoding="utf-8"):
                raise ConfigError(f"configuration file not found: {self.path}")
        except configparser.Error as error:  # duplicate keys, lines outside a section...: the message has the line
            raise ConfigError(f"{self.path}: {error}") from None

    def has_section(self, section: str) -> bool:
        return self._parser.has_section(section)

    def values(self, section: str, *, inline_comments: bool = False) -> dict[str, str]:
        """The raw values of `section` ({} when it is absent). With `inline_comments`, text after ` ;` is
        dropped; off by default because secrets (passwords, tokens) may contain ';'."""
        if not self._parser.has_section(section):
            return {}
        raw = dict(self._parser[section])
        if inline_comments:
            raw = {key: _INLINE_COMMENT.sub("", value) for key, value in raw.items()}
        return {key: value.strip() for key, value in raw.items()}

    def error(self, section: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: [{section}] {message}")

    def parse(self, section: str, parser: Callable[[dict[str, str]], T], *, inline_comments: bool = False) -> T:
        """`parser(values of section)`, with a SettingError it raises turned into a ConfigError naming this file
        and the section."""
        try:
            return parser(self.values(section, inline_comments=inline_comments))
        except SettingError as error:
            raise self.error(section, str(error)) from None

    def typed(self, section: str, settings_class: type[T], *,
              convert: Mapping[str, Callable[[str], Any]] | None = None, extra: Mapping[str, Any] | None = None,
              required: bool = False) -> T:
        """`section` as the frozen dataclass `settings_class`: values converted by field type (str, int, float,
        bool) or by `convert[key]`, plus `extra` fields given as they are. Unknown keys, values of the wrong
        type, and a ValueError from the dataclass's own checks are reported with this file and the section."""
        if required and not self.has_section(section):
            raise ConfigError(f"{self.path}: no [{section}] section")
        types = {f.name: str(f.type) for f in fields(settings_class)}  # type: ignore[arg-type]
        values = self.values(section)
        unknown = set(values) - (set(types) - set(extra or {}))
        if unknown:
            raise ConfigError(f"{self.path}: unknown setting(s) in [{section}]: {', '.join(sorted(unknown))}")
        converters = {**_BY_TYPE, **(convert or {})}
        typed: dict[str, Any] = {}
        for key, raw in values.items():
            converter = converters.get(key) or converters.get(types[key], str)
            try:
                typed[key] = converter(raw)
            except SettingError as error:
                raise self.error(section, str(error)) from None
            except ValueError:
                raise self.error(section, f"{key} must be {_EXPECTED.get(types[key], 'valid')}, got {raw!r}") from None
        try:
            return settings_class(**typed, **(extra or {}))
        except SettingError as error:
            raise self.error(section, str(error)) from None
        except ValueError as error:  # the dataclass's own check, whose message names the key
            raise ConfigError(f"{self.path}: {error}") from None


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered not in configparser.ConfigParser.BOOLEAN_STATES:
        raise ValueError(raw)
    return configparser.ConfigParser.BOOLEAN_STATES[lowered]


_BY_TYPE: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "bool": _boolean, "str": str}
_EXPECTED = {"int": "a whole number", "float": "a number", "bool": "yes or no"}
