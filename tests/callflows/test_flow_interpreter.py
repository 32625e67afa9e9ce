"""The interpreter against a scripted call and fake ports: each node kind and the call-wide rules."""
from __future__ import annotations

from datetime import date, datetime

from callflow_fakes import (Harness, HangUp, Keys, Quiet, Say, ScriptedCall, write_flow)
from callflows.ports import TicketInfo

TO_OPERATOR = "zh:正在为您转接人工"


def test_play_then_hangup_speaks_prompts_in_order(tmp_path):
    path = write_flow(tmp_path, """
        start: {kind: play, prompt: {zh: 您好}, next: bye}
        bye: {kind: hangup, prompt: {zh: 再见}}
    """)
    call = ScriptedCall()
    result = Harness().run(path, call)
    assert call.texts() == ["zh:您好", "zh:再见"]
    assert call.barge_in == [True, False]  # a goodbye is not interrupted
    assert result.outcome == "completed" and call.hung_up
    assert result.visited == ["main:start", "main:bye"]


def test_zero_during_a_prompt_reaches_the_operator(tmp_path):
    path = write_flow(tmp_path, """
        start: {kind: play, prompt: {zh: 您好}, next: bye}
        bye: {kind: hangup}
    """)
    harness = Harness()
    result = harness.run(path, ScriptedCall(Keys("0")))
    assert harness.switchboard.transfers == ["8000"]
    assert result.outcome == "transferred" and result.detail == "transferred to 8000 at main:operator"


MENU = """
    start:
      kind: menu
      prompt: {zh: 投诉请按1或说投诉，咨询请按2}
      keypad_prompt: {zh: 投诉请按1，咨询请按2}
      no_input: {zh: 没有听到您的选择}
      invalid: {zh: 输入有误}
      retries: 1
      options:
        - {digit: "1", say: {zh: [投诉]}, set: {request_type: 投诉}, next: done}
        - {digit: "2", say: {zh: [咨询]}, set: {request_type: 咨询}, next: done}
    done: {kind: hangup, prompt: {zh: "类型{request_type}"}}
"""


def test_menu_by_digit_sets_the_variable_and_saves_it_to_the_draft(tmp_path):
    harness = Harness()
    call = ScriptedCall(Keys("2"))
    result = harness.run(write_flow(tmp_path, MENU), call)
    assert result.vars["request_type"] == "咨询"
    assert call.texts()[-1] == "zh:类型咨询"
    assert harness.tickets.draft_log == [("call-1", {"request_type": "咨询"})]


def test_menu_by_spoken_word_uses_grammar_recognition(tmp_path):
    harness = Harness()
    result = harness.run(write_flow(tmp_path, MENU), ScriptedCall(Quiet(1.0), Say("投诉", 0.8), Quiet(2)))
    assert result.vars["request_type"] == "投诉"
    assert harness.speech.requests == [("recognize", "zh", ("投诉", "咨询"))]


def test_audio_queued_during_a_long_prompt_does_not_use_up_the_time_out(tmp_path):
    """12 s of caller audio queued while the prompt played, then the caller answers 1 s later: heard, not
    taken for a 12 s wait (which used to end a 5 s menu at once, seen live on the 12345 type menu)."""
    harness = Harness()
    call = ScriptedCall(Quiet(1.0), Say("投诉", 0.8), Quiet(2), backlog_after_prompt=12.0)
    result = harness.run(write_flow(tmp_path, MENU), call)
    assert result.vars["request_type"] == "投诉"
    assert call.texts()[0] == "zh:投诉请按1或说投诉，咨询请按2" and "zh:没有听到您的选择" not in call.texts()


def test_menu_no_input_then_valid_answer_replays_the_menu(tmp_path):
    call = ScriptedCall(Quiet(6.0), Keys("1"))
    result = Harness().run(write_flow(tmp_path, MENU), call)
    assert call.texts()[:3] == ["zh:投诉请按1或说投诉，咨询请按2", "zh:没有听到您的选择", "zh:投诉请按1或说投诉，咨询请按2"]
    assert result.vars["request_type"] == "投诉"


def test_second_invalid_answer_goes_to_the_operator(tmp_path):
    harness = Harness()
    call = ScriptedCall(Keys("7"), Say("不知道"), Quiet(1))
    result = harness.run(write_flow(tmp_path, MENU), call)
    assert call.texts() == ["zh:投诉请按1或说投诉，咨询请按2", "zh:输入有误", "zh:投诉请按1或说投诉，咨询请按2",
                            TO_OPERATOR]
    assert result.outcome == "transferred" and harness.switchboard.transfers == ["8000"]


