"""The per-call entry point the composition (app.wiring) hands to the IVR: `on_call(session)` runs the current flow version."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from callflows.interpreter import CallResult, CallServices, FlowRunner
from callflows.ports import Call, CallEnded
from callflows.registry import FlowRegistry

log = logging.getLogger(__name__)


class FlowCallHandler:
    """One per IVR node. Loads the flow at construction, so a broken flow stops start-up instead of a call."""

    def __init__(self, registry: FlowRegistry, flow_name: str, services: CallServices, *,
                 initial_vars: Mapping[str, Any] | None = None,
                 call_ended: tuple[type[BaseException], ...] = (CallEnded,)):
        self.registry = registry
        self.flow_name = flow_name
        self.services = services
        self.initial_vars = dict(initial_vars or {})
        self.call_ended = call_ended
        registry.get(flow_name)

    def __call__(self, call: Call, extra_vars: Mapping[str, Any] | None = None) -> CallResult:
        """Run the flow on `call`; `extra_vars` are this call's own (e.g. the caller's pending callback)."""
        bundle = self.registry.get(self.flow_name)  # new calls get the newest good version
        result = FlowRunner(bundle, call, self.services, initial_vars={**self.initial_vars, **(extra_vars or {})},
                            call_ended=self.call_ended).run()
        log.info("call %s from %s: %s (%s)", call.call_id, call.caller, result.outcome, result.detail)
        return result
