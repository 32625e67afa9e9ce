"""The shipped 12345 flow, driven by scripted callers (logic only; the SIP end-to-end comes with ivr)."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import callflows
from callflow_fakes import Harness, HangUp, Keys, Quiet, Say, ScriptedCall
from callflows.bundle import load_bundle
from callflows.ports import TicketInfo
from callflows.validator import check_file

FLOWS = Path(callflows.__file__).parent / "flows"
HOTLINE = FLOWS / "hotline12345.yaml"
CALLER = "13904330001"


def run(harness: Harness, *events):
    call = ScriptedCall(*events, caller=CALLER)
    result = harness.run(load_bundle(HOTLINE), call, operator_number="8600")
    return call, result


def test_shipped_flows_pass_check():
    assert check_file(HOTLINE) == []
    assert check_file(FLOWS / "status_check.yaml") == []


def test_korean_complaint_by_speech_ends_with_a_ticket_read_back():
    harness = Harness()
    call, result = run(
        harness,
        Keys("2"),                                           # Korean, pressed during the greeting
        Quiet(1.5),                                          # no key at the emergency guidance
        Say("우리 집이 사흘째 단수입니다", 3.0), Quiet(2),       # the request in own words
        Say("네", 0.5), Quiet(1),                             # the proposed type/level is right
        Say("김철수", 0.8), Quiet(1.5),
        Say("연길시 건설가 5번지", 2.0), Quiet(2),
        Say("네", 0.5), Quiet(1))                             # call back on this number
    assert result.outcome == "completed"
    assert harness.tickets.submitted["2026000001"] == {
        "caller": CALLER, "content": "우리 집이 사흘째 단수입니다", "recording_ref": "rec/call-1/request-1.wav",
        "request_type": "投诉", "topic": "water", "level": 2, "caller_name": "김철수",
        "name_recording_ref": "rec/call-1/name-2.wav", "address": "연길시 건설가 5번지",
        "address_recording_ref": "rec/call-1/address-3.wav", "phone": CALLER,
        "handling_mode": "转办", "language": "ko"}
    assert call.texts() == [
        "zh:您好，12345热线。",
        "ko:조선어는 2번을 누르십시오.",
        "ko:긴급 상황은 일일공, 일일구, 일이공. 일일공 연결은 9번, 민원 조회는 8번.",
        "ko:용건을 말씀해 주십시오.",
        "ko:불편 신고 민원으로 물 전기 가스 난방 문제로 스물네 시간 안에 회신 처리합니다. "
        "맞으면 네 또는 1번, 아니면 아니요 또는 2번을 누르십시오.",
        "ko:성함을 말씀해 주십시오.",
        "ko:주소나 소속 단위를 말씀해 주십시오.",
        "ko:회신 전화는 일 삼 구 공 사 삼 삼 공 공 공 일 번호로 드립니다. 맞으면 네 또는 1번, 다른 번호는 아니요 또는 2번을 누르십시오.",
        "ko:접수되었습니다. 민원 번호는 이 공 이 육 공 공 공 공 공 일이고, 십이월 삼일 십칠시 삼십분까지 회신해 드리겠습니다.",
        "ko:전화해 주셔서 감사합니다. 안녕히 계십시오."]
    assert harness.tickets.incomplete == {}


def test_mandarin_without_a_speech_model_runs_on_keys_and_recordings():
    harness = Harness()
    harness.speech.languages = {"ko"}                        # only the Korean model is installed
    call, result = run(
        harness,
        Quiet(3.0),                                          # no language key: Mandarin; no emergency key
        Say("我家楼下的路灯坏了", 3.0), Quiet(2),               # recorded, not transcribed
        Keys("1"),                                           # type menu: complaint
        Say("王芳", 1.0), Quiet(1.5), Say("龙井路8号", 1.5), Quiet(2),
        Keys("2"), Keys("13812345678#"), Keys("1"))          # another callback number, confirmed
    ticket = harness.tickets.submitted["2026000001"]
    assert ticket["content"] == "" and ticket["recording_ref"] == "rec/call-1/request-1.wav"
    assert ticket["request_type"] == "投诉" and ticket["level"] == 3
    assert ticket["phone"] == "13812345678" and ticket["language"] == "zh"
    assert ticket["name_recording_ref"] == "rec/call-1/name-2.wav"
    assert harness.speech.requests == []
    texts = call.texts()
    assert "zh:请在提示后留言说明您的诉求，说完请稍候。" in texts
    assert "zh:回访电话使用您的来电号码幺 三 九 零 四 三 三 零 零 零 幺，对请按1，使用其他号码请按2。" in texts
    assert texts[-2] == "zh:您的诉求已受理，工单号是二 零 二 六 零 零 零 零 零 幺，我们将在十二月三日十七点三十分前给您答复。"
    assert result.outcome == "completed"


def test_consultation_answered_from_the_knowledge_base():
    harness = Harness()
    harness.tickets.kb = {"社保卡": "社保卡丢失可携带身份证到任一社保服务网点补办。"}
    call, _ = run(harness, Quiet(3.0), Say("社保卡丢了怎么补办", 2.0), Quiet(2), Keys("1"))
    assert call.texts()[-3:] == ["zh:为您查到以下答复：", "zh:社保卡丢失可携带身份证到任一社保服务网点补办。",
                                 "zh:感谢您的来电，再见。"]
    ticket = harness.tickets.submitted["2026000001"]
    assert ticket["handling_mode"] == "答复" and ticket["request_type"] == "咨询"


def test_status_check_by_ticket_number():
    harness = Harness()
    harness.tickets.known["2026000777"] = TicketInfo("2026000777", "in_progress", datetime(2026, 12, 8, 12, 0))
    call, _ = run(harness, Quiet(1.2), Keys("8"), Keys("2026000777#"))
    assert call.texts()[-2:] == [
        "zh:工单二 零 二 六 零 零 零 七 七 七目前正在办理，答复期限是十二月八日十二点。", "zh:感谢您的来电，再见。"]
    assert harness.tickets.drafts == {}


def test_nine_transfers_to_110():
    harness = Harness()
    call, result = run(harness, Quiet(1.2), Keys("9"))
    assert harness.switchboard.transfers == ["110"] and result.outcome == "transferred"
    assert call.texts()[-1] == "zh:正在为您转接110。"


def test_zero_while_giving_the_name_reaches_the_operator_and_keeps_the_draft():
    harness = Harness()
    call, result = run(harness, Quiet(3.0), Say("垃圾没人清运", 2.0), Quiet(2), Say("是"), Quiet(1), Keys("0"))
    assert harness.switchboard.transfers == ["8600"]
    assert harness.tickets.drafts["call-1"]["content"] == "垃圾没人清运"
    assert harness.tickets.incomplete == {"call-1": "transferred to 8600 at hotline12345:operator"}


def test_second_failure_to_understand_reaches_the_operator():
    harness = Harness()
    call, result = run(harness, Quiet(3.0), Say("垃圾没人清运", 2.0), Quiet(2),
                       Say("嗯嗯"), Quiet(1),                  # confirmation not understood: the type menu
                       Keys("7"))                              # invalid again: the operator
    assert call.texts()[-2:] == ["zh:请选择诉求类型：投诉请按1，咨询请按2，求助请按3，建议请按4，举报请按5，表扬请按6。",
                                 "zh:正在为您转接人工服务，请稍候。"]
    assert harness.switchboard.transfers == ["8600"]


def test_hang_up_halfway_leaves_a_draft_marked_incomplete():
    harness = Harness()
    _, result = run(harness, Keys("2"), Quiet(1.5), Say("가로등이 고장났어요", 2.0), Quiet(2), HangUp())
    assert result.outcome == "caller_hung_up"
    assert harness.tickets.drafts["call-1"] == {
        "caller": CALLER, "content": "가로등이 고장났어요", "recording_ref": "rec/call-1/request-1.wav", "level": 3,
        "language": "ko"}
    assert harness.tickets.incomplete == {"call-1": "caller hung up at hotline12345:type_menu"}
    assert harness.tickets.submitted == {}


def test_without_a_ticket_number_the_caller_is_told_it_comes_by_callback():
    harness = Harness()
    harness.tickets.number_by_callback = True
    call, result = run(harness, Quiet(3.0), Say("我家停水两天了", 2.0), Quiet(2), Say("是"), Quiet(1),
                       Say("王芳", 1.0), Quiet(1.5), Say("龙井路8号", 1.5), Quiet(2), Say("是"), Quiet(1))
    assert result.outcome == "completed" and len(harness.tickets.submitted) == 1
    assert call.texts()[-2] == "zh:您的诉求已受理，工单号将在回访时告诉您，我们将在十二月三日十七点三十分前给您答复。"


def test_operator_busy_says_recorded_only_when_the_request_was():
    harness = Harness()
    harness.switchboard.reachable = False
    call, _ = run(harness, Quiet(3.0), Say("垃圾没人清运", 2.0), Quiet(2), Keys("0"))
    assert call.texts()[-1] == "zh:人工坐席正忙，您反映的内容已经记录，我们会尽快与您联系。"
    assert harness.tickets.drafts["call-1"]["content"] == "垃圾没人清运"

    harness = Harness()
    harness.switchboard.reachable = False
    call, _ = run(harness, Keys("0"))                        # 0 at once: nothing was said
    assert call.texts()[-1] == "zh:人工坐席正忙，请稍后再拨打12345。"
    assert harness.tickets.drafts == {}


def test_with_the_recognisers_at_capacity_the_caller_is_served_on_keys_and_still_gets_a_ticket():
    """Graceful overload: no recogniser free for this caller (fake capacity 0). The flow does not wait or
    fail: keypad prompts, the request recorded for later transcription, the type chosen by key, the
    callback confirmed by key; a complete ticket, not an operator transfer."""
    harness = Harness()
    harness.speech.capacity = 0
    call, result = run(
        harness,
        Keys("2"), Quiet(1.5),
        Say("우리 집이 사흘째 단수입니다", 3.0), Quiet(2),      # recorded, not recognised
        Keys("1"),                                           # type menu: complaint
        Say("김철수", 0.8), Quiet(1.5), Say("연길시 건설가 5번지", 2.0), Quiet(2),
        Keys("1"))                                           # call back on this number
    assert result.outcome == "completed" and harness.switchboard.transfers == []
    ticket = harness.tickets.submitted["2026000001"]
    assert (ticket["content"], ticket["request_type"], ticket["phone"]) == ("", "投诉", CALLER)
    assert ticket["recording_ref"] == "rec/call-1/request-1.wav"
    assert ticket["address_recording_ref"] == "rec/call-1/address-3.wav"
    assert harness.speech.requests == [] and harness.speech.refused == 1  # refused once, then keys for good
    assert "ko:용건을 녹음해 주십시오. 말씀이 끝나면 잠시 기다려 주십시오." in call.texts()  # the keypad prompt
    assert any(text.startswith("ko:회신 전화는") and "맞으면 1번" in text for text in call.texts())


def test_a_caller_after_one_holding_the_last_recogniser_goes_to_keys_while_the_first_speaks():
    """Capacity 1 taken by another caller's open listening: this caller is refused and served on keys;
    once it is given back, the next caller speaks again."""
    harness = Harness()
    harness.speech.capacity = 1
    holder = harness.speech.listen("ko", timeout=5, max_length=10, end_silence=1)
    assert holder is not None
    call, result = run(harness, Keys("2"), Quiet(1.5), Say("우리 집이 사흘째 단수입니다", 3.0), Quiet(2), HangUp())
    assert harness.speech.refused == 1 and "ko:용건을 녹음해 주십시오. 말씀이 끝나면 잠시 기다려 주십시오." in call.texts()
    holder.cancel()
    call, result = run(harness, Keys("2"), Quiet(1.5), Say("우리 집이 사흘째 단수입니다", 3.0), Quiet(2), HangUp())
    assert harness.speech.refused == 1 and "ko:용건을 말씀해 주십시오." in call.texts()
    assert harness.speech.open_turns == 0  # every listening was given back, hang-up included