def test_menu_without_a_speech_model_speaks_the_keypad_prompt_and_ignores_speech(tmp_path):
    harness = Harness()
    harness.speech.languages = set()
    call = ScriptedCall(Say("投诉", 1.0), Keys("2"))
    result = harness.run(write_flow(tmp_path, MENU), call)
    assert call.texts()[0] == "zh:投诉请按1，咨询请按2"
    assert result.vars["request_type"] == "咨询"
    assert harness.speech.requests == []


COLLECT = """
    start:
      kind: collect
      prompt: {zh: 请输入电话号码，以井号结束}
      var: callback
      min_length: 7
      max_length: 12
      read_back: {zh: "您输入的是{callback:digits}，确认请按1，重新输入请按2"}
      confirm: true
      invalid: {zh: 号码位数不对}
      retries: 2
      next: done
    done: {kind: hangup}
"""


def test_collect_checks_length_reads_back_digit_by_digit_and_confirms(tmp_path):
    harness = Harness()
    call = ScriptedCall(Keys("123#"), Keys("13812345678#"), Keys("2"), Keys("13912345678#"), Keys("1"))
    result = harness.run(write_flow(tmp_path, COLLECT), call)
    assert call.texts() == [
        "zh:请输入电话号码，以井号结束", "zh:号码位数不对", "zh:请输入电话号码，以井号结束",
        "zh:您输入的是幺 三 八 幺 二 三 四 五 六 七 八，确认请按1，重新输入请按2",
        "zh:请输入电话号码，以井号结束",
        "zh:您输入的是幺 三 九 幺 二 三 四 五 六 七 八，确认请按1，重新输入请按2"]
    assert result.vars["callback"] == "13912345678"
    assert harness.tickets.drafts["call-1"]["phone"] == "13912345678"


def test_collect_a_lone_zero_is_the_operator_but_a_number_may_start_with_zero(tmp_path):
    harness = Harness()
    result = harness.run(write_flow(tmp_path, COLLECT), ScriptedCall(Keys("0#")))
    assert result.outcome == "transferred"
    result = Harness().run(write_flow(tmp_path, COLLECT), ScriptedCall(Keys("04331234567#1")))
    assert result.vars["callback"] == "04331234567"


def test_collect_times_out_without_digits_then_gives_up(tmp_path):
    harness = Harness()
    call = ScriptedCall(Quiet(30))
    result = harness.run(write_flow(tmp_path, COLLECT), call)
    assert call.texts().count("zh:请输入电话号码，以井号结束") == 3  # retries: 2
    assert result.outcome == "transferred"


ASK = """
    start:
      kind: ask
      prompt: {zh: 请说出您的诉求}
      no_input: {zh: 没有听到您说话}
      invalid: {zh: 没有听清}
      var: request
      timeout: 5
      end_silence: 1.0
      next: done
    done: {kind: hangup, prompt: {zh: "您说的是{request}"}}
"""


def test_ask_free_speech_is_recorded_transcribed_and_saved_at_once(tmp_path):
    harness = Harness()
    call = ScriptedCall(Quiet(0.5), Say("我家停水三天了", 3.0), Quiet(0.4), Say("我家停水三天了", 1.0), Quiet(5))
    result = harness.run(write_flow(tmp_path, ASK), call)
    assert result.vars["request"] == "我家停水三天了"
    assert harness.recordings.saved == [("call-1", "request", "我家停水三天了")]
    assert harness.tickets.drafts["call-1"]["content"] == "我家停水三天了"
    assert call.texts()[-1] == "zh:您说的是我家停水三天了"


def test_ask_ends_at_max_length_even_when_the_caller_keeps_talking(tmp_path):
    harness = Harness()
    flow = ASK.replace("      end_silence: 1.0", "      end_silence: 1.0\n      max_length: 2")
    result = harness.run(write_flow(tmp_path, flow), ScriptedCall(Say("很长的话", 10.0)))
    assert result.vars["request"] == "很长的话"
    assert result.visited == ["main:start", "main:done"]


