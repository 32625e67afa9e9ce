"""YAML flow file -> typed `Flow`, reporting every type/field mistake with its line.

The file is read with `yaml.compose` (not `safe_load`) so that every value still carries the line it
came from, and so that scalars keep their raw text: a menu word `yes` stays the text "yes" and is not
turned into a boolean. Conversion is driven by the dataclass type hints in `callflows.model`, so a new
field needs no parser code.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from callflows import model
from callflows.issues import FlowIssue
from callflows.model import NODE_KINDS, Flow, Located, Node, Prompt

_INVALID = object()
_INTERNAL_FIELDS = {"line", "lines", "name", "path"}
_TRUE = {"true", "yes", "on"}


def parse_flow(path: Path, text: str) -> tuple[Flow | None, list[FlowIssue]]:
    """Parse `text` (the content of `path`); returns the flow (None when unusable) and the issues found."""
    reader = _Reader(path)
    try:
        root = yaml.compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, [FlowIssue(path, line, f"not valid YAML: {exc.problem or exc.context}")]
    if root is None:
        return None, [FlowIssue(path, 1, "the file is empty; expected a mapping with languages, start and nodes")]
    flow = reader.read_object(Flow, root, "flow")
    if isinstance(flow, Flow):
        flow.path = path
        return flow, reader.issues
    return None, reader.issues


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return f"'{node.value}'"


def _yaml_key(f: dataclasses.Field) -> str:
    return f.metadata.get("yaml", f.name)


class _Reader:
    def __init__(self, path: Path):
        self.path = path
        self.issues: list[FlowIssue] = []

    def error(self, node: yaml.Node | int, message: str) -> object:
        line = node if isinstance(node, int) else _line(node)
        self.issues.append(FlowIssue(self.path, line, message))
        return _INVALID

    # -- generic conversion by type hint ---------------------------------------------------------

    def convert(self, node: yaml.Node, hint: Any, what: str) -> Any:
        origin = typing.get_origin(hint)
        if origin in (typing.Union, types.UnionType):
            options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
            if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
                return None
            return self.convert(node, options[0], what)
        if hasattr(hint, "__supertype__"):  # NewType
            return self.convert(node, hint.__supertype__, what)
        if origin is list:
            if not isinstance(node, yaml.SequenceNode):
                return self.error(node, f"{what}: expected a list, got {_describe(node)}")
            items = [self.convert(item, typing.get_args(hint)[0], f"{what} item") for item in node.value]
            return [item for item in items if item is not _INVALID]
        if origin is dict:
            value_hint = typing.get_args(hint)[1]
            if value_hint is Node:
                return self.read_nodes(node)
            return self.read_mapping(node, value_hint, what)
        if hint is Prompt:
            return self.read_prompt(node, what)
        if isinstance(hint, type) and issubclass(hint, Located):
            return self.read_object(hint, node, what)
        return self.read_scalar(node, hint, what)

    def read_scalar(self, node: yaml.Node, hint: type, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode) or node.tag.endswith(":null"):
            expected = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}[hint]
            return self.error(node, f"{what}: expected {expected}, got {_describe(node) if node.value else 'nothing'}")
        tag = node.tag.rsplit(":", 1)[-1]
        if hint is str:
            return node.value
        if hint is bool and tag == "bool":
            return node.value.lower() in _TRUE
        if hint is int and tag == "int":
            return int(node.value)
        if hint is float and tag in ("int", "float"):
            return float(node.value)
        expected = {int: "a whole number", float: "a number", bool: "true or false"}[hint]
        return self.error(node, f"{what}: expected {expected}, got '{node.value}'")

    def pairs(self, node: yaml.Node, what: str) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
        """Key/value pairs of a mapping; reports a non-mapping and duplicate keys."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what}: expected a mapping, got {_describe(node)}")
            return []
        seen: set[str] = set()
        result = []
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                self.error(key, f"{what}: keys must be plain names")
                continue
            if key.value in seen:
                self.error(key, f"{what}: '{key.value}' is given twice")
                continue
            seen.add(key.value)
            result.append((key, value))
        return result

    def read_mapping(self, node: yaml.Node, value_hint: Any, what: str) -> Any:
        result = {}
        for key, value in self.pairs(node, what):
            converted = self.convert(value, value_hint, f"{what} '{key.value}'")
            if converted is not _INVALID:
                result[key.value] = converted
        return result if isinstance(node, yaml.MappingNode) else _INVALID

    def read_object(self, cls: type[Located], node: yaml.Node, what: str, skip: tuple[str, ...] = (),
                    line: int | None = None) -> Any:
        """Build dataclass `cls` from a mapping. Unknown, mistyped or missing fields are reported; the
        object is still built (with defaults in their place) so later checks can go on. `line` is where
        the object is named (a node's name), when that is not where its mapping starts."""
        line = line or _line(node)
        if not isinstance(node, yaml.MappingNode):
            return self.error(node, f"{what}: expected a mapping of fields, got {_describe(node)}")
        hints = typing.get_type_hints(cls, vars(model))
        known = {_yaml_key(f): f for f in dataclasses.fields(cls) if f.name not in _INTERNAL_FIELDS}
        kwargs: dict[str, Any] = {}
        lines: dict[str, int] = {}
        given: set[str] = set()
        for key, value in self.pairs(node, what):
            if key.value in skip:
                continue
            f = known.get(key.value)
            if f is None:
                expected = f"expected one of: {', '.join(known)}" if known else "it takes no fields"
                self.error(key, f"unknown field '{key.value}' in {what}; {expected}")
                continue
            given.add(key.value)
            converted = self.convert(value, hints[f.name], f"{what} field '{key.value}'")
            if converted is not _INVALID:
                kwargs[f.name] = converted
                lines[f.name] = _line(value)
        for key, f in known.items():
            has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            if key not in given and (not has_default or f.metadata.get("required")):
                self.error(line, f"{what} needs field '{key}'")
            if f.name not in kwargs and not has_default:
                kwargs[f.name] = None
        return cls(**kwargs, line=line, lines=lines)

    # -- the special shapes ----------------------------------------------------------------------

    def read_nodes(self, node: yaml.Node) -> dict[str, Node]:
        nodes: dict[str, Node] = {}
        for key, value in self.pairs(node, "nodes"):
            what = f"node '{key.value}'"
            if not isinstance(value, yaml.MappingNode):
                self.error(value, f"{what}: expected a mapping with a 'kind', got {_describe(value)}")
                continue
            kind_node = next((v for k, v in value.value if getattr(k, "value", None) == "kind"), None)
            if kind_node is None:
                self.error(value, f"{what} needs field 'kind' (one of: {', '.join(NODE_KINDS)})")
                continue
            cls = NODE_KINDS.get(getattr(kind_node, "value", None))
            if cls is None:
                self.error(kind_node, f"{what}: unknown node kind '{kind_node.value}'; "
                                      f"expected one of: {', '.join(NODE_KINDS)}")
                continue
            parsed = self.read_object(cls, value, f"{cls.kind} node '{key.value}'", skip=("kind",), line=_line(key))
            parsed.name = key.value
            nodes[key.value] = parsed
        return nodes

    def read_prompt(self, node: yaml.Node, what: str) -> Any:
        """{zh: text, ko: text} and/or wav: file | {zh: file, ...}."""
        if not isinstance(node, yaml.MappingNode):
            return self.error(node, f"{what}: expected text per language (e.g. zh: ..., ko: ...) "
                                    f"or wav: FILE, got {_describe(node)}")
        texts: dict[str, str] = {}
        wav, wav_by_language = None, {}
        lines: dict[str, int] = {}
        for key, value in self.pairs(node, what):
            lines[key.value] = _line(value)
            if key.value == "wav":
                if isinstance(value, yaml.MappingNode):
                    wav_by_language = self.read_mapping(value, str, f"{what} wav")
                else:
                    wav = self.read_scalar(value, str, f"{what} wav")
            else:
                text = self.read_scalar(value, str, f"{what} text for '{key.value}'")
                if text is not _INVALID:
                    texts[key.value] = text
        wav = None if wav is _INVALID else wav
        wav_by_language = {} if wav_by_language is _INVALID else wav_by_language
        return Prompt(texts, wav, wav_by_language, line=_line(node), lines=lines)
