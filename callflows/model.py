"""Typed form of a call-flow file: one dataclass per node kind, built by `callflows.loader`.

Field names are the YAML keys (a few YAML keys that are Python keywords are mapped through the
``yaml`` metadata: ``if`` -> ``condition``, ``else`` -> ``otherwise``, ``set`` -> ``assign``).
Every parsed object keeps the line it started on and the line of each field, so that the validator
can point at the exact place of a mistake.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NewType

NodeRef = NewType("NodeRef", str)
"""The name of another node of the same flow (checked by the validator)."""

Template = NewType("Template", str)
"""Text with ``{variable}`` or ``{variable:format}`` placeholders (see `callflows.templates`)."""


def _yaml(key: str) -> dict:
    return {"yaml": key}


def required(default, **metadata):
    """A field the file must give, declared with a placeholder default to satisfy dataclass ordering."""
    return field(default=default, metadata={"required": True, **metadata})


@dataclass
class Located:
    """Something parsed from the file: where it starts and where each of its fields starts."""

    line: int = field(default=0, kw_only=True)
    lines: dict[str, int] = field(default_factory=dict, kw_only=True)

    def line_of(self, name: str) -> int:
        return self.lines.get(name, self.line)


@dataclass
class Prompt(Located):
    """What to say: text per language, or a recorded WAV (one for all languages, or per language).

    A recorded WAV overrides the text for the languages it covers.
    """

    texts: dict[str, Template]
    wav: str | None = None
    wav_by_language: dict[str, str] = field(default_factory=dict)

    def covers(self, language: str) -> bool:
        return self.wav is not None or language in self.texts or language in self.wav_by_language


@dataclass
class MenuOption(Located):
    digit: str | None = None
    say: dict[str, list[str]] = field(default_factory=dict)
    next: NodeRef = required(NodeRef(""))
    assign: dict[str, Template] = field(default_factory=dict, metadata=_yaml("set"))

    @property
    def label(self) -> str:
        words = [word for phrases in self.say.values() for word in phrases[:1]]
        return " / ".join(([self.digit] if self.digit else []) + words)


@dataclass
class Condition(Located):
    """One test; exactly one of the groups below is given (the validator checks)."""

    business_hours: bool | None = None
    working_day: bool | None = None
    language: str | None = None
    open_tickets: bool | None = None
    speech_available: bool | None = None
    seats_on_duty: Template | None = None  # the unit named here has remote seats that can be rung now
    var: str | None = None
    equals: Template | None = None  # may name another variable: "{ticket_last4}"
    one_of: list[str] | None = None
    empty: bool | None = None


@dataclass
class BranchCase(Located):
    condition: Condition | None = required(None, yaml="if")
    next: NodeRef = required(NodeRef(""))


@dataclass
class BusinessHours(Located):
    start: str = "08:30"
    end: str = "17:30"


@dataclass
class OperatorEscape(Located):
    """The digit that reaches a human at any point, and the node that does it."""

    digit: str = "0"
    node: NodeRef = NodeRef("")


@dataclass
class EmergencyWatch(Located):
    """Words of danger in any free-speech answer (the ticket rules' police transfer, `police_transfer` set to
    at_once or ask) run the flow from `node` at once; when that part ends in a `return` node (the caller
    declined 110) the call goes on after the answer."""

    node: NodeRef = NodeRef("")


@dataclass
class Node(Located):
    name: str = field(default="", kw_only=True)

    kind = "node"

    def targets(self) -> list[tuple[str, NodeRef, int]]:
        """(label, node, line) for every edge leaving this node, for the validator and the diagram."""
        found: list[tuple[str, NodeRef, int]] = []
        for attr in ("next", "on_failure", "on_not_found", "on_error", "not_found", "no_model", "otherwise"):
            value = getattr(self, attr, None)
            if value:
                found.append(("else" if attr == "otherwise" else attr, value, self.line_of(attr)))
        return found


@dataclass
class InputNode(Node):
    """Shared by the nodes that wait for the caller: they re-prompt and finally give up."""

    prompt: Prompt
    timeout: float = 5.0
    retries: int = 1
    no_input: Prompt | None = None
    invalid: Prompt | None = None
    barge_in: bool = True
    on_failure: NodeRef | None = None


@dataclass
class PlayNode(Node):
    """`language` speaks the prompt in that language whatever the caller's is (e.g. offering Korean)."""

    kind = "play"
    prompt: Prompt
    next: NodeRef
    barge_in: bool = True
    language: str | None = None


@dataclass
class MenuNode(InputNode):
    """Without a prompt the menu just listens (after play nodes that announced it)."""

    kind = "menu"
    prompt: Prompt | None = None
    options: list[MenuOption] = required(None)
    keypad_prompt: Prompt | None = None

    def targets(self) -> list[tuple[str, NodeRef, int]]:
        edges = [(option.label, option.next, option.line_of("next")) for option in self.options or []]
        return edges + super().targets()


