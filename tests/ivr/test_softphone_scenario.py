"""Scenario files: valid steps parse to typed steps, every mistake names its step number and line."""

from __future__ import annotations

import argparse

import pytest

from ivr.softphone.__main__ import dtmf_steps
from pcm import write_wav
from ivr.softphone.scenario import ScenarioError, parse_scenario


def test_parses_every_step_kind(tmp_path):
    write_wav(tmp_path / "q.wav", bytes(1600))
    steps = parse_scenario(
        "- expect-audio: {within: 8, seconds: 1}\n"
        "- wait: 0.5\n"
        "- at: 3\n"
        "- dtmf: 12#\n"
        "- say: q.wav\n"
        "- say: {text: hello, voice: en}\n"
        "- expect-audio: {within: 5, like: q.wav, similarity: 0.7}\n"
        "- expect-hangup: 10\n"
        "- hangup\n", tmp_path)
    assert [(s.number, s.line, s.kind) for s in steps] == [
        (1, 1, "expect-audio"), (2, 2, "wait"), (3, 3, "at"), (4, 4, "dtmf"), (5, 5, "say"), (6, 6, "say"),
        (7, 7, "expect-audio"), (8, 8, "expect-hangup"), (9, 9, "hangup")]
    assert steps[3].args == {"digits": "12#"}
    assert steps[4].args["file"] == tmp_path / "q.wav"
    assert steps[7].args == {"within": 10}


@pytest.mark.parametrize("text, message", [
    ("- wait: 1\n- dtmf: 1x\n", "step 2 (line 2) [dtmf]: 'digits' must be keys"),
    ("- wait: 1\n\n- jump: 3\n", "step 2 (line 3): unknown step 'jump'"),
    ("- wait: -1\n", "step 1 (line 1) [wait]: 'seconds' must be a number"),
    ("- say: missing.wav\n", "step 1 (line 1) [say]: audio file not found"),
    ("- say: {file: a.wav, text: hi}\n", "exactly one of 'file' or 'text'"),
    ("- expect-audio: {seconds: 1}\n", "step 1 (line 1) [expect-audio]: 'within' is required"),
    ("- expect-audio: {within: 1, loud: yes}\n", "unknown field(s) ['loud']"),
    ("- hangup\n- {wait: 1, dtmf: 2}\n", "step 2 (line 2): each step is one of"),
    ("wait: 1\n", "a non-empty YAML list"),
    ("- wait: [1\n", "not valid YAML"),
])
def test_mistakes_name_the_step_and_line(tmp_path, text, message):
    with pytest.raises(ScenarioError) as error:
        parse_scenario(text, tmp_path)
    assert message in str(error.value)


def test_cli_dtmf_moments():
    steps = dtmf_steps("1,2,#@7.5,3")
    assert [(s.kind, s.args) for s in steps] == [
        ("at", {"seconds": 2.0}), ("dtmf", {"digits": "1"}), ("at", {"seconds": 3.0}), ("dtmf", {"digits": "2"}),
        ("at", {"seconds": 7.5}), ("dtmf", {"digits": "#"}), ("at", {"seconds": 8.5}), ("dtmf", {"digits": "3"})]
    with pytest.raises(argparse.ArgumentTypeError, match="'x' is not a key"):
        dtmf_steps("1,x")