def test_ask_not_understood_asks_again(tmp_path):
    harness = Harness()
    call = ScriptedCall(Say("<mumble>"), Quiet(1.5), Say("路灯坏了"), Quiet(2))
    result = harness.run(write_flow(tmp_path, ASK), call)
    assert call.texts()[:3] == ["zh:请说出您的诉求", "zh:没有听清", "zh:请说出您的诉求"]
    assert result.vars["request"] == "路灯坏了"


def test_ask_silence_twice_goes_to_the_operator(tmp_path):
    call = ScriptedCall(Quiet(20))
    result = Harness().run(write_flow(tmp_path, ASK), call)
    assert call.texts() == ["zh:请说出您的诉求", "zh:没有听到您说话", "zh:请说出您的诉求", TO_OPERATOR]
    assert result.outcome == "transferred"


def test_ask_without_a_speech_model_records_for_later_transcription(tmp_path):
    harness = Harness()
    harness.speech.languages = set()
    result = harness.run(write_flow(tmp_path, ASK), ScriptedCall(Say("我家停水三天了", 2.0), Quiet(2)))
    assert result.vars["request"] == ""
    assert result.vars["request_audio"] == "rec/call-1/request-1.wav"
    assert harness.recordings.saved == [("call-1", "request", "我家停水三天了")]
    assert harness.speech.requests == []


GRAMMAR = """
    start:
      kind: ask
      prompt: {zh: 请说出您所在的区}
      var: district
      grammar: {zh: [东城区, 西城区]}
      no_model: keypad
      next: done
    keypad: {kind: hangup, prompt: {zh: 按键}}
    done: {kind: hangup, prompt: {zh: "{district}"}}
"""


def test_ask_with_a_grammar_stores_the_recognised_phrase(tmp_path):
    harness = Harness()
    call = ScriptedCall(Say("西城区"), Quiet(2))
    result = harness.run(write_flow(tmp_path, GRAMMAR), call)
    assert result.vars["district"] == "西城区"
    assert harness.speech.requests == [("recognize", "zh", ("东城区", "西城区"))]


def test_ask_with_a_grammar_goes_to_no_model_where_the_language_has_no_model(tmp_path):
    harness = Harness()
    harness.speech.languages = {"ko"}
    call = ScriptedCall()
    harness.run(write_flow(tmp_path, GRAMMAR), call)
    assert call.texts() == ["zh:按键"]


def test_record_saves_the_message(tmp_path):
    harness = Harness()
    path = write_flow(tmp_path, """
        start: {kind: record, prompt: {zh: 请留言}, var: message, end_silence: 2, next: done}
        done: {kind: hangup}
    """)
    result = harness.run(path, ScriptedCall(Say("请回电", 4.0), Quiet(1.0), Say("谢谢", 1.0), Quiet(3)))
    assert result.vars["message"] == "rec/call-1/message-1.wav"
    assert harness.recordings.saved == [("call-1", "message", "请回电")]


BRANCH = """
    start:
      kind: branch
      cases:
        - if: {business_hours: true}
          next: open
        - if: {open_tickets: true}
          next: has_tickets
        - if: {var: caller, one_of: ["110", "119"]}
          next: emergency
      else: closed
    open: {kind: hangup, prompt: {zh: 上班}}
    has_tickets: {kind: hangup, prompt: {zh: "您有{open_ticket_count}件工单"}}
    emergency: {kind: hangup, prompt: {zh: 紧急}}
    closed: {kind: hangup, prompt: {zh: 下班}}
"""
HOURS_HEADER = "business_hours: {start: '08:30', end: '17:30'}\n"


def _branch(tmp_path, harness, caller="13900001111"):
    path = write_flow(tmp_path, BRANCH)
    path.write_text(HOURS_HEADER + path.read_text(encoding="utf-8"), encoding="utf-8")
    call = ScriptedCall(caller=caller)
    harness.run(path, call)
    return call.texts()


def test_branch_on_business_hours_working_days_and_holidays(tmp_path):
    assert _branch(tmp_path, Harness(now=datetime(2026, 12, 1, 10, 0))) == ["zh:上班"]
    assert _branch(tmp_path, Harness(now=datetime(2026, 12, 1, 18, 0))) == ["zh:下班"]
    assert _branch(tmp_path, Harness(now=datetime(2026, 12, 5, 10, 0))) == ["zh:下班"]  # Saturday
    holiday = Harness(now=datetime(2026, 10, 1, 10, 0))
    holiday.calendar.holidays = {date(2026, 10, 1)}
    assert _branch(tmp_path, holiday) == ["zh:下班"]


