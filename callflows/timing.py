"""How long a caller who presses nothing listens before the flow first lets them speak freely.

GB/T 33358-2016's spirit is "fast to a listener": this sums the synthesised prompt durations and the
menu time-outs on the no-key path from the start to the first free-speech question, so an administrator
sees what an edit costs. (Over SIP add the answer delay and the jitter buffer.)
"""
from __future__ import annotations

import wave
from dataclasses import dataclass

from callflows.bundle import FlowBundle
from callflows.model import AskNode, Flow, MenuNode, PlayNode, Prompt, SetNode
from callflows.prompts import PromptLibrary
from callflows.templates import render


@dataclass(frozen=True)
class Step:
    node: str
    what: str      # "prompt" | "waits for a key"
    seconds: float


def path_to_first_question(bundle: FlowBundle, library: PromptLibrary) -> list[Step]:
    """Steps on the no-key path until the first free-speech `ask` prompt has been spoken."""
    flow = bundle.main
    language = flow.first_language
    steps: list[Step] = []
    name: str | None = flow.start
    seen: set[str] = set()
    while name and name not in seen:
        seen.add(name)
        node = flow.nodes[name]
        if isinstance(node, PlayNode):
            steps.append(Step(name, "prompt", _seconds(library, flow, node.prompt, node.language or language)))
            name = node.next
        elif isinstance(node, MenuNode):
            if node.prompt is not None:
                steps.append(Step(name, "prompt", _seconds(library, flow, node.prompt, language)))
            steps.append(Step(name, "waits for a key", node.timeout * (node.retries + 1)))
            name = node.on_failure or flow.on_failure
        elif isinstance(node, SetNode):
            name = node.next
        elif isinstance(node, AskNode) and node.grammar is None:
            steps.append(Step(name, "prompt", _seconds(library, flow, node.prompt, language)))
            return steps
        else:
            break
    raise ValueError(f"no free-speech question on the no-key path from '{flow.start}' (stopped at '{name}')")


def _seconds(library: PromptLibrary, flow: Flow, prompt: Prompt, language: str) -> float:
    wav = prompt.wav_by_language.get(language) or prompt.wav
    path = flow.path.parent / wav if wav else library.text(render(prompt.texts[language], {}, language), language)
    with wave.open(str(path)) as audio:
        return audio.getnframes() / audio.getframerate()
