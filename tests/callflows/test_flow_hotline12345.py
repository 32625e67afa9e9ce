"""The shipped 12345 flow, driven by scripted callers (logic only; the SIP end-to-end comes with ivr)."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import callflows
from callflow_fakes import Harness, HangUp, Keys, Quiet, Say, ScriptedCall
from callflows.bundle import load_bundle
from callflows.ports import TicketInfo
from callflows.validator import check_file
from tickets.classify import Classifier

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
        Say("아니요", 0.5), Quiet(1),                          # no need to keep it confidential
        Say("김철수", 0.8), Quiet(1.5),
        Say("연길시 건설가 5번지", 2.0), Quiet(2),
        Say("네", 0.5), Quiet(1))                             # call back on this number
    assert result.outcome == "completed"
    assert harness.tickets.submitted["2026000001"] == {
        "caller": CALLER, "content": "우리 집이 사흘째 단수입니다", "recording_ref": "rec/call-1/request-1.wav",
        "request_type": "投诉", "topic": "water", "level": 2, "caller_name": "김철수",
        "name_recording_ref": "rec/call-1/name-2.wav", "address": "연길시 건설가 5번지",
        "address_recording_ref": "rec/call-1/address-3.wav", "phone": CALLER,
        "handling_mode": "转办", "language": "ko", "confidential": "false"}
    assert call.texts() == [
        "zh:您好，12345热线。",
        "ko:조선어는 2번을 누르십시오.",
        "ko:긴급 상황은 일일공, 일일구, 일이공. 일일공 연결은 9번, 민원 조회는 8번.",
        "ko:용건을 말씀해 주십시오.",
        "ko:불편 신고 민원으로 물 전기 가스 난방 문제로 스물네 시간 안에 회신 처리합니다. "
        "맞으면 네 또는 1번, 아니면 아니요 또는 2번을 누르십시오.",
        "ko:신고하신 분의 정보를 비밀로 해 드릴까요? 네 또는 1번, 아니요 또는 2번을 누르십시오.",
        "ko:성함을 말씀해 주십시오.",
        "ko:주소나 소속 단위를 말씀해 주십시오.",
        "ko:회신 전화는 일 삼 구 공 사 삼 삼 공 공 공 일 번호로 드립니다. 맞으면 네 또는 1번, 다른 번호는 아니요 또는 2번을 누르십시오.",
        "ko:접수되었습니다. 민원 번호는 이 공 이 육 공 공 공 공 공 일이고, 십이월 삼일 십칠시 삼십분까지 회신해 드리겠습니다.",
        "ko:전화해 주셔서 감사합니다. 안녕히 계십시오."]
    assert harness.tickets.incomplete == {}
    # The prompts with the caller's data are made for this call only (never cached); the callback question
    # was started while the caller gave the address.
    texts = call.texts()
    with_data = [texts[4], texts[8], texts[9]]  # proposed type and level, the caller's number, ticket number
    assert set(with_data) <= set(harness.prompts.variable_texts)
    assert not set(texts) - set(with_data) & set(harness.prompts.variable_texts)  # fixed ones: cached
    assert texts[8] in harness.prompts.prefetched


def test_mandarin_without_a_speech_model_runs_on_keys_and_recordings():
    harness = Harness()
    harness.speech.languages = {"ko"}                        # only the Korean model is installed
    call, result = run(
        harness,
        Quiet(3.0),                                          # no language key: Mandarin; no emergency key
        Say("我家楼下的路灯坏了", 3.0), Quiet(2),               # recorded, not transcribed
        Keys("1"), Keys("2"),                                # type menu: complaint; not confidential
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
    call, result = run(harness, Quiet(3.0), Say("我家停水两天了", 2.0), Quiet(2), Say("是"), Quiet(1),
                       Say("不是"), Quiet(1), Keys("0"))
    assert call.texts()[-2:] == ["zh:请说出您的姓名。", "zh:正在为您转接人工服务，请稍候。"]
    assert harness.switchboard.transfers == ["8600"]
    assert harness.tickets.drafts["call-1"]["content"] == "我家停水两天了"
    assert harness.tickets.incomplete == {"call-1": "transferred to 8600 at hotline12345:operator"}


def test_second_failure_to_understand_reaches_the_operator():
    harness = Harness()
    call, result = run(harness, Quiet(3.0), Say("垃圾没人清运", 2.0), Quiet(2),
                       Say("嗯嗯"), Quiet(1),                  # confirmation not understood: the type menu
                       Keys("8"))                              # invalid again: the operator
    assert call.texts()[-2:] == ["zh:请选择诉求类型：投诉请按1，咨询请按2，求助请按3，建议请按4，举报请按5，表扬请按6，申诉请按7。",
                                 "zh:正在为您转接人工服务，请稍候。"]
    assert harness.switchboard.transfers == ["8600"]
    assert harness.tickets.incomplete == {
        "call-1": "transferred to 8600 at hotline12345:operator after hotline12345:type_menu failed (invalid)"}


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
                       Say("不是"), Quiet(1), Say("王芳", 1.0), Quiet(1.5), Say("龙井路8号", 1.5), Quiet(2), Say("是"), Quiet(1))
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


def test_status_check_while_the_database_is_away_says_so_instead_of_not_found():
    harness = Harness()

    def away(number: str) -> None:
        raise ConnectionError("database away")

    harness.tickets.find = away
    call, _ = run(harness, Quiet(1.2), Keys("8"), Keys("2026000777#"))
    assert call.texts()[-2:] == ["zh:工单查询暂时无法使用，请稍后再试。", "zh:感谢您的来电，再见。"]


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
        Keys("1"), Keys("2"),                                # type menu: complaint; not confidential
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


def test_a_type_said_while_the_recognisers_lag_is_asked_again_on_keys_not_sent_to_the_operator():
    """The request is recognised; then the recognisers fall behind, so the type the caller says at the type
    menu is not in within the wait. That is the node's load, not the caller's failure: the type menu (one
    try, no on_failure: the operator) is asked again at once, on keys, and the caller gets a ticket."""
    harness = Harness()
    harness.speech.in_time = 1
    call, result = run(
        harness,
        Keys("2"), Quiet(1.5),
        Say("가로등이 고장났어요", 3.0), Quiet(2),             # recognised; no rule proposes a type
        Say("신고", 0.8), Quiet(2),                            # heard, not recognised in time
        Keys("1"), Keys("2"),                                # type menu again: complaint; not confidential
        Say("김철수", 0.8), Quiet(1.5), Say("연길시 건설가 5번지", 2.0), Quiet(2),
        Keys("1"))                                           # call back on this number
    assert result.outcome == "completed" and harness.switchboard.transfers == []
    ticket = harness.tickets.submitted["2026000001"]
    assert (ticket["content"], ticket["request_type"], ticket["phone"]) == ("가로등이 고장났어요", "投诉", CALLER)
    assert harness.speech.late == 1
    type_menu = ("ko:민원 유형을 선택하십시오. 불편 신고는 1번, 문의는 2번, 도움 요청은 3번, 건의는 4번, 제보는 5번, "
                 "칭찬은 6번, 이의 신청은 7번을 누르십시오.")
    texts = call.texts()
    assert texts[texts.index(type_menu) + 1] == type_menu  # asked again at once, nothing said between
    assert "ko:신고하신 분의 정보를 비밀로 해 드릴까요? 원하시면 1번, 아니면 2번을 누르십시오." in texts  # keys from then on
    assert harness.tickets.incomplete == {}


def test_confidentiality_said_while_the_recognisers_lag_is_asked_again_on_keys_and_kept():
    """The caller says 네 (keep me confidential) and the recognisers are too far behind to hear it in time:
    the question is asked again on keys instead of taking the late answer for 'no answer' (which means not
    confidential), so the ticket is confidential as the caller asked."""
    harness = Harness()
    harness.speech.in_time = 2
    call, result = run(
        harness,
        Keys("2"), Quiet(1.5),
        Say("우리 집이 사흘째 단수입니다", 3.0), Quiet(2),       # recognised: a complaint about water
        Say("네", 0.5), Quiet(1),                             # the proposed type is right (in time)
        Say("네", 0.5), Quiet(2),                             # keep it confidential: not in time
        Keys("1"),                                           # asked again on keys: 1, confidential
        Say("김철수", 0.8), Quiet(1.5), Say("연길시 건설가 5번지", 2.0), Quiet(2),
        Keys("1"))
    assert result.outcome == "completed" and harness.switchboard.transfers == []
    ticket = harness.tickets.submitted["2026000001"]
    assert (ticket["content"], ticket["confidential"]) == ("우리 집이 사흘째 단수입니다", "true")
    assert harness.speech.late == 1
    texts = call.texts()
    asked = [text for text in texts if text.startswith("ko:신고하신 분의 정보를 비밀로")]
    assert asked == ["ko:신고하신 분의 정보를 비밀로 해 드릴까요? 네 또는 1번, 아니요 또는 2번을 누르십시오.",
                     "ko:신고하신 분의 정보를 비밀로 해 드릴까요? 원하시면 1번, 아니면 2번을 누르십시오."]


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


# -- three-way calls with the topic's member unit --------------------------------------------------

def water_request() -> tuple:
    """The request, confirmed as 投诉 / water (fresh events: a script is used up as the call consumes it)."""
    return Quiet(3.0), Say("我家停水两天了", 2.0), Quiet(2), Say("是"), Quiet(1), Say("不是"), Quiet(1)


OFFER = "zh:您反映的问题由自来水公司办理，现在为您连线自来水公司吗？是请说是或按1，不用请说不是或按2。"
NUMBER = "二 零 二 六 零 零 零 零 零 幺"


def water_unit_harness(**switchboard) -> Harness:
    harness = Harness()
    harness.tickets.units = {"water": "自来水公司"}
    for name, value in switchboard.items():
        setattr(harness.switchboard, name, value)
    return harness


def test_a_seat_answers_the_citizen_on_the_spot_and_the_ticket_is_closed_as_answered_by_the_unit():
    harness = water_unit_harness()
    call, result = run(harness, *water_request(), Say("是"), Quiet(1), Say("是"), Quiet(1))
    assert result.outcome == "completed"
    texts = call.texts()
    assert texts[-4:] == [OFFER, "zh:正在为您连线自来水公司。",
                          "zh:请问您的问题解决了吗？解决了请说是或按1，没有解决请说不是或按2。", "zh:感谢您的来电，再见。"]
    ticket = harness.tickets.submitted["2026000001"]
    assert ticket["phone"] == CALLER and ticket["content"] == "我家停水两天了" and ticket["topic"] == "water"
    assert harness.switchboard.conferences == [
        ("自来水公司", f"zh:12345三方通话。投诉，water，工单号{NUMBER}。接听请按1，不能接听请按2。")]
    assert harness.switchboard.details == [{"hold": "zh:正在连线，请稍候。", "escape_digit": "0",
                                            "ticket": "2026000001"}]
    assert harness.tickets.settled == [("2026000001", "answered", "自来水公司", "")]
    assert result.vars["three_way_seat"] == "1002" and result.vars["three_way_id"] == "conf-1"


def test_the_seat_hears_the_case_in_its_own_language():
    harness = water_unit_harness(seat_language="ko")
    run(harness, *water_request(), Say("是"), Quiet(1), Say("是"), Quiet(1))
    assert harness.switchboard.conferences[0][1] == (
        f"ko:12345 삼자 통화입니다. 불편 신고, water, 민원 번호 이 공 이 육 공 공 공 공 공 일. "
        "받으시려면 1번, 받을 수 없으면 2번을 누르십시오.")


def test_question_not_answered_keeps_it_with_the_unit_under_its_reply_deadline():
    harness = water_unit_harness()
    call, _ = run(harness, *water_request(), Keys("1"), Keys("2"))
    assert harness.tickets.settled == [("2026000001", "dispatched", "自来水公司", "三方通话: joined")]
    assert call.texts()[-2] == (f"zh:您的诉求已转交自来水公司办理，工单号是{NUMBER}，"
                                "自来水公司将在九月三十日二十三点五十九分前给您答复。")


def test_nobody_accepting_transfers_to_the_unit_and_reads_back_the_number_and_deadline():
    harness = water_unit_harness(reachable=False)
    call, result = run(harness, *water_request(), Keys("1"))
    assert harness.tickets.settled == [("2026000001", "dispatched", "自来水公司", "三方通话: nobody_accepted")]
    assert call.texts()[-3:] == ["zh:正在为您连线自来水公司。",
                                 f"zh:您的诉求已转交自来水公司办理，工单号是{NUMBER}，"
                                 "自来水公司将在九月三十日二十三点五十九分前给您答复。", "zh:感谢您的来电，再见。"]
    assert result.outcome == "completed"


def test_off_duty_no_offer_the_usual_questions_then_transfer_to_the_unit():
    harness = water_unit_harness(on_duty=set())
    call, _ = run(harness, *water_request(), Say("王芳", 1.0), Quiet(1.5), Say("龙井路8号", 1.5), Quiet(2),
                  Say("是"), Quiet(1))
    assert OFFER not in call.texts() and harness.switchboard.conferences == []
    assert harness.tickets.submitted["2026000001"]["caller_name"] == "王芳"
    assert harness.tickets.settled == [("2026000001", "dispatched", "自来水公司", "按责转办")]
    assert call.texts()[-2].startswith("zh:您的诉求已转交自来水公司办理，工单号是")


def test_the_citizen_declining_the_offer_gives_name_and_address_and_it_goes_to_the_unit():
    harness = water_unit_harness()
    call, _ = run(harness, *water_request(), Keys("2"), Say("王芳", 1.0), Quiet(1.5), Say("龙井路8号", 1.5),
                  Quiet(2), Keys("1"))
    assert harness.switchboard.conferences == []
    assert harness.tickets.settled == [("2026000001", "dispatched", "自来水公司", "按责转办")]


def test_a_hang_up_while_the_seats_ring_still_transfers_the_ticket_to_the_unit():
    harness = water_unit_harness(hang_up_caller=True)
    _, result = run(harness, *water_request(), Keys("1"))
    assert result.outcome == "caller_hung_up"
    assert harness.tickets.submitted["2026000001"]["content"] == "我家停水两天了"
    assert harness.tickets.settled == [("2026000001", "dispatched", "自来水公司", "市民已挂断，按责转办")]
    assert harness.tickets.incomplete == {}


def test_a_hang_up_after_the_seat_left_still_transfers_the_ticket_to_the_unit():
    harness = water_unit_harness()
    _, result = run(harness, *water_request(), Keys("1"), HangUp())
    assert result.outcome == "caller_hung_up"
    assert harness.tickets.settled == [("2026000001", "dispatched", "自来水公司", "市民已挂断，按责转办")]


def test_zero_while_waiting_for_a_seat_reaches_the_operator():
    harness = water_unit_harness(outcome="escaped")
    call, result = run(harness, *water_request(), Keys("1"))
    assert harness.switchboard.transfers == ["8600"] and result.outcome == "transferred"
    assert harness.tickets.settled == []  # the operator takes the open ticket from here


# -- emergencies: 110, not a ticket ----------------------------------------------------------------

def rules_harness() -> Harness:
    """The shipped keyword rules classify what the caller says (their level-1 police transfers)."""
    harness = Harness()
    harness.tickets.propose = Classifier.from_file().propose
    return harness


def test_fire_said_in_korean_goes_to_110_at_once():
    harness = rules_harness()
    call, result = run(harness, Keys("2"), Quiet(1.5), Say("집에 불이 났어요", 2.0), Quiet(2))
    assert harness.switchboard.transfers == ["110"] and result.outcome == "transferred"
    assert call.texts()[-2:] == ["ko:용건을 말씀해 주십시오.", "ko:일일공으로 연결합니다."]  # no question first
    assert harness.tickets.submitted == {}
    assert harness.tickets.incomplete == {"call-1": "transferred to 110 at hotline12345:to_police"}


def test_fire_said_at_any_question_goes_to_110():
    harness = rules_harness()
    call, result = run(harness, Quiet(3.0), Say("路灯坏了", 2.0), Quiet(2), Keys("3"),  # 求助 by key
                       Say("王芳", 1.0), Quiet(1.5), Say("楼道里着火了", 1.5), Quiet(2))  # said for the address
    assert harness.switchboard.transfers == ["110"]
    assert call.texts()[-2:] == ["zh:请说出您的地址或单位。", "zh:正在为您转接110。"]


def test_injury_asks_for_the_callers_consent_key_9():
    harness = rules_harness()
    call, result = run(harness, Keys("2"), Quiet(1.5), Say("계단에서 넘어져 다쳤어요", 2.0), Quiet(2), Keys("9"))
    assert harness.switchboard.transfers == ["110"]
    assert call.texts()[-2:] == [
        "ko:위험한 상황으로 들립니다. 일일공에 연결할까요? 연결하려면 네 또는 9번, 아니면 아니요 또는 2번을 누르십시오.",
        "ko:일일공으로 연결합니다."]


def test_declining_110_keeps_the_intake_and_the_level_1_read_back_never_says_wait_two_hours():
    harness = rules_harness()
    call, result = run(harness, Quiet(3.0), Say("有人触电受伤了", 2.0), Quiet(2), Keys("2"),  # no 110, thanks
                       Keys("3"),                                                    # 求助 by key
                       Say("王芳", 1.0), Quiet(1.5), Say("龙井路8号", 1.5), Quiet(2), Keys("1"))
    assert harness.switchboard.transfers == [] and result.outcome == "completed"
    ticket = harness.tickets.submitted["2026000001"]
    assert (ticket["level"], ticket["request_type"], ticket["topic"]) == (1, "求助", "紧急事件")
    texts = call.texts()
    assert texts[-3:] == ["zh:您的诉求已按紧急事项受理，立即转交处置。如遇危险，请立即拨打110、119或120。",
                          f"zh:工单号是{NUMBER}。", "zh:感谢您的来电，再见。"]
    assert not [text for text in texts if "两小时" in text or "二十四小时" in text]


def test_a_caller_handed_over_by_110_skips_the_guidance_and_the_ticket_says_so():
    harness = Harness()
    call = ScriptedCall(Keys("2"), Quiet(1.5), Say("우리 집이 사흘째 단수입니다", 3.0), Quiet(2), HangUp(),
                        caller="0433110")
    harness.run(load_bundle(HOTLINE), call, operator_number="8600", referred_by="110")
    assert call.texts()[2] == "ko:용건을 말씀해 주십시오."            # no "call 110" guidance
    assert harness.tickets.drafts["call-1"]["referred_by"] == "110"


# -- confidentiality and appeals ------------------------------------------------------------------

def test_a_report_asks_for_confidentiality_and_key_1_keeps_it_from_the_unit():
    harness = water_unit_harness()                           # the unit's seats are on duty
    call, result = run(harness, Quiet(3.0), Say("我家停水两天了", 2.0), Quiet(2), Say("不是"), Quiet(1),
                       Keys("5"),                            # 举报 by key
                       Keys("1"),                            # keep it confidential
                       Say("王芳", 1.0), Quiet(1.5), Say("龙井路8号", 1.5), Quiet(2), Keys("1"))
    assert "zh:需要为您保密吗？需要请说是或按1，不需要请说不是或按2。" in call.texts()
    assert OFFER not in call.texts() and harness.switchboard.conferences == []  # no three-way call
    ticket = harness.tickets.submitted["2026000001"]
    assert (ticket["request_type"], ticket["confidential"]) == ("举报", "true")
    assert harness.tickets.settled == [("2026000001", "dispatched", "自来水公司", "按责转办")]


def test_other_types_are_not_asked_about_confidentiality():
    harness = Harness()
    call, _ = run(harness, Quiet(3.0), Say("路灯坏了", 2.0), Quiet(2), Keys("3"),  # 求助 by key
                  Say("王芳", 1.0), Quiet(1.5), Say("龙井路8号", 1.5), Quiet(2), Keys("1"))
    assert not [text for text in call.texts() if "保密" in text]
    assert "confidential" not in harness.tickets.submitted["2026000001"]


def test_an_appeal_is_key_7_in_the_type_menu():
    harness = Harness()
    call, _ = run(harness, Quiet(3.0), Say("对处理结果不服", 2.0), Quiet(2), Keys("7"),
                  Say("王芳", 1.0), Quiet(1.5), Say("龙井路8号", 1.5), Quiet(2), Keys("1"))
    assert harness.tickets.submitted["2026000001"]["request_type"] == "申诉"