def test_branch_on_open_tickets_and_on_a_variable(tmp_path):
    evening = datetime(2026, 12, 1, 20, 0)
    harness = Harness(now=evening)
    harness.tickets.open_by_caller = {"13900001111": [TicketInfo("2026000007", "in_progress")] * 2}
    assert _branch(tmp_path, harness) == ["zh:您有2件工单"]
    assert _branch(tmp_path, Harness(now=evening), caller="119") == ["zh:紧急"]


def test_branch_on_language_and_set(tmp_path):
    header = "languages: [zh, ko]\nstart: start\nnodes:\n"
    path = write_flow(tmp_path, """
        start: {kind: set, vars: {language: ko, greeting: "{caller}님"}, next: check}
        check:
          kind: branch
          cases: [{if: {language: ko}, next: korean}]
          else: chinese
        korean: {kind: hangup, prompt: {zh: 中文, ko: "{greeting} 안녕하세요"}}
        chinese: {kind: hangup, prompt: {zh: 中文, ko: 한국어}}
    """, header=header)
    call = ScriptedCall(caller="8001")
    Harness().run(path, call)
    assert call.texts() == ["ko:8001님 안녕하세요"]


TICKET = """
    start: {kind: ask, prompt: {zh: 请说}, var: request, next: classify}
    classify: {kind: ticket, action: propose, text: "{request}", next: create}
    create: {kind: ticket, action: create, fields: {language: "{language}"}, on_error: sorry, next: read_back}
    read_back:
      kind: hangup
      prompt: {zh: "工单号{ticket_number:digits}，请在{deadline:datetime}前等待回复"}
    sorry: {kind: hangup, prompt: {zh: 系统繁忙}}
"""


def test_ticket_propose_and_create_from_what_was_collected(tmp_path):
    harness = Harness()
    call = ScriptedCall(Say("小区停水了"), Quiet(2))
    result = harness.run(write_flow(tmp_path, TICKET), call)
    assert result.vars["request_type"] == "投诉" and result.vars["level"] == 2
    assert harness.tickets.submitted["2026000001"] == {
        "caller": "13900001111", "content": "小区停水了", "request_type": "投诉", "level": 2, "language": "zh"}
    assert call.texts()[-1] == "zh:工单号二 零 二 六 零 零 零 零 零 幺，请在十二月三日十七点三十分前等待回复"
    assert harness.tickets.incomplete == {}


def test_ticket_create_failure_takes_on_error_and_leaves_the_draft_incomplete(tmp_path):
    harness = Harness()
    harness.tickets.fail_submit = True
    call = ScriptedCall(Say("小区停水了"), Quiet(2))
    harness.run(write_flow(tmp_path, TICKET), call)
    assert call.texts()[-1] == "zh:系统繁忙"
    assert harness.tickets.drafts["call-1"]["content"] == "小区停水了"
    assert harness.tickets.incomplete == {"call-1": "hung up at main:sorry"}


LOOKUP = """
    start: {kind: collect, prompt: {zh: 请输入工单号}, var: number, min_length: 10, max_length: 10, next: find}
    find: {kind: ticket, action: lookup, number: "{number}", on_not_found: unknown, next: status}
    status: {kind: ticket, action: update, number: "{number}", fields: {note: 来电查询}, on_not_found: unknown,
             next: say}
    say: {kind: hangup, prompt: {zh: "工单{ticket_number:digits}状态{ticket_status:label}，{deadline:date}前答复"}}
    unknown: {kind: hangup, prompt: {zh: 没有找到}}
"""
STATUS_LABELS = "labels: {ticket_status: {in_progress: {zh: 办理中}}}\n"


def test_ticket_lookup_and_update_by_number(tmp_path):
    harness = Harness()
    harness.tickets.known["2026000042"] = TicketInfo("2026000042", "in_progress", datetime(2026, 12, 8, 12, 0))
    path = write_flow(tmp_path, LOOKUP)
    path.write_text(STATUS_LABELS + path.read_text(encoding="utf-8"), encoding="utf-8")
    call = ScriptedCall(Keys("2026000042"))
    harness.run(path, call)
    assert call.texts()[-1] == "zh:工单二 零 二 六 零 零 零 零 四 二状态办理中，十二月八日前答复"
    assert harness.tickets.updates == [("2026000042", {"note": "来电查询"})]
    call = ScriptedCall(Keys("2026000043"))
    harness.run(path, call)
    assert call.texts()[-1] == "zh:没有找到"