@dataclass
class CollectNode(InputNode):
    kind = "collect"
    var: str = required("")
    next: NodeRef = required(NodeRef(""))
    min_length: int = 1
    max_length: int = 20
    terminator: str | None = "#"
    inter_digit_timeout: float = 3.0
    read_back: Prompt | None = None
    confirm: bool = False


@dataclass
class AskNode(InputNode):
    """Speech: with a grammar (phrases per language) or free speech recorded and transcribed."""

    kind = "ask"
    var: str = required("")
    next: NodeRef = required(NodeRef(""))
    grammar: dict[str, list[str]] | None = None
    keypad_prompt: Prompt | None = None
    max_length: float = 30.0
    end_silence: float = 1.2
    no_model: NodeRef | None = None


@dataclass
class RecordNode(Node):
    kind = "record"
    prompt: Prompt
    var: str
    next: NodeRef
    timeout: float = 5.0
    max_length: float = 60.0
    end_silence: float = 3.0


@dataclass
class BranchNode(Node):
    kind = "branch"
    cases: list[BranchCase]
    otherwise: NodeRef = field(metadata=_yaml("else"))

    def targets(self) -> list[tuple[str, NodeRef, int]]:
        edges = [(_describe(case.condition), case.next, case.line_of("next")) for case in self.cases or []]
        return edges + super().targets()


@dataclass
class SetNode(Node):
    kind = "set"
    vars: dict[str, Template]
    next: NodeRef


TICKET_ACTIONS = ("propose", "create", "update", "lookup", "answer", "transfer")


@dataclass
class TicketNode(Node):
    """propose: classify `text` (and name the topic's responsible `unit`); create: submit the call's draft;
    update/lookup: a ticket by `number`; answer: the ticket `number` was answered on the spot by `unit`
    (答复); transfer: the ticket `number` goes to `unit` (转办) under the unit's reply deadline. `note` is
    kept in the ticket's history (answer, transfer)."""

    kind = "ticket"
    action: str
    next: NodeRef
    text: Template | None = None
    number: Template | None = None
    unit: Template | None = None
    note: Template | None = None
    fields: dict[str, Template] = field(default_factory=dict)
    on_not_found: NodeRef | None = None
    on_error: NodeRef | None = None


@dataclass
class KbAnswerNode(Node):
    kind = "kb_answer"
    query: Template
    next: NodeRef
    not_found: NodeRef
    prompt: Prompt | None = None


@dataclass
class TransferNode(Node):
    kind = "transfer"
    number: Template
    prompt: Prompt | None = None
    on_failure: NodeRef | None = None


@dataclass
class ThreeWayNode(Node):
    """Connect the caller with `unit`'s remote seats (三方通话): `prompt` first, then the caller hears `hold`
    while the seats are rung; each seat hears `announcement` in its own language and accepts with 1. `next`
    once a seat took part (the seat has left), `on_failure` when nobody could (busy, no answer, declined,
    off duty). The operator digit still reaches the operator while waiting. Sets three_way_outcome,
    three_way_seat and three_way_id."""

    kind = "three_way"
    unit: Template
    announcement: Prompt
    next: NodeRef
    prompt: Prompt | None = None
    hold: Prompt | None = None
    on_failure: NodeRef | None = None


@dataclass
class SubflowNode(Node):
    kind = "subflow"
    flow: str
    next: NodeRef


@dataclass
class ReturnNode(Node):
    """Ends a sub-flow: the calling flow continues at the subflow node's `next`."""

    kind = "return"


@dataclass
class HangupNode(Node):
    kind = "hangup"
    prompt: Prompt | None = None


NODE_KINDS: dict[str, type[Node]] = {
    cls.kind: cls
    for cls in (PlayNode, MenuNode, CollectNode, AskNode, RecordNode, BranchNode, SetNode, TicketNode,
                KbAnswerNode, TransferNode, ThreeWayNode, SubflowNode, ReturnNode, HangupNode)
}


@dataclass
class Flow(Located):
    """One flow file. `path` is where it came from; sub-flows are looked up beside it."""

    path: Path = field(default=Path("."), kw_only=True)
    languages: list[str]
    start: NodeRef
    nodes: dict[str, Node]
    default_language: str | None = None
    description: str | None = None
    vars: dict[str, Template] = field(default_factory=dict)
    expects: list[str] = field(default_factory=list)
    operator: OperatorEscape | None = None
    emergency: EmergencyWatch | None = None
    on_failure: NodeRef | None = None
    on_hangup: NodeRef | None = None  # run after the caller hung up; only nodes that need no audio take effect
    business_hours: BusinessHours | None = None
    draft: dict[str, str] = field(default_factory=dict)
    labels: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def first_language(self) -> str:
        return self.default_language or self.languages[0]


def _describe(condition: Condition | None) -> str:
    if condition is None:
        return "?"
    parts = [f"{key}={value}" for key, value in vars(condition).items()
             if key not in ("line", "lines") and value is not None]
    return ", ".join(parts)
