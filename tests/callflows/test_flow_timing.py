"""Time from answer to the first free-speech question, on the no-key path."""
from __future__ import annotations

import wave

import pytest

from callflows.bundle import load_bundle
from callflows.prompts import PromptLibrary
from callflows.timing import Step, path_to_first_question
from tts import PromptSynthesizer


def silence(path, seconds):
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(8000)
        out.writeframes(bytes(int(16000 * seconds)))


def test_sums_prompts_and_menu_timeouts_up_to_the_first_free_question(tmp_path):
    silence(tmp_path / "hello.wav", 2.5)
    silence(tmp_path / "ask.wav", 1.25)
    flow = tmp_path / "main.yaml"
    flow.write_text("""languages: [zh]
start: hello
on_failure: bye
nodes:
  hello: {kind: play, prompt: {wav: hello.wav}, next: lang}
  lang:
    kind: menu
    timeout: 1.5
    retries: 1
    options: [{digit: "1", next: bye}]
    on_failure: tone
  tone: {kind: set, vars: {mode: quick}, next: ask}
  ask: {kind: ask, prompt: {wav: ask.wav}, var: request, next: bye}
  bye: {kind: hangup}
""", encoding="utf-8")
    steps = path_to_first_question(load_bundle(flow), PromptLibrary(PromptSynthesizer(tmp_path / "cache")))
    assert steps == [Step("hello", "prompt", 2.5), Step("lang", "waits for a key", 3.0), Step("ask", "prompt", 1.25)]


def test_a_flow_without_a_free_question_is_an_error(tmp_path):
    flow = tmp_path / "main.yaml"
    flow.write_text("languages: [zh]\nstart: bye\nnodes:\n  bye: {kind: hangup}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no free-speech question on the no-key path from 'bye'"):
        path_to_first_question(load_bundle(flow), PromptLibrary(PromptSynthesizer(tmp_path)))