def test_kb_answer_speaks_the_answer_or_goes_to_not_found(tmp_path):
    path = write_flow(tmp_path, """
        start: {kind: ask, prompt: {zh: 请说}, var: request, next: kb}
        kb: {kind: kb_answer, query: "{request}", prompt: {zh: 为您查到}, next: done, not_found: none}
        done: {kind: hangup, prompt: {zh: 再见}}
        none: {kind: hangup, prompt: {zh: 没有答案}}
    """)
    harness = Harness()
    harness.tickets.kb = {"社保": "社保卡可在任一服务网点补办。"}
    call = ScriptedCall(Say("社保卡丢了怎么办"), Quiet(2))
    harness.run(path, call)
    assert call.texts()[1:] == ["zh:为您查到", "zh:社保卡可在任一服务网点补办。", "zh:再见"]
    call = ScriptedCall(Say("公积金怎么提取"), Quiet(2))
    harness.run(path, call)
    assert call.texts()[1:] == ["zh:没有答案"]


def test_transfer_failure_takes_on_failure(tmp_path):
    path = write_flow(tmp_path, """
        start: {kind: transfer, number: "110", prompt: {zh: 正在转接110}, on_failure: busy}
        busy: {kind: hangup, prompt: {zh: 线路忙}}
    """)
    harness = Harness()
    harness.switchboard.reachable = False
    call = ScriptedCall()
    result = harness.run(path, call)
    assert harness.switchboard.transfers == ["110"]
    assert call.texts() == ["zh:正在转接110", "zh:线路忙"] and result.outcome == "completed"


def test_three_way_announces_the_case_to_the_seat_in_the_hotline_language(tmp_path):
    path = write_flow(tmp_path, """
        start: {kind: set, vars: {unit: water_company, request: 停水}, next: bridge}
        bridge:
          kind: three_way
          unit: "{unit}"
          prompt: {zh: 正在为您接通供水公司}
          announcement: {zh: "12345转来市民诉求：{request}"}
          next: done
        done: {kind: hangup}
    """)
    harness = Harness()
    call = ScriptedCall()
    harness.run(path, call)
    assert harness.switchboard.conferences == [("water_company", "zh:12345转来市民诉求：停水")]
    assert call.texts() == ["zh:正在为您接通供水公司"]


def test_subflow_shares_variables_and_returns(tmp_path):
    write_flow(tmp_path, """
        start: {kind: collect, prompt: {zh: 请输入}, var: code, max_length: 4, next: back}
        back: {kind: return}
    """, name="sub")
    path = write_flow(tmp_path, """
        start: {kind: subflow, flow: sub, next: done}
        done: {kind: hangup, prompt: {zh: "代码{code}"}}
    """)
    call = ScriptedCall(Keys("1234"))
    result = Harness().run(path, call)
    assert call.texts() == ["zh:请输入", "zh:代码1234"]
    assert result.visited == ["main:start", "sub:start", "sub:back", "main:done"]


def test_operator_digit_inside_a_subflow_jumps_to_the_main_flows_operator(tmp_path):
    write_flow(tmp_path, """
        start: {kind: play, prompt: {zh: 子流程}, next: back}
        back: {kind: return}
    """, name="sub")
    path = write_flow(tmp_path, """
        start: {kind: subflow, flow: sub, next: done}
        done: {kind: hangup}
    """)
    harness = Harness()
    result = harness.run(path, ScriptedCall(Keys("0")))
    assert result.visited == ["main:start", "sub:start", "main:operator"]
    assert harness.switchboard.transfers == ["8000"]


def test_hang_up_halfway_leaves_a_draft_with_what_was_said(tmp_path):
    path = write_flow(tmp_path, """
        start: {kind: ask, prompt: {zh: 请说出诉求}, var: request, next: name}
        name: {kind: ask, prompt: {zh: 请说姓名}, var: name, next: phone}
        phone: {kind: collect, prompt: {zh: 请输入电话}, var: callback, next: done}
        done: {kind: hangup}
    """)
    harness = Harness()
    call = ScriptedCall(Say("路灯坏了"), Quiet(2), Say("张三"), Quiet(2), Keys("1391"), HangUp())
    result = harness.run(path, call)
    assert result.outcome == "caller_hung_up"
    assert harness.tickets.drafts["call-1"] == {"caller": "13900001111", "content": "路灯坏了", "caller_name": "张三"}
    assert harness.tickets.incomplete == {"call-1": "caller hung up at main:phone"}
    assert harness.tickets.submitted == {}


