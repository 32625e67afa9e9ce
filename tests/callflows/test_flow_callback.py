"""The shipped callback flow (回访), driven by scripted citizens (logic only; the call through Kamailio is in
tests/app/test_callbacks_e2e.py): the reply read with the ticket's data for this call only, the
satisfaction by key or by word, the reason recorded, and a confidential ticket silent until the citizen
keys in the last four digits of its number."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import callflows
from callflow_fakes import HangUp, Harness, Keys, Quiet, Say, ScriptedCall
from callflows.bundle import load_bundle
from callflows.mermaid import to_mermaid
from callflows.validator import check_file

CALLBACK = Path(callflows.__file__).parent / "flows" / "callback.yaml"
HOTLINE = CALLBACK.with_name("hotline12345.yaml")
REPLY = {"ticket_number": "2026061001", "ticket_last4": "1001", "reply_unit": "市水务局",
         "reply_time": datetime(2026, 3, 2, 6, 30, tzinfo=timezone.utc), "reply_situation": "派员抢修供水管道",
         "reply_result": "当日恢复供水"}


def run(*events, harness: Harness | None = None, **overrides):
    harness = harness or Harness()
    call = ScriptedCall(*events, caller="12345")
    result = harness.run(load_bundle(CALLBACK), call, **{"citizen_language": "zh", "confidential": "no",
                                                         **REPLY, **overrides})
    return harness, call, result


def test_the_flow_passes_check_and_is_drawn():
    assert check_file(CALLBACK) == []
    diagram = to_mermaid(load_bundle(CALLBACK).main)
    assert 'n_ask_satisfaction -- "3 / 불만족" --> n_ask_reason' in diagram
    assert 'n_check_last4 -- "var=entered_last4, equals={ticket_last4}" --> n_reply' in diagram


def test_satisfied_by_key_after_hearing_the_reply():
    harness, call, result = run(Keys("1"))
    assert result.vars["satisfaction"] == "1"
    assert call.texts() == [
        "zh:您好，这里是12345热线回访。",
        "zh:关于您的工单二 零 二 六 零 六 幺 零 零 幺，市水务局于三月二日十四点三十分办理：派员抢修供水管道。办理结果：当日恢复供水。",
        "zh:满意请按1，基本满意请按2，不满意请按3。",
        "zh:感谢您的评价，再见。"]
    assert call.texts()[1] in harness.prompts.variable_texts  # the citizen's reply: never cached
    assert call.texts()[0] not in harness.prompts.variable_texts


def test_not_satisfied_records_one_short_reason():
    harness = Harness()
    harness.speech.languages = {"ko"}  # Mandarin has no model: the reason is recorded, not transcribed
    harness, call, result = run(Keys("3"), Say("还是没有水", 2.0), Quiet(2.5), harness=harness)
    assert (result.vars["satisfaction"], result.vars["reason_audio"], result.vars["reason"]) == (
        "3", "rec/call-1/reason-1.wav", "")
    assert harness.recordings.saved == [("call-1", "reason", "还是没有水")]
    assert call.texts()[-1] == "zh:已记录，工单将重新交办理单位办理。再见。"


def test_a_korean_reason_is_transcribed():
    _, _, result = run(Quiet(1.0), Say("불만족", 0.6), Quiet(1.0), Say("아직도 물이 안 나와요", 2.0), Quiet(2.5),
                       citizen_language="ko")
    assert (result.vars["satisfaction"], result.vars["reason"]) == ("3", "아직도 물이 안 나와요")


def test_korean_answers_by_word():
    _, call, result = run(Quiet(1.0), Say("보통", 0.6), Quiet(1.0), citizen_language="ko")
    assert result.vars["satisfaction"] == "2"
    assert call.texts()[0] == "ko:안녕하십니까, 12345 핫라인 만족도 조사입니다."


def test_confidential_ticket_says_nothing_identifying_before_the_last_four_digits():
    _, call, result = run(Keys("9999"), Quiet(7), Keys("1234"), confidential="yes")
    assert "satisfaction" not in result.vars
    assert call.texts() == ["zh:您好，这里是12345热线回访。", "zh:请输入您的工单号后四位。",
                            "zh:未能核实，我们会再与您联系。再见。"]
    assert result.vars["callback_outcome"] == "not_confirmed"
    _, call, result = run(Keys("1001"), Keys("2"), confidential="yes")
    assert result.vars["satisfaction"] == "2" and "二 零 二 六 零 六 幺 零 零 幺" in call.texts()[2]


def test_silence_is_no_answer_and_said_so():
    _, call, result = run(Quiet(20))
    assert "satisfaction" not in result.vars
    assert result.vars["callback_outcome"] == "silence"
    assert call.texts()[-1] == "zh:没有收到您的评价，我们会再与您联系。再见。"


def test_a_caller_with_a_pending_callback_is_offered_the_reply_in_the_intake_flow():
    harness = Harness()
    call = ScriptedCall(Keys("1"), Keys("1"), Quiet(1), Keys("3"), Say("还是没有水", 2.0), Quiet(2.5),
                        caller="13800001234")
    result = harness.run(load_bundle(HOTLINE), call, operator_number="8600", pending_callback="yes",
                         citizen_language="", confidential="no", **REPLY)
    assert (result.vars["satisfaction"], result.vars["reason_audio"]) == ("3", "rec/call-1/reason-1.wav")
    texts = call.texts()
    assert texts[2:5] == ["zh:您反映的问题已有办理结果，收听并评价请按1，办理其他事项请按2。", "zh:您好，这里是12345热线回访。",
                          "zh:关于您的工单二 零 二 六 零 六 幺 零 零 幺，市水务局于三月二日十四点三十分办理：派员抢修供水管道。"
                          "办理结果：当日恢复供水。"]
    assert harness.tickets.submitted == {}  # no intake ticket for it


def test_without_a_pending_callback_the_intake_flow_is_unchanged():
    call = ScriptedCall(Keys("1"), Quiet(1.0), HangUp())
    Harness().run(load_bundle(HOTLINE), call, operator_number="8600")
    assert "收听并评价" not in "".join(call.texts())
