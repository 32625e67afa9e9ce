"""inifile, the one configuration reader: which file a node and its tools use, typed sections, and errors
that name the file, the section and the key."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from inifile import CONFIG_ENV, ConfigError, IniFile, SettingError, config_path


@dataclass(frozen=True)
class Example:
    name: str = "x"
    count: int = 1
    ratio: float = 0.5
    enabled: bool = False

    def __post_init__(self) -> None:
        if self.count < 0:
            raise SettingError("count", "must not be negative")


def write(tmp_path, text: str):
    path = tmp_path / "node.conf"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_path_is_the_environment_then_sip_conf_then_the_example(tmp_path, monkeypatch):
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert config_path(tmp_path) == tmp_path / "sip.conf.example"
    (tmp_path / "sip.conf").write_text("[sip]\n")
    assert config_path(tmp_path) == tmp_path / "sip.conf"
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "elsewhere.conf"))
    assert config_path(tmp_path) == tmp_path / "elsewhere.conf"


def test_values_are_converted_by_field_type(tmp_path):
    config = IniFile(write(tmp_path, "[example]\nname = 热线\ncount = 7\nratio = 0.25\nenabled = yes\n"))
    assert config.typed("example", Example) == Example("热线", 7, 0.25, True)
    assert config.typed("absent", Example) == Example()


@pytest.mark.parametrize("line, message", [
    ("count = seven", "[example] count must be a whole number, got 'seven'"),
    ("ratio = half", "[example] ratio must be a number, got 'half'"),
    ("enabled = perhaps", "[example] enabled must be yes or no, got 'perhaps'"),
    ("count = -1", "[example] count must not be negative"),
    ("cuont = 1", "unknown setting(s) in [example]: cuont"),
])
def test_mistakes_name_the_file_the_section_and_the_key(tmp_path, line, message):
    path = write(tmp_path, f"[example]\n{line}\n")
    with pytest.raises(ConfigError) as error:
        IniFile(path).typed("example", Example)
    assert str(error.value) == f"{path}: {message}"


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found: .*missing.conf"):
        IniFile(tmp_path / "missing.conf")
    with pytest.raises(ConfigError, match=r"node.conf: .*\[line  3\]: option 'count' in section 'example'"):
        IniFile(write(tmp_path, "[example]\ncount = 1\ncount = 2\n"))
    with pytest.raises(ConfigError, match=r"no \[example\] section"):
        IniFile(write(tmp_path, "[other]\n")).typed("example", Example, required=True)


def test_inline_comments_only_where_a_section_allows_them(tmp_path):
    config = IniFile(write(tmp_path, "[example]\nname = secret ;with a semicolon\n"))
    assert config.values("example") == {"name": "secret ;with a semicolon"}
    assert config.values("example", inline_comments=True) == {"name": "secret"}


def test_a_section_parser_gets_its_errors_placed(tmp_path):
    path = write(tmp_path, "[example]\ncount = 3\n")

    def parse(values):
        raise SettingError("count", f"is {values['count']}, expected 4")

    with pytest.raises(ConfigError) as error:
        IniFile(path).parse("example", parse)
    assert str(error.value) == f"{path}: [example] count is 3, expected 4"
