"""Scenario files: a whole simulated conversation as a YAML list of steps, run after the call is answered.

    - expect-audio: {within: 8, seconds: 1.0}                 # hear >= 1 s of sound within 8 s
    - expect-audio: {within: 8, like: greeting.wav, similarity: 0.6}   # ...that matches this recording
    - wait: 0.5                                               # seconds
    - at: 4.0                                                 # until 4 s after the answer
    - dtmf: "1"                                               # or {digits: "12#", duration: 0.16, gap: 0.12}
    - say: question.wav                                       # or {file: x.wav, wait: false} / {text: "...", voice: ko}
    - expect-hangup: {within: 10}                             # the far end must hang up
    - hangup

Mistakes are reported as "step N (line L): ..." both when the file is read and when a step fails.
Relative file names are relative to the scenario file.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pcm import SAMPLE_RATE, SAMPLE_WIDTH, seconds

from .audio import load_audio, similarity, synthesize
from .phone import ActiveCall

STEP_KINDS = ("wait", "at", "dtmf", "say", "expect-audio", "expect-hangup", "hangup")
_ALLOWED = {
    "wait": {"seconds"},
    "at": {"seconds"},
    "dtmf": {"digits", "duration", "gap"},
    "say": {"file", "text", "voice", "wait"},
    "expect-audio": {"within", "seconds", "like", "similarity"},
    "expect-hangup": {"within"},
    "hangup": set(),
}
_SHORTHAND = {"wait": "seconds", "at": "seconds", "dtmf": "digits", "say": "file", "expect-hangup": "within"}


class ScenarioError(ValueError):
    """A scenario file mistake or a failed expectation, naming the step number (and line)."""


@dataclass(frozen=True)
class Step:
    number: int  # 1-based position in the list
    line: int | None
    kind: str
    args: dict[str, Any]

    def where(self) -> str:
        return f"step {self.number}" + (f" (line {self.line})" if self.line else "") + f" [{self.kind}]"


def parse_scenario(text: str, base_dir: Path = Path(".")) -> list[Step]:
    """Validate a scenario; ScenarioError with the step number and line for every mistake found first."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario is not valid YAML: {exc}") from exc
    if not isinstance(data, list) or not data:
        raise ScenarioError("a scenario is a non-empty YAML list of steps")
    lines = [node.start_mark.line + 1 for node in root.value] if root is not None else [None] * len(data)
    return [_parse_step(i + 1, lines[i], item, base_dir) for i, item in enumerate(data)]


def _parse_step(number: int, line: int | None, item: Any, base_dir: Path) -> Step:
    where = f"step {number}" + (f" (line {line})" if line else "")
    if isinstance(item, str):
        item = {item: None}
    if not isinstance(item, dict) or len(item) != 1:
        raise ScenarioError(f"{where}: each step is one of {', '.join(STEP_KINDS)} (a single key)")
    kind, value = next(iter(item.items()))
    if kind not in STEP_KINDS:
        raise ScenarioError(f"{where}: unknown step {kind!r}; expected one of {', '.join(STEP_KINDS)}")
    if value is None:
        args: dict[str, Any] = {}
    elif isinstance(value, dict):
        args = dict(value)
    elif kind in _SHORTHAND:
        args = {_SHORTHAND[kind]: value}
    else:
        raise ScenarioError(f"{where} [{kind}]: expected a mapping of {sorted(_ALLOWED[kind])}")
    unknown = set(args) - _ALLOWED[kind]
    if unknown:
        raise ScenarioError(f"{where} [{kind}]: unknown field(s) {sorted(unknown)}; allowed: {sorted(_ALLOWED[kind])}")
    _check_step(where, kind, args, base_dir)
    return Step(number, line, kind, args)


