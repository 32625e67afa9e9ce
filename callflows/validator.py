"""Checks that need the whole flow: where edges lead, what is reachable, prompts per language,
variables used by templates, and the rules of each node kind. Type and field mistakes are found
earlier by `callflows.loader`; `check_file` runs both and reports everything at once."""
from __future__ import annotations

import dataclasses
import typing
from collections import deque
from pathlib import Path

from callflows import model
from callflows.issues import FlowIssue
from callflows.loader import parse_flow
from callflows.model import (AskNode, BranchNode, CollectNode, Condition, Flow, InputNode, MenuNode, Node,
                             Prompt, RecordNode, SetNode, SubflowNode, TICKET_ACTIONS, TicketNode, KbAnswerNode)
from callflows.templates import FORMATS, LANGUAGES, placeholders

BUILTIN_VARS = ("caller", "called", "call_id", "language")
TICKET_OUTPUTS = {"propose": ("request_type", "topic", "level", "unit", "police_transfer"),
                  "create": ("ticket_number", "deadline"),
                  **{action: ("ticket_number", "ticket_status", "deadline", "request_type")
                     for action in ("update", "lookup", "answer", "transfer")}}
THREE_WAY_OUTPUTS = ("three_way_outcome", "three_way_seat", "three_way_id")
# Ticket columns a draft may carry (tickets.models.Ticket names; `phone` is the callback number).
DRAFT_FIELDS = ("content", "caller_name", "address", "phone", "request_type", "topic", "level", "language",
                "recording_ref", "name_recording_ref", "address_recording_ref", "handling_mode", "answer",
                "confidential", "referred_by")
DTMF_KEYS = set("0123456789*#")
_CONDITION_GROUPS = ("business_hours", "working_day", "language", "open_tickets", "speech_available",
                     "seats_on_duty", "var")


def check_file(path: Path) -> list[FlowIssue]:
    """Every mistake in the flow at `path` and in the sub-flows it uses (each with its own file:line)."""
    return read_checked(path)[0]


def read_checked(path: Path) -> tuple[list[FlowIssue], dict[str, Flow]]:
    """Parse and validate `path` and, transitively, its sub-flows (each file read once). Variables are
    shared by a call's flows, so a template may speak what another flow of the bundle sets."""
    issues: list[FlowIssue] = []
    flows: dict[str, Flow] = {}
    pending, seen = deque([path]), set()
    while pending:
        current = pending.popleft()
        if current in seen:
            continue
        seen.add(current)
        flow, found = parse_flow(current, current.read_text(encoding="utf-8"))
        issues += found
        if flow is not None:
            flows[flow.name] = flow
            pending.extend(subflow_path(flow, node.flow) for node in flow.nodes.values()
                           if isinstance(node, SubflowNode) and node.flow and subflow_path(flow, node.flow).exists())
    shared = set().union(*(vars_set_by(flow) for flow in flows.values()))
    for flow in flows.values():
        issues += validate(flow, shared)
    return sorted(set(issues)), flows


def subflow_path(flow: Flow, name: str) -> Path:
    return flow.path.parent / f"{name}.yaml"


def validate(flow: Flow, shared_vars: set[str] = frozenset()) -> list[FlowIssue]:
    """Checks of one parsed flow; `shared_vars` are set by the other flows of its bundle."""
    return _Validator(flow, shared_vars).run()


def vars_set_by(flow: Flow) -> set[str]:
    """Every variable that something in the flow (or the call itself) sets."""
    names = set(BUILTIN_VARS) | set(flow.vars) | set(flow.expects)
    if flow.emergency:
        names.add("police_transfer")
    for node in flow.nodes.values():
        if isinstance(node, (CollectNode, AskNode, RecordNode)) and node.var:
            names.add(node.var)
            if not isinstance(node, CollectNode):
                names.add(f"{node.var}_audio")
        elif isinstance(node, SetNode):
            names |= set(node.vars or {})
        elif isinstance(node, MenuNode):
            names |= {key for option in node.options or [] for key in option.assign}
        elif isinstance(node, TicketNode):
            names |= set(TICKET_OUTPUTS.get(node.action, ()))
        elif isinstance(node, KbAnswerNode):
            names.add("kb_answer")
        elif isinstance(node, model.ThreeWayNode):
            names |= set(THREE_WAY_OUTPUTS)
        elif isinstance(node, BranchNode) and any(case.condition and case.condition.open_tickets is not None
                                                  for case in node.cases or []):
            names.add("open_ticket_count")
    return names


