"""The per-call handler server.py gives the IVR."""
from __future__ import annotations

import os

import pytest

from callflow_fakes import FakePrompts, Harness, ScriptedCall
from callflows.handler import FlowCallHandler
from callflows.interpreter import CallServices
from callflows.issues import FlowError
from callflows.registry import FlowRegistry

FLOW = "languages: [zh]\nstart: hi\nvars: {{seat: '8000'}}\nnodes:\n" \
       "  hi: {{kind: hangup, prompt: {{zh: \"{text}{{seat}}\"}}}}\n"


def services(h: Harness) -> CallServices:
    return CallServices(h.speech, h.tickets, h.switchboard, h.recordings, FakePrompts(), h.calendar)


def test_each_call_runs_the_newest_flow_with_the_configured_vars(tmp_path):
    path = tmp_path / "hotline.yaml"
    path.write_text(FLOW.format(text="人工坐席"), encoding="utf-8")
    handler = FlowCallHandler(FlowRegistry(tmp_path), "hotline", services(Harness()), initial_vars={"seat": "8600"})
    first = ScriptedCall(call_id="a")
    assert handler(first).outcome == "completed"
    path.write_text(FLOW.format(text="座席号"), encoding="utf-8")
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    second = ScriptedCall(call_id="b")
    handler(second)
    assert first.texts() == ["zh:人工坐席8600"] and second.texts() == ["zh:座席号8600"]


def test_a_broken_flow_stops_start_up(tmp_path):
    (tmp_path / "hotline.yaml").write_text("languages: [zh]\nstart: x\nnodes: {}\n", encoding="utf-8")
    with pytest.raises(FlowError):
        FlowCallHandler(FlowRegistry(tmp_path), "hotline", services(Harness()))
