"""The prompts of one call that carry call data (the caller's number, a ticket number, a deadline).

They are synthesised for this call only and never cached (callflows.ports.PromptAudio.variable): personal
data must not pile up in a prompt cache. To spare the caller the synthesis pause where the text is already
known, the prompts of the node that comes next are started off the call's thread while the current node
runs (for example the callback question with the caller's number while the caller gives an address). What
was started and not played is dropped at the end of the call.
"""
from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from callflows.bundle import FlowBundle
from callflows.model import Flow, Node
from callflows.ports import PromptAudio
from callflows.prompts import prompts_of
from callflows.templates import placeholders, render

MAX_AHEAD = 4  # prompts started and not yet played, per call


class CallPrompts:
    def __init__(self, bundle: FlowBundle, prompts: PromptAudio) -> None:
        self.bundle = bundle
        self.prompts = prompts
        self._ahead: dict[tuple[str, str], Future[Any]] = {}

    def ahead(self, flow: Flow, node: Node, values: Mapping[str, Any], language: str) -> None:
        """Start the variable prompts of `node`'s next node whose values are all known now."""
        following = flow.nodes.get(getattr(node, "next", None) or "")
        if following is None:
            return
        for prompt in prompts_of(following):
            template = prompt.texts.get(language, "")
            names = [name for name, _ in placeholders(template)]
            if prompt.wav or language in prompt.wav_by_language or not names:
                continue
            if any(values.get(name) in (None, "") for name in names) or len(self._ahead) >= MAX_AHEAD:
                continue
            key = (render(template, values, language, self.bundle.labels_for(flow)), language)
            if key not in self._ahead:
                self._ahead[key] = self.prompts.prefetch(*key)

    def audio(self, text: str, language: str) -> Any:
        """The variable prompt `text`: the one started ahead when it is the same text, else made now."""
        started = self._ahead.pop((text, language), None)
        return started.result() if started is not None else self.prompts.variable(text, language)

    def close(self) -> None:
        """The call is over: what was started and not played is dropped."""
        for started in self._ahead.values():
            started.cancel()
        self._ahead.clear()