class _Validator:
    def __init__(self, flow: Flow, shared_vars: set[str]):
        self.flow = flow
        self.issues: list[FlowIssue] = []
        self.known_vars = vars_set_by(flow) | shared_vars

    def error(self, line: int, message: str) -> None:
        self.issues.append(FlowIssue(self.flow.path, line, message))

    def run(self) -> list[FlowIssue]:
        self.check_flow()
        for node in self.flow.nodes.values():
            self.check_edges(node)
            self.check_fields(node, f"{node.kind} node '{node.name}'")
            check = getattr(self, f"check_{node.kind}", None)
            if check:
                check(node)
        self.check_reachable()
        return self.issues

    # -- the flow as a whole ---------------------------------------------------------------------

    def check_flow(self) -> None:
        flow = self.flow
        if flow.languages == []:
            self.error(flow.line_of("languages"), "the flow offers no languages; expected e.g. languages: [zh, ko]")
        for language in flow.languages or []:
            if language not in LANGUAGES:
                self.error(flow.line_of("languages"),
                           f"language '{language}' has no voice; expected one of: {', '.join(LANGUAGES)}")
        if flow.default_language and not self.offers(flow.default_language):
            self.error(flow.line_of("default_language"),
                       f"default_language '{flow.default_language}' is not one of the flow's languages")
        if flow.start and flow.start not in flow.nodes:
            self.error(flow.line_of("start"), f"start points to '{flow.start}', which is not a node of this flow")
        if flow.operator:
            if flow.operator.digit not in DTMF_KEYS:
                self.error(flow.operator.line_of("digit"), f"operator digit '{flow.operator.digit}' is not a key")
            self.check_target(flow.operator.node, flow.operator.line_of("node"), "operator node")
        if flow.emergency:
            self.check_target(flow.emergency.node, flow.emergency.line_of("node"), "emergency node")
        if flow.on_failure:
            self.check_target(flow.on_failure, flow.line_of("on_failure"), "on_failure")
        if flow.on_hangup:
            self.check_target(flow.on_hangup, flow.line_of("on_hangup"), "on_hangup")
        for var, field in flow.draft.items():
            if field not in DRAFT_FIELDS:
                self.error(flow.line_of("draft"),
                           f"draft maps '{var}' to unknown ticket field '{field}'; expected one of: "
                           f"{', '.join(DRAFT_FIELDS)}")
        for var, values in flow.labels.items():
            for value, words in values.items():
                for language in self.missing_languages(words):
                    self.error(flow.line_of("labels"), f"label '{value}' of '{var}' has no text for language "
                                                       f"'{language}' (the flow offers {', '.join(flow.languages)})")
        for name, template in flow.vars.items():
            self.check_template(template, flow.line_of("vars"), f"vars '{name}'")

    def offers(self, language: str) -> bool:
        """Whether the flow offers `language` (True when `languages` itself is broken: no cascades)."""
        return self.flow.languages is None or language in self.flow.languages

    def missing_languages(self, given: typing.Container[str]) -> list[str]:
        return [language for language in self.flow.languages or [] if language not in given]

    def check_target(self, target: str, line: int, what: str) -> None:
        if target not in self.flow.nodes:
            self.error(line, f"{what} points to '{target}', which is not a node of this flow")

    def check_edges(self, node: Node) -> None:
        for label, target, line in node.targets():
            self.check_target(target, line, f"'{label}' of {node.kind} node '{node.name}'")

    def check_reachable(self) -> None:
        roots = [self.flow.start, self.flow.on_failure, self.flow.on_hangup,
                 self.flow.operator and self.flow.operator.node, self.flow.emergency and self.flow.emergency.node]
        pending = deque(root for root in roots if root in self.flow.nodes)
        reached: set[str] = set()
        while pending:
            name = pending.popleft()
            if name in reached:
                continue
            reached.add(name)
            pending.extend(target for _, target, _ in self.flow.nodes[name].targets() if target in self.flow.nodes)
        for name, node in self.flow.nodes.items():
            if name not in reached:
                self.error(node.line, f"node '{name}' is unreachable from start '{self.flow.start}'")

    # -- prompts and templates, wherever they appear ------------------------------------------------

    def check_fields(self, obj: object, what: str) -> None:
        hints = typing.get_type_hints(type(obj), vars(model))
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            hint = hints[f.name]
            key = f.metadata.get("yaml", f.name)
            line = obj.line_of(f.name)
            if isinstance(value, Prompt):
                fixed = getattr(obj, "language", None) if isinstance(obj, model.PlayNode) else None
                self.check_prompt(value, f"{what} {key}", [fixed] if fixed else None)
            elif value and model.Template in _flatten(hint):
                texts = value.values() if isinstance(value, dict) else [value]
                for text in texts:
                    self.check_template(text, line, f"{what} {key}")
            elif isinstance(value, list):
                for item in value:
                    if dataclasses.is_dataclass(item):
                        self.check_fields(item, what)

    def check_prompt(self, prompt: Prompt, what: str, languages: list[str] | None = None) -> None:
        needed = languages or self.flow.languages or []
        for language in needed:
            if not prompt.covers(language):
                self.error(prompt.line, f"{what} has no text for language '{language}' "
                                        f"(the flow offers {', '.join(needed)})")
        for language, text in prompt.texts.items():
            if not self.offers(language):
                self.error(prompt.line_of(language), f"{what} has text for '{language}', which the flow does not "
                                                     f"offer (languages: {', '.join(self.flow.languages or [])})")
            self.check_template(text, prompt.line_of(language), what)
        for wav in ([prompt.wav] if prompt.wav else []) + list(prompt.wav_by_language.values()):
            if not (self.flow.path.parent / wav).is_file():
                self.error(prompt.line_of("wav"), f"{what}: recorded prompt '{wav}' not found "
                                                  f"(paths are relative to {self.flow.path.parent})")

    def check_template(self, template: str, line: int, what: str) -> None:
        for var, fmt in placeholders(template):
            if fmt is not None and fmt not in FORMATS:
                self.error(line, f"{what}: unknown format '{fmt}' in {{{var}:{fmt}}}; "
                                 f"expected one of: {', '.join(FORMATS)}")
            if var not in self.known_vars:
                self.error(line, f"{what} speaks {{{var}}}, which nothing in the flow sets")
            if fmt == "label" and var not in self.flow.labels:
                self.error(line, f"{what} speaks {{{var}:label}} but the flow has no labels for '{var}'")

    # -- per kind --------------------------------------------------------------------------------

    def check_input(self, node: InputNode) -> None:
        if node.retries is not None and node.retries < 0:
            self.error(node.line_of("retries"), f"{node.kind} node '{node.name}': retries must be 0 or more")
        if node.timeout is not None and node.timeout <= 0:
            self.error(node.line_of("timeout"), f"{node.kind} node '{node.name}': timeout must be above 0 seconds")
        if not node.on_failure and not self.flow.on_failure:
            self.error(node.line, f"{node.kind} node '{node.name}' has no way out when the caller fails: "
                                  f"give it on_failure, or give the flow an on_failure")

    def check_play(self, node: model.PlayNode) -> None:
        if node.language and not self.offers(node.language):
            self.error(node.line_of("language"), f"play node '{node.name}' speaks '{node.language}', "
                                                 f"which the flow does not offer")

    def check_menu(self, node: MenuNode) -> None:
        self.check_input(node)
        if not node.options:
            self.error(node.line, f"menu node '{node.name}' has no options")
            return
        digits: set[str] = set()
        operator_digit = self.flow.operator.digit if self.flow.operator else None
        for option in node.options:
            if not option.digit and not option.say:
                self.error(option.line, f"an option of menu node '{node.name}' needs a digit or words to say")
            if option.digit:
                if option.digit not in DTMF_KEYS:
                    self.error(option.line_of("digit"), f"menu node '{node.name}': '{option.digit}' is not a "
                                                        f"key; expected one of 0-9, * or #")
                elif option.digit in digits:
                    self.error(option.line_of("digit"), f"menu node '{node.name}': digit {option.digit} is used "
                                                        f"by two options")
                elif option.digit == operator_digit:
                    self.error(option.line_of("digit"), f"menu node '{node.name}': digit {option.digit} is "
                                                        f"reserved for the operator at any point")
                digits.add(option.digit)
            for language in option.say:
                if not self.offers(language):
                    self.error(option.line_of("say"), f"menu node '{node.name}': words for '{language}', "
                                                      f"which the flow does not offer")
        if all(option.next == node.name for option in node.options):
            self.error(node.line, f"menu node '{node.name}' has no way out: every option leads back to it")

    def check_collect(self, node: CollectNode) -> None:
        self.check_input(node)
        if node.min_length is not None and node.max_length is not None and node.min_length > node.max_length:
            self.error(node.line_of("min_length"), f"collect node '{node.name}': min_length {node.min_length} "
                                                   f"is above max_length {node.max_length}")
        if node.terminator is not None and node.terminator not in ("#", "*"):
            self.error(node.line_of("terminator"), f"collect node '{node.name}': terminator must be # or *")
        if node.confirm and node.read_back is None:
            self.error(node.line_of("confirm"), f"collect node '{node.name}': confirm needs a read_back prompt")

    def check_ask(self, node: AskNode) -> None:
        self.check_input(node)
        for language in (node.grammar or {}):
            if not self.offers(language):
                self.error(node.line_of("grammar"), f"ask node '{node.name}': grammar for '{language}', "
                                                    f"which the flow does not offer")

    def check_branch(self, node: BranchNode) -> None:
        for case in node.cases or []:
            if case.condition is not None:
                self.check_condition(case.condition, f"branch node '{node.name}'")

    def check_condition(self, condition: Condition, what: str) -> None:
        given = [group for group in _CONDITION_GROUPS if getattr(condition, group) is not None]
        if len(given) != 1:
            self.error(condition.line, f"{what}: a condition tests exactly one of: {', '.join(_CONDITION_GROUPS)}"
                                       f" (got {', '.join(given) or 'none'})")
        tests = [t for t in ("equals", "one_of", "empty") if getattr(condition, t) is not None]
        if condition.var is not None and len(tests) != 1:
            self.error(condition.line, f"{what}: 'var: {condition.var}' needs exactly one of equals, one_of, empty")
        if condition.var is None and tests:
            self.error(condition.line, f"{what}: {tests[0]} needs a 'var'")
        if condition.var and condition.var not in self.known_vars:
            self.error(condition.line_of("var"), f"{what} tests '{condition.var}', which nothing in the flow sets")
        if condition.language and not self.offers(condition.language):
            self.error(condition.line_of("language"), f"{what} tests language '{condition.language}', "
                                                      f"which the flow does not offer")
        for templated in ("seats_on_duty", "equals"):
            if getattr(condition, templated) is not None:
                self.check_template(getattr(condition, templated), condition.line_of(templated), what)
        if condition.business_hours is not None and self.flow.business_hours is None:
            self.error(condition.line_of("business_hours"), f"{what} tests business_hours but the flow sets no "
                                                            f"business_hours (start/end)")

    def check_ticket(self, node: TicketNode) -> None:
        what = f"ticket node '{node.name}'"
        if node.action not in TICKET_ACTIONS:
            self.error(node.line_of("action"), f"{what}: unknown action '{node.action}'; expected one of: "
                                               f"{', '.join(TICKET_ACTIONS)}")
        if node.action == "propose" and not node.text:
            self.error(node.line, f"{what}: action propose needs 'text' (what to classify)")
        if node.action in ("update", "lookup", "answer", "transfer") and not node.number:
            self.error(node.line, f"{what}: action {node.action} needs 'number'")
        if node.action in ("update", "lookup") and not node.on_not_found:
            self.error(node.line, f"{what}: action {node.action} needs 'on_not_found'")
        if node.action in ("answer", "transfer") and not node.unit:
            self.error(node.line, f"{what}: action {node.action} needs 'unit' (the member unit)")

    def check_subflow(self, node: SubflowNode) -> None:
        if node.flow and not subflow_path(self.flow, node.flow).is_file():
            self.error(node.line_of("flow"), f"subflow node '{node.name}': sub-flow '{node.flow}' not found "
                                             f"(expected {subflow_path(self.flow, node.flow)})")


def _flatten(hint: object) -> set[object]:
    args = typing.get_args(hint)
    return {hint} | set().union(*(_flatten(arg) for arg in args)) if args else {hint}
