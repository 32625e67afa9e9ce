"""A flow as a Mermaid flowchart, for the README and the operator page."""
from __future__ import annotations

import re

from callflows.model import Flow


def to_mermaid(flow: Flow) -> str:
    lines = ["flowchart TD", f"    start([start]) --> {_id(flow.start)}"]  # a stadium: "(([" is no shape
    for name, node in flow.nodes.items():
        lines.append(f'    {_id(name)}["{_escape(name)}<br/><i>{node.kind}</i>"]')
    for name, node in flow.nodes.items():
        for label, target, _ in node.targets():
            arrow = "-->" if label == "next" else f'-- "{_escape(label)}" -->'
            lines.append(f"    {_id(name)} {arrow} {_id(target)}")
    if flow.operator:
        lines.append(f'    anywhere(("any point")) -. "{flow.operator.digit}" .-> {_id(flow.operator.node)}')
    if flow.emergency:
        lines.append(f'    danger(("words of danger")) -. police_transfer .-> {_id(flow.emergency.node)}')
    return "\n".join(lines) + "\n"


def _id(name: str) -> str:
    return "n_" + re.sub(r"\W", "_", name)


def _escape(text: str) -> str:
    return text.replace('"', "#quot;")