def _number(where: str, args: dict[str, Any], key: str, *, required: bool = False, default: float = 0.0) -> float:
    if key not in args:
        if required:
            raise ScenarioError(f"{where}: '{key}' is required")
        return default
    value = args[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ScenarioError(f"{where}: '{key}' must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _check_step(where: str, kind: str, args: dict[str, Any], base_dir: Path) -> None:
    where = f"{where} [{kind}]"
    if kind in ("wait", "at"):
        _number(where, args, "seconds", required=True)
    elif kind == "dtmf":
        digits = str(args.get("digits", ""))
        if not digits or any(d not in "0123456789*#ABCD" for d in digits):
            raise ScenarioError(f"{where}: 'digits' must be keys from 0-9 * # A-D, got {args.get('digits')!r}")
        args["digits"] = digits
        _number(where, args, "duration")
        _number(where, args, "gap")
    elif kind == "say":
        if ("file" in args) == ("text" in args):
            raise ScenarioError(f"{where}: give exactly one of 'file' or 'text'")
        if "file" in args:
            path = base_dir / str(args["file"])
            if not path.is_file():
                raise ScenarioError(f"{where}: audio file not found: {path}")
            args["file"] = path
    elif kind == "expect-audio":
        _number(where, args, "within", required=True)
        _number(where, args, "seconds")
        if "like" in args:
            path = base_dir / str(args["like"])
            if not path.is_file():
                raise ScenarioError(f"{where}: reference audio not found: {path}")
            args["like"] = path
            score = args.get("similarity", 0.6)
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 < score <= 1:
                raise ScenarioError(f"{where}: 'similarity' must be in (0, 1], got {score!r}")
    elif kind == "expect-hangup":
        _number(where, args, "within", required=True)


def load_scenario(path: str | Path) -> list[Step]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from exc
    return parse_scenario(text, path.parent)


def run_scenario(call: ActiveCall, steps: Sequence[Step]) -> None:
    """Run the steps on an answered call; ScenarioError names the step that failed."""
    started = call.answered_at or time.monotonic()
    for step in steps:
        if call.ended and step.kind not in ("expect-hangup", "hangup"):
            raise ScenarioError(f"{step.where()}: the call already ended (by {call.summary().ended_by})")
        _run_step(call, step, started)


def _run_step(call: ActiveCall, step: Step, started: float) -> None:
    args = step.args
    if step.kind == "wait":
        time.sleep(args["seconds"])
    elif step.kind == "at":
        time.sleep(max(0.0, started + args["seconds"] - time.monotonic()))
    elif step.kind == "dtmf":
        call.send_dtmf(args["digits"], duration=args.get("duration", 0.16), gap=args.get("gap", 0.12))
    elif step.kind == "say":
        pcm = load_audio(args["file"]) if "file" in args else synthesize(args["text"], args.get("voice", "en"))
        call.play(pcm, wait=bool(args.get("wait", True)))
    elif step.kind == "expect-audio":
        _expect_audio(call, step)
    elif step.kind == "expect-hangup":
        if not call.wait_ended(args["within"]):
            raise ScenarioError(f"{step.where()}: the far end did not hang up within {args['within']} s")
    elif step.kind == "hangup":
        call.hangup()


def _expect_audio(call: ActiveCall, step: Step) -> None:
    args = step.args
    since = seconds(call.heard())
    if "like" not in args:
        if not call.wait_for_audio(args.get("seconds", 0.5), args["within"], since=since):
            raise ScenarioError(f"{step.where()}: heard less than {args.get('seconds', 0.5)} s of sound "
                                f"within {args['within']} s")
        return
    reference = load_audio(args["like"])
    wanted = args.get("similarity", 0.6)
    deadline = time.monotonic() + args["within"]
    best = 0.0
    while True:
        heard = call.heard()[int(since * SAMPLE_RATE) * SAMPLE_WIDTH:]
        best = similarity(heard, reference).similarity
        if best >= wanted:
            return
        if time.monotonic() >= deadline or call.ended:
            raise ScenarioError(f"{step.where()}: did not hear {args['like'].name} (best similarity {best:.2f} "
                                f"< {wanted}) within {args['within']} s")
        time.sleep(0.25)