def test_a_flow_that_loops_forever_is_stopped_and_the_caller_handed_to_the_operator(tmp_path):
    path = write_flow(tmp_path, """
        start: {kind: set, vars: {x: "1"}, next: again}
        again: {kind: set, vars: {x: "2"}, next: start}
    """)
    harness = Harness()
    result = harness.run(path, ScriptedCall())
    assert result.visited[-2:] == ["error", "main:operator"] and len(result.visited) == 502
    assert result.outcome == "transferred" and harness.switchboard.transfers == ["8000"]
    assert result.detail == "transferred to 8000 at main:operator after a flow error at main:again"


def test_a_failing_port_without_an_operator_ends_the_call_as_a_flow_error(tmp_path):
    path = tmp_path / "main.yaml"
    path.write_text("languages: [zh]\nstart: kb\nnodes:\n"
                    "  kb: {kind: kb_answer, query: x, next: bye, not_found: bye}\n  bye: {kind: hangup}\n",
                    encoding="utf-8")
    harness = Harness()

    def broken(text, language):
        raise ConnectionError("database unreachable")

    harness.tickets.kb_search = broken
    call = ScriptedCall()
    result = harness.run(path, call)
    assert (result.outcome, result.detail, call.hung_up) == ("flow_error", "flow error at main:kb", True)


def test_zero_during_a_knowledge_base_answer_reaches_the_operator(tmp_path):
    path = write_flow(tmp_path, """
        start: {kind: set, vars: {request: 社保}, next: kb}
        kb: {kind: kb_answer, query: "{request}", next: done, not_found: done}
        done: {kind: hangup, prompt: {zh: 再见}}
    """)
    harness = Harness()
    harness.tickets.kb = {"社保": "社保卡可在任一服务网点补办。"}
    call = ScriptedCall(Keys("0"))
    result = harness.run(path, call)
    assert call.texts() == ["zh:社保卡可在任一服务网点补办。", TO_OPERATOR]
    assert result.outcome == "transferred"


def test_custom_call_ended_exception_of_the_real_session_is_honoured(tmp_path):
    from callflows.bundle import load_bundle
    from callflows.interpreter import CallServices, FlowRunner
    from callflow_fakes import FakePrompts

    class SessionGone(Exception):
        pass

    class GoneCall(ScriptedCall):
        def play(self, audio, *, barge_in=True):
            raise SessionGone()

    path = write_flow(tmp_path, """
        start: {kind: play, prompt: {zh: 您好}, next: done}
        done: {kind: hangup}
    """)
    h = Harness()
    services = CallServices(h.speech, h.tickets, h.switchboard, h.recordings, FakePrompts(), h.calendar)
    result = FlowRunner(load_bundle(path), GoneCall(), services, call_ended=(SessionGone,)).run()
    assert result.outcome == "caller_hung_up" and result.detail == "caller hung up at main:start"


def test_recorded_wav_overrides_text_per_language_or_for_all(tmp_path):
    for name in ("greeting.wav", "bye_ko.wav"):
        (tmp_path / name).write_bytes(b"RIFF")
    path = tmp_path / "main.yaml"
    path.write_text("""languages: [zh, ko]
start: hello
nodes:
  hello: {kind: play, prompt: {wav: greeting.wav}, next: pick}
  pick: {kind: set, vars: {language: ko}, next: bye}
  bye: {kind: hangup, prompt: {zh: 再见, ko: 안녕히 계십시오, wav: {ko: bye_ko.wav}}}
""", encoding="utf-8")
    call = ScriptedCall()
    Harness().run(path, call)
    assert call.texts() == ["wav:greeting.wav", "wav:bye_ko.wav"]


def test_three_way_unreachable_seat_takes_on_failure(tmp_path):
    path = write_flow(tmp_path, """
        start:
          kind: three_way
          unit: 供水公司
          announcement: {zh: 市民来电}
          next: done
          on_failure: sorry
        done: {kind: hangup, prompt: {zh: 通话结束}}
        sorry: {kind: hangup, prompt: {zh: 暂时无法接通}}
    """)
    harness = Harness()
    harness.switchboard.reachable = False
    call = ScriptedCall()
    harness.run(path, call)
    assert harness.switchboard.conferences == [("供水公司", "zh:市民来电")]
    assert call.texts() == ["zh:暂时无法接通"]


