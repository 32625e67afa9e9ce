"""A mistake found in a flow file, always with the file and line it is on."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class FlowIssue:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class FlowError(ValueError):
    """A flow file that cannot be used; `issues` lists every mistake found, in file order."""

    def __init__(self, issues: list[FlowIssue]):
        self.issues = sorted(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))
