"""callflows.prefetch.CallPrompts: a call's prompts with call data are started ahead when their values are
known, played from what was started when the text is the same, made on the spot otherwise, and dropped at
the end of the call."""
from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import callflows
from callflow_fakes import FakePrompts
from callflows.bundle import load_bundle
from callflows.prefetch import MAX_AHEAD, CallPrompts

HOTLINE = load_bundle(Path(callflows.__file__).parent / "flows" / "hotline12345.yaml")
FLOW = HOTLINE.main
CALLBACK_KO = "ko:회신 전화는 일 삼 구 공 사 삼 삼 공 공 공 일 번호로 드립니다."


def test_the_callback_question_is_started_while_the_address_is_asked():
    prompts = FakePrompts()
    call = CallPrompts(HOTLINE, prompts)
    call.ahead(FLOW, FLOW.nodes["ask_address"], {"caller": "13904330001"}, "ko")
    assert len(prompts.prefetched) == 2  # the spoken and the keypad form of the question
    assert all(text.startswith(CALLBACK_KO) for text in prompts.prefetched)
    assert call.audio(prompts.prefetched[0][3:], "ko") == prompts.prefetched[0]
    assert len(prompts.variable_texts) == 2  # made once each, ahead; nothing made again on the spot


def test_nothing_is_started_without_all_values_or_without_call_data_or_past_the_limit():
    prompts = FakePrompts()
    call = CallPrompts(HOTLINE, prompts)
    call.ahead(FLOW, FLOW.nodes["ask_address"], {"caller": ""}, "ko")          # number not known yet
    call.ahead(FLOW, FLOW.nodes["welcome"], {"caller": "1001"}, "zh")          # next prompt has no variables
    call.ahead(FLOW, FLOW.nodes["goodbye"], {"caller": "1001"}, "zh")          # no next node
    assert prompts.prefetched == []
    for n in range(10):
        call.ahead(FLOW, FLOW.nodes["ask_address"], {"caller": f"100{n}"}, "zh")
    assert len(prompts.prefetched) == MAX_AHEAD


def test_another_text_is_made_on_the_spot_and_the_end_of_the_call_drops_what_was_started():
    class Slow(FakePrompts):
        def prefetch(self, text: str, language: str) -> Future[str]:
            self.prefetched.append(f"{language}:{text}")
            return Future()  # still running

    prompts = Slow()
    call = CallPrompts(HOTLINE, prompts)
    call.ahead(FLOW, FLOW.nodes["ask_address"], {"caller": "1001"}, "zh")
    assert call.audio("您的诉求已受理，工单号是二六三三六", "zh") == "zh:您的诉求已受理，工单号是二六三三六"
    started = list(call._ahead.values())
    call.close()
    assert started and all(future.cancelled() for future in started) and call._ahead == {}
