"""callflows.listening: partial words reach the live view while the caller speaks, a key ends the listening
and gives its recogniser back, the call's frames go to the port's listening without waking the call's thread
per frame (ScriptedCall feeds them from next_digit)."""
from __future__ import annotations

from callflow_fakes import Harness, Keys, Quiet, Say, ScriptedCall, write_flow

FLOW = """
    start: {kind: ask, prompt: {zh: 请说出您的诉求}, var: request, next: done}
    done: {kind: hangup, prompt: {zh: 再见}}
"""


class Watching:
    def __init__(self, fail: bool = False) -> None:
        self.partials: list[tuple[str, str]] = []
        self.fail = fail

    def node_entered(self, call_id, flow, node):
        pass

    def partial_transcript(self, call_id, text):
        self.partials.append((call_id, text))
        if self.fail:
            raise RuntimeError("the live view is down")

    def final_transcript(self, call_id, text):
        pass


def test_partial_words_reach_the_live_view_while_the_caller_speaks(tmp_path):
    observer = Watching()
    result = Harness(observer=observer).run(write_flow(tmp_path, FLOW),
                                            ScriptedCall(Quiet(0.5), Say("停水三天了", 1.0), Quiet(2)))
    assert result.vars["request"] == "停水三天了"
    assert observer.partials == [("call-1", "停水三天了")]  # once: reported when the words change


def test_a_failing_live_view_costs_neither_the_answer_nor_the_call(tmp_path):
    harness = Harness(observer=Watching(fail=True))
    result = harness.run(write_flow(tmp_path, FLOW), ScriptedCall(Quiet(0.5), Say("停水三天了", 1.0), Quiet(2)))
    assert result.outcome == "completed" and result.vars["request"] == "停水三天了"


def test_a_key_while_listening_ends_it_and_gives_the_recogniser_back(tmp_path):
    harness = Harness()
    harness.speech.capacity = 1
    result = harness.run(write_flow(tmp_path, FLOW), ScriptedCall(Quiet(0.5), Say("停水", 0.3), Keys("5"),
                                                                  Quiet(0.5), Say("停水三天了", 1.0), Quiet(2)))
    assert result.vars["request"] == "停水三天了"  # the key counted as a wrong answer, asked again
    assert harness.speech.open_turns == 0 and harness.speech.refused == 0
