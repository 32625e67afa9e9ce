"""Broken flows: every mistake is reported with its exact line and what was expected."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from callflows.bundle import load_bundle
from callflows.issues import FlowError
from callflows.validator import check_file


def issues(tmp_path: Path, text: str, name: str = "flow") -> list[str]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    found = check_file(path)
    assert all(issue.path == path for issue in found)
    return [f"{issue.line}: {issue.message}" for issue in found]


def test_a_clean_flow_has_no_issues(tmp_path):
    assert issues(tmp_path, """
        languages: [zh, ko]
        start: hello
        nodes:
          hello: {kind: play, prompt: {zh: 你好, ko: 안녕}, next: bye}
          bye: {kind: hangup}
    """) == []


def test_unknown_node_kind(tmp_path):
    assert issues(tmp_path, """
        languages: [zh]
        start: hello
        nodes:
          hello:
            kind: say
            prompt: {zh: 你好}
    """) == ["5: node 'hello': unknown node kind 'say'; expected one of: play, menu, collect, ask, record, branch, "
             "set, ticket, kb_answer, transfer, three_way, subflow, return, hangup",
             "2: start points to 'hello', which is not a node of this flow"][::-1]


def test_unknown_field_and_missing_field(tmp_path):
    assert issues(tmp_path, """
        languages: [zh]
        start: hello
        nodes:
          hello:
            kind: play
            promt: {zh: 你好}
            next: bye
          bye: {kind: hangup}
    """) == ["4: play node 'hello' needs field 'prompt'",
             "6: unknown field 'promt' in play node 'hello'; expected one of: prompt, next, barge_in, language"]


def test_next_pointing_nowhere_and_the_node_left_unreachable(tmp_path):
    assert issues(tmp_path, """
        languages: [zh]
        start: hello
        nodes:
          hello:
            kind: play
            prompt: {zh: 你好}
            next: goodbye
          bye: {kind: hangup}
    """) == ["7: 'next' of play node 'hello' points to 'goodbye', which is not a node of this flow",
             "8: node 'bye' is unreachable from start 'hello'"]


def test_menu_option_target_nowhere_duplicate_digit_and_operator_digit(tmp_path):
    assert issues(tmp_path, """
        languages: [zh]
        start: menu
        operator: {digit: "0", node: bye}
        on_failure: bye
        nodes:
          menu:
            kind: menu
            prompt: {zh: 请选择}
            options:
              - {digit: "1", next: bye}
              - {digit: "1", next: bye}
              - {digit: "0", next: bye}
              - {digit: "12", next: nowhere}
          bye: {kind: hangup}
    """) == ["11: menu node 'menu': digit 1 is used by two options",
             "12: menu node 'menu': digit 0 is reserved for the operator at any point",
             "13: '12' of menu node 'menu' points to 'nowhere', which is not a node of this flow",
             "13: menu node 'menu': '12' is not a key; expected one of 0-9, * or #"]


def test_menu_without_a_way_out(tmp_path):
    assert issues(tmp_path, """
        languages: [zh]
        start: loop
        nodes:
          loop:
            kind: menu
            prompt: {zh: 请选择}
            options:
              - {digit: "1", next: loop}
              - {digit: "2", next: loop}
          empty:
            kind: menu
            prompt: {zh: 请选择}
            options: []
            on_failure: loop
    """) == ["4: menu node 'loop' has no way out when the caller fails: give it on_failure, or give the flow "
             "an on_failure",
             "4: menu node 'loop' has no way out: every option leads back to it",
             "10: menu node 'empty' has no options",
             "10: node 'empty' is unreachable from start 'loop'"]


def test_prompt_missing_for_a_language_the_flow_offers(tmp_path):
    assert issues(tmp_path, """
        languages: [zh, ko]
        start: hello
        nodes:
          hello:
            kind: play
            prompt: {zh: 你好, en: hello}
            next: bye
          bye:
            kind: hangup
            prompt:
              ko: 안녕히 계십시오
    """) == ["6: play node 'hello' prompt has no text for language 'ko' (the flow offers zh, ko)",
             "6: play node 'hello' prompt has text for 'en', which the flow does not offer (languages: zh, ko)",
             "11: hangup node 'bye' prompt has no text for language 'zh' (the flow offers zh, ko)"]


def test_wrong_types(tmp_path):
    assert issues(tmp_path, """
        languages: zh
        start: ask
        on_failure: bye
        nodes:
          ask:
            kind: collect
            prompt: {zh: 请输入}
            var: number
            timeout: soon
            retries: 1.5
            barge_in: maybe
            next: bye
          bye: {kind: hangup, prompt: 再见}
    """) == ["1: flow field 'languages': expected a list, got 'zh'",
             "9: collect node 'ask' field 'timeout': expected a number, got 'soon'",
             "10: collect node 'ask' field 'retries': expected a whole number, got '1.5'",
             "11: collect node 'ask' field 'barge_in': expected true or false, got 'maybe'",
             "13: hangup node 'bye' field 'prompt': expected text per language (e.g. zh: ..., ko: ...) or "
             "wav: FILE, got '再见'"]


def test_templates_unknown_variable_format_and_label(tmp_path):
    assert issues(tmp_path, """
        languages: [zh]
        start: hello
        nodes:
          hello:
            kind: play
            prompt: {zh: "工单{ticket_no:digits}，类型{request_type:label}，期限{deadline:weekday}"}
            next: bye
          bye: {kind: hangup}
    """) == ["6: play node 'hello' prompt speaks {deadline}, which nothing in the flow sets",
             "6: play node 'hello' prompt speaks {request_type:label} but the flow has no labels for 'request_type'",
             "6: play node 'hello' prompt speaks {request_type}, which nothing in the flow sets",
             "6: play node 'hello' prompt speaks {ticket_no}, which nothing in the flow sets",
             "6: play node 'hello' prompt: unknown format 'weekday' in {deadline:weekday}; expected one of: "
             "digits, date, datetime, label"]


def test_labels_missing_a_language(tmp_path):
    assert issues(tmp_path, """
        languages: [zh, ko]
        start: hello
        labels:
          level:
            1: {zh: 紧急}
        nodes:
          hello: {kind: hangup}
    """) == ["4: label '1' of 'level' has no text for language 'ko' (the flow offers zh, ko)"]


def test_invalid_yaml_reports_its_line(tmp_path):
    assert issues(tmp_path, """
        languages: [zh]
        start: hello
        nodes:
          hello:
            kind: play
            prompt: {zh: 你好
            next: bye
    """) == ["7: not valid YAML: expected ',' or '}', but got ':'"]


def test_branch_conditions_ticket_actions_and_collect_rules(tmp_path):
    assert issues(tmp_path, """
        languages: [zh]
        start: check
        on_failure: bye
        nodes:
          check:
            kind: branch
            cases:
              - if: {language: zh, business_hours: true}
                next: find
              - if: {var: colour}
                next: bye
            else: bye
          find: {kind: ticket, action: lookup, next: number}
          number:
            kind: collect
            prompt: {zh: 请输入}
            var: n
            min_length: 8
            max_length: 4
            terminator: "0"
            confirm: true
            next: bye
          bye: {kind: hangup}
    """) == ["8: branch node 'check' tests business_hours but the flow sets no business_hours (start/end)",
             "8: branch node 'check': a condition tests exactly one of: business_hours, working_day, language, "
             "open_tickets, speech_available, seats_on_duty, var (got business_hours, language)",
             "10: branch node 'check' tests 'colour', which nothing in the flow sets",
             "10: branch node 'check': 'var: colour' needs exactly one of equals, one_of, empty",
             "13: ticket node 'find': action lookup needs 'number'",
             "13: ticket node 'find': action lookup needs 'on_not_found'",
             "18: collect node 'number': min_length 8 is above max_length 4",
             "20: collect node 'number': terminator must be # or *",
             "21: collect node 'number': confirm needs a read_back prompt"]


def test_three_way_pieces_name_what_is_missing(tmp_path):
    assert issues(tmp_path, """
        languages: [zh]
        start: check
        on_failure: bye
        on_hangup: after_hangup_typo
        nodes:
          check:
            kind: branch
            cases:
              - if: {seats_on_duty: "{unit_name}"}
                next: connect
            else: bye
          connect:
            kind: three_way
            unit: "{unit}"
            announcement: {zh: "工单{ticket_number}"}
            hold: {zh: 请稍候}
            next: answered
          answered: {kind: ticket, action: answer, number: "{ticket_number}", next: moved}
          moved: {kind: ticket, action: transfer, unit: "{unit}", note: "{three_way_outcome}", next: bye}
          bye: {kind: hangup}
    """) == ["4: on_hangup points to 'after_hangup_typo', which is not a node of this flow",
             "9: branch node 'check' speaks {unit_name}, which nothing in the flow sets",
             "14: three_way node 'connect' unit speaks {unit}, which nothing in the flow sets",
             "18: ticket node 'answered': action answer needs 'unit' (the member unit)",
             "19: ticket node 'moved' unit speaks {unit}, which nothing in the flow sets",
             "19: ticket node 'moved': action transfer needs 'number'"]


def test_missing_subflow_and_missing_recorded_prompt(tmp_path):
    assert issues(tmp_path, """
        languages: [zh]
        start: greet
        nodes:
          greet:
            kind: play
            prompt: {wav: prompts/greeting.wav}
            next: status
          status: {kind: subflow, flow: status_lookup, next: bye}
          bye: {kind: hangup}
    """) == [f"6: play node 'greet' prompt: recorded prompt 'prompts/greeting.wav' not found (paths are relative "
             f"to {tmp_path})",
             f"8: subflow node 'status': sub-flow 'status_lookup' not found (expected {tmp_path}/status_lookup.yaml)"]


def test_subflow_mistakes_are_reported_with_their_own_file(tmp_path):
    (tmp_path / "sub.yaml").write_text("languages: [zh]\nstart: a\nnodes:\n  a: {kind: return, next: b}\n",
                                       encoding="utf-8")
    main = tmp_path / "main.yaml"
    main.write_text("languages: [zh]\nstart: s\nnodes:\n  s: {kind: subflow, flow: sub, next: e}\n"
                    "  e: {kind: hangup}\n", encoding="utf-8")
    assert [str(issue) for issue in check_file(main)] == [
        f"{tmp_path}/sub.yaml:4: unknown field 'next' in return node 'a'; it takes no fields"]


def test_load_refuses_a_broken_flow_listing_every_issue(tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text("languages: [zh]\nstart: x\nnodes: {}\n", encoding="utf-8")
    with pytest.raises(FlowError) as caught:
        load_bundle(path)
    assert str(caught.value) == f"{path}:2: start points to 'x', which is not a node of this flow"


def test_emergency_watch_names_a_node_and_its_nodes_count_as_reachable(tmp_path):
    assert issues(tmp_path, """
        languages: [zh]
        start: hello
        emergency: {node: police}
        nodes:
          hello: {kind: play, prompt: {zh: 你好}, next: bye}
          bye: {kind: hangup}
    """) == ["3: emergency node points to 'police', which is not a node of this flow"]
    assert issues(tmp_path, """
        languages: [zh]
        start: hello
        emergency: {node: danger}
        nodes:
          hello: {kind: play, prompt: {zh: 你好}, next: bye}
          bye: {kind: hangup}
          danger:
            kind: branch
            cases:
              - if: {var: police_transfer, equals: at_once}
                next: bye
            else: declined
          declined: {kind: return}
    """) == []