def test_without_barge_in_the_prompt_plays_out_and_the_key_still_counts(tmp_path):
    flow = MENU.replace("      retries: 1\n", "      retries: 1\n      barge_in: false\n")
    call = ScriptedCall(Keys("1"))
    result = Harness().run(write_flow(tmp_path, flow), call)
    assert result.vars["request_type"] == "投诉"
    assert call.texts()[0] == "zh:投诉请按1或说投诉，咨询请按2" and call.barge_in[0] is False


ON_HANGUP_HEADER = """\
languages: [zh, ko]
start: {start}
operator: {{digit: "0", node: operator}}
on_failure: operator
on_hangup: after
vars: {{operator_number: "8000"}}
nodes:
  operator:
    kind: transfer
    prompt: {{zh: 正在为您转接人工, ko: 상담원}}
    number: "{{operator_number}}"
"""


def test_on_hangup_runs_what_needs_no_audio_after_the_caller_left_and_keeps_the_outcome(tmp_path):
    path = write_flow(tmp_path, """
        start: {kind: set, vars: {unit: 供电局, number: "2026000009"}, next: wait}
        wait: {kind: play, prompt: {zh: 请稍候, ko: 잠시}, next: done}
        done: {kind: hangup}
        after: {kind: play, prompt: {zh: 这句听不到, ko: 없음}, next: move}
        move: {kind: ticket, action: transfer, number: "{number}", unit: "{unit}", note: 挂断后转办, next: done}
    """, header=ON_HANGUP_HEADER)
    harness = Harness()
    harness.tickets.known["2026000009"] = TicketInfo("2026000009", "received")
    result = harness.run(path, ScriptedCall(HangUp()))
    assert result.outcome == "caller_hung_up" and result.detail == "caller hung up at main:wait"
    assert harness.tickets.settled == []  # the play node of on_hangup ended it: nothing after it ran
    path = write_flow(tmp_path, """
        start: {kind: set, vars: {unit: 供电局, number: "2026000009"}, next: wait}
        wait: {kind: play, prompt: {zh: 请稍候, ko: 잠시}, next: done}
        done: {kind: hangup}
        after: {kind: ticket, action: transfer, number: "{number}", unit: "{unit}", note: 挂断后转办, next: done}
    """, header=ON_HANGUP_HEADER)
    result = harness.run(path, ScriptedCall(HangUp()))
    assert harness.tickets.settled == [("2026000009", "dispatched", "供电局", "挂断后转办")]
    assert result.outcome == "caller_hung_up" and result.visited[-2:] == ["main:after", "main:done"]


def test_seats_on_duty_condition_and_an_announcement_falls_back_to_the_flows_first_language(tmp_path):
    path = write_flow(tmp_path, """
        start: {kind: set, vars: {unit: 供电局}, next: check}
        check:
          kind: branch
          cases:
            - if: {seats_on_duty: "{unit}"}
              next: connect
          else: closed
        connect:
          kind: three_way
          unit: "{unit}"
          announcement: {zh: 三方通话}
          next: done
        closed: {kind: hangup, prompt: {zh: 不在工作时间}}
        done: {kind: hangup}
    """)
    harness = Harness()
    harness.switchboard.seat_language = "en"  # a seat whose language the announcement does not cover
    harness.run(path, ScriptedCall())
    assert harness.switchboard.conferences == [("供电局", "zh:三方通话")]
    harness = Harness()
    harness.switchboard.on_duty = {"自来水公司"}
    call = ScriptedCall()
    harness.run(path, call)
    assert harness.switchboard.conferences == [] and call.texts() == ["zh:不在工作时间"]


def test_a_directory_that_cannot_be_read_keeps_the_proposal_without_a_unit(tmp_path):
    path = write_flow(tmp_path, """
        start: {kind: ticket, action: propose, text: 停水了, next: done, on_error: operator}
        done: {kind: hangup}
    """)
    harness = Harness()

    def broken(topic: str) -> str:
        raise RuntimeError("database is down")

    harness.tickets.unit_for = broken
    result = harness.run(path, ScriptedCall())
    assert result.vars["topic"] == "water" and result.vars["unit"] is None and result.visited[-1] == "main:done"
