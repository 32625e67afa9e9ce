"""Proposes a ticket's response level, request type and topic from its content by keyword rules, and whether
the words are a police matter for 110 (the procedures handle non-police matters only, 第二条/第三条).

The rules are data (tickets/rules/classification.yaml, or a file an administrator names) because every
hotline tunes them. A proposal is only a proposal: the operator or the caller confirms it. A level rule may
name `police_transfer`: `at_once` (fire, gas: the caller is put through to 110 without a question) or `ask`
(injury, collapse: 110 with the caller's consent key); any matched keyword of such a rule counts, whichever
keyword decides the level.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_RULES = Path(__file__).with_name("rules") / "classification.yaml"


POLICE_TRANSFERS = ("at_once", "ask")  # most urgent first


@dataclass(frozen=True)
class Proposal:
    level: int
    request_type: str | None = None
    topic: str | None = None
    matched: list[str] = field(default_factory=list)
    police_transfer: str | None = None  # one of POLICE_TRANSFERS when the words are a matter for 110


@dataclass(frozen=True)
class LevelRule:
    level: int
    topic: str | None
    keywords: tuple[str, ...]
    police_transfer: str | None = None


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and the line."""


class Classifier:
    def __init__(self, level_rules: list[LevelRule], request_types: Mapping[str, tuple[str, ...]],
                 default_level: int = 3):
        self.level_rules = level_rules
        self.request_types = dict(request_types)
        self.default_level = default_level

    @classmethod
    def from_file(cls, path: Path = DEFAULT_RULES) -> Classifier:
        text = path.read_text(encoding="utf-8")
        try:
            root = yaml.compose(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise RulesError(f"{path}{line}: not valid YAML: {getattr(error, 'problem', error)}") from None
        return cls._from_node(root, path)

    @classmethod
    def _from_node(cls, root: yaml.Node | None, path: Path) -> Classifier:
        def fail(node: yaml.Node, message: str) -> RulesError:
            return RulesError(f"{path}:{node.start_mark.line + 1}: {message}")

        if not isinstance(root, yaml.MappingNode):
            raise RulesError(f"{path}: expected a mapping with levels and request_types")
        sections = {key.value: value for key, value in root.value}
        unknown = set(sections) - {"default_level", "levels", "request_types"}
        if unknown:
            key = next(k for k, _ in root.value if k.value in unknown)
            raise fail(key, f"unknown key {key.value!r}; expected default_level, levels, request_types")
        data: dict[str, Any] = yaml.safe_load(yaml.serialize(root))
        level_rules = []
        for index, item in enumerate(data.get("levels") or []):
            node = sections["levels"].value[index]
            if not isinstance(item, dict) or not isinstance(item.get("level"), int) or item["level"] not in (1, 2, 3, 4):
                raise fail(node, "each level rule needs 'level: 1-4' and 'keywords: [...]'")
            keywords = item.get("keywords")
            if not isinstance(keywords, list) or not keywords or not all(isinstance(k, str) for k in keywords):
                raise fail(node, "'keywords' must be a non-empty list of words")
            police = item.get("police_transfer")
            if police is not None and police not in POLICE_TRANSFERS:
                raise fail(node, f"'police_transfer' must be one of {', '.join(POLICE_TRANSFERS)}, got {police!r}")
            level_rules.append(LevelRule(item["level"], item.get("topic"), tuple(keywords), police))
        request_types = {}
        for name, keywords in (data.get("request_types") or {}).items():
            if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
                node = next(v for k, v in sections["request_types"].value if k.value == name)
                raise fail(node, f"request type {name!r}: keywords must be a list of words")
            request_types[name] = tuple(keywords)
        default_level = data.get("default_level", 3)
        if default_level not in (1, 2, 3, 4):
            raise fail(sections["default_level"], "default_level must be 1-4")
        return cls(level_rules, request_types, default_level)

    def propose(self, text: str) -> Proposal:
        level, topic, level_word = self.default_level, None, None
        police: set[str] = set()
        for rule in self.level_rules:
            for word in rule.keywords:
                if word not in text:
                    continue
                if rule.police_transfer:
                    police.add(rule.police_transfer)
                if level_word is None or len(word) > len(level_word):
                    level, topic, level_word = rule.level, rule.topic, word
        request_type, type_word = None, None
        for name, keywords in self.request_types.items():
            for word in keywords:
                if word in text and (type_word is None or len(word) > len(type_word)):
                    request_type, type_word = name, word
        return Proposal(level, request_type, topic, [w for w in (level_word, type_word) if w],
                        next((kind for kind in POLICE_TRANSFERS if kind in police), None))
