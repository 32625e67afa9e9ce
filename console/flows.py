"""The installed call flows, each drawn from its Mermaid text (callflows.mermaid) by the Mermaid library
served from this site (static/vendor/mermaid, see its PROVENANCE), with its version: the SHA-256 of the
flow's files, the same content the registry reloads on, and their newest modification time."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import Response

from callflows.bundle import load_bundle
from callflows.issues import FlowError
from callflows.mermaid import to_mermaid
from console.auth import PageUser
from console.i18n import language_of
from console.web import render

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class InstalledFlow:
    name: str
    version: str
    modified: datetime
    description: str = ""
    diagrams: list[tuple[str, str, int]] = field(default_factory=list)  # (flow name, Mermaid text, nodes)
    error: str | None = None


def flow_version(files: list[Path]) -> tuple[str, datetime]:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    newest = max(path.stat().st_mtime for path in files)
    return digest.hexdigest()[:12], datetime.fromtimestamp(newest, timezone.utc)


def installed_flows(directory: Path) -> list[InstalledFlow]:
    """Every <name>.yaml of the flows folder that is a main flow (sub-flows are drawn with the flow using
    them); a flow file with mistakes is listed with them instead of a drawing."""
    flows: list[InstalledFlow] = []
    used_as_subflow: set[str] = set()
    for path in sorted(directory.glob("*.yaml")):
        try:
            bundle = load_bundle(path)
        except FlowError as error:
            version, modified = flow_version([path])
            flows.append(InstalledFlow(path.stem, version, modified, error=str(error)))
            continue
        used_as_subflow.update(name for name in bundle.flows if name != path.stem)
        version, modified = flow_version(list(bundle.files))
        diagrams = [(name, to_mermaid(flow), len(flow.nodes)) for name, flow in bundle.flows.items()]
        diagrams.sort(key=lambda item: item[0] != path.stem)  # the main flow first
        flows.append(InstalledFlow(path.stem, version, modified, bundle.main.description or "", diagrams))
    return [flow for flow in flows if flow.name not in used_as_subflow or flow.error]


@router.get("/flows")
def flows_page(request: Request, user: PageUser) -> Response:
    if not user.may_edit:
        raise HTTPException(403, detail="call flows are for the centre's operators")
    settings = request.app.state.console.settings
    return render(request, "flows.html", user, language_of(request), flows=installed_flows(settings.flows_dir),
                  active=settings.active_flow)
