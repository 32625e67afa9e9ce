"""A flow together with every sub-flow it uses, loaded and validated as one immutable snapshot.

A call keeps the bundle it started with, so editing a file never changes a call in progress."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from callflows.issues import FlowError
from callflows.model import Flow
from callflows.validator import read_checked


@dataclass(frozen=True)
class FlowBundle:
    main: Flow
    flows: Mapping[str, Flow]  # by name (file stem), the main flow included
    files: tuple[Path, ...]

    def labels_for(self, flow: Flow) -> dict:
        return {**self.main.labels, **flow.labels}

    def draft_fields(self) -> dict[str, str]:
        """Variable -> ticket field, over all flows of the bundle."""
        merged: dict[str, str] = {}
        for flow in self.flows.values():
            merged.update(flow.draft)
        return merged


def load_bundle(path: Path) -> FlowBundle:
    """Load and validate `path` and its sub-flows; raises FlowError listing every mistake."""
    issues, flows = read_checked(path)
    if issues:
        raise FlowError(issues)
    return FlowBundle(main=flows[path.stem], flows=flows, files=tuple(f.path for f in flows.values()))
