"""The interpreter tells a CallObserver (callflows.ports) where each call is and what the caller said: the
feed of the operator console's live view."""
from __future__ import annotations

from callflow_fakes import Harness, Keys, Quiet, Say, ScriptedCall, write_flow
from callflows.interpreter import CallServices
from callflows.ports import NoCallObserver


class RecordingObserver:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def node_entered(self, call_id: str, flow: str, node: str) -> None:
        self.events.append(("node", call_id, flow, node))

    def partial_transcript(self, call_id: str, text: str) -> None:
        self.events.append(("partial", call_id, text))

    def final_transcript(self, call_id: str, text: str) -> None:
        self.events.append(("final", call_id, text))


class BrokenObserver(RecordingObserver):
    def node_entered(self, call_id: str, flow: str, node: str) -> None:
        raise RuntimeError("the live view is down")

    def final_transcript(self, call_id: str, text: str) -> None:
        raise RuntimeError("the live view is down")


FLOW = """
    start:
      kind: menu
      prompt: {zh: 投诉请按1或说投诉}
      options:
        - {digit: "1", say: {zh: [投诉]}, set: {request_type: 投诉}, next: ask}
    ask: {kind: ask, prompt: {zh: 请说出您的诉求}, var: request, next: sub}
    sub: {kind: subflow, flow: sub, next: done}
    done: {kind: hangup, prompt: {zh: 再见}}
"""
SUB = """
    start: {kind: collect, prompt: {zh: 请输入}, var: code, max_length: 2, next: back}
    back: {kind: return}
"""


def test_nodes_and_final_transcripts_are_reported_in_call_order(tmp_path):
    write_flow(tmp_path, SUB, name="sub")
    observer = RecordingObserver()
    call = ScriptedCall(Quiet(0.5), Say("投诉", 0.8), Quiet(1.5), Say("停水三天了", 1.0), Quiet(2), Keys("42"),
                        call_id="c0ffee")
    result = Harness(observer=observer).run(write_flow(tmp_path, FLOW), call)
    assert result.vars["request"] == "停水三天了"
    assert [event for event in observer.events if event[0] != "partial"] == [  # partials: test_flow_listening
        ("node", "c0ffee", "main", "start"),
        ("final", "c0ffee", "投诉"),            # the menu phrase the caller said
        ("node", "c0ffee", "main", "ask"),
        ("final", "c0ffee", "停水三天了"),       # the free-speech answer
        ("node", "c0ffee", "main", "sub"),
        ("node", "c0ffee", "sub", "start"),     # a sub-flow's nodes carry the sub-flow's name
        ("node", "c0ffee", "sub", "back"),
        ("node", "c0ffee", "main", "done"),
    ]


def test_keypad_answers_and_unrecognised_speech_report_no_transcript(tmp_path):
    write_flow(tmp_path, SUB, name="sub")
    observer = RecordingObserver()
    call = ScriptedCall(Keys("1"), Quiet(0.3), Say("<mumble>", 1.0), Quiet(2), Say("路灯坏了", 1.0), Quiet(2),
                        Keys("42"))
    Harness(observer=observer).run(write_flow(tmp_path, FLOW), call)
    assert [event for event in observer.events if event[0] == "final"] == [("final", "call-1", "路灯坏了")]


def test_a_failing_observer_never_costs_the_caller_the_call(tmp_path):
    write_flow(tmp_path, SUB, name="sub")
    harness = Harness(observer=BrokenObserver())
    call = ScriptedCall(Keys("1"), Quiet(0.3), Say("停水", 1.0), Quiet(2), Keys("42"))
    result = harness.run(write_flow(tmp_path, FLOW), call)
    assert result.outcome == "completed"
    assert result.visited == ["main:start", "main:ask", "main:sub", "sub:start", "sub:back", "main:done"]
    assert ("call-1", {"content": "停水"}) in harness.tickets.draft_log  # the answer was still saved
    assert call.texts()[-1] == "zh:再见"


def test_services_default_to_nobody_watching():
    services = CallServices(None, None, None, None, None, None)  # type: ignore[arg-type]
    assert isinstance(services.observer, NoCallObserver)
    assert services.observer is not CallServices(None, None, None, None, None, None).observer  # type: ignore
