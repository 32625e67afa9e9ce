"""The node's callback dialler (回访): places the due callback attempts of the shared queue
(tickets.callbacks) through this node and runs the callback flow on each answered call; and offers the
reply and the survey to a citizen who calls 12345 while their callback is pending.

Every `poll_seconds` one round: attempts whose node died are closed (their lease ran out), newly approved
replies get their first attempt, and as many due attempts are claimed as this node has callback lines free
(`max_concurrent_calls`, and never more than the node's free call slots). Each claimed attempt is dialled
on a thread of its own; the flow speaks and listens, and what it collected (or why there was nothing: busy,
no answer, silence, hang-up, wrong digits) is written back as the attempt's outcome, which schedules the
next attempt or settles the ticket. The clock is
injected so that tests move through retries, quiet hours and holidays without sleeping.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.config import CallbackSettings
from callflows.bundle import FlowBundle
from callflows.interpreter import CallResult, CallServices, FlowRunner
from ivr.node import IvrNode
from ivr.session import CallEnded, CallSession
from recordings.wav_writer import record_caller
from tickets import callbacks, service
from tickets.calendar import WorkingCalendar
from tickets.callbacks import AttemptResult, CallbackCall
from tickets.models import SATISFACTION, utcnow
from tickets.periodic import Periodic

log = logging.getLogger(__name__)
# What the flow leaves in its variables (callflows/flows/callback.yaml): the key pressed or word said, the
# recorded reason and its words ('' without a model), or why there is no answer.
SATISFACTION_VAR, REASON_VAR, REASON_TEXT_VAR, OUTCOME_VAR = ("satisfaction", "reason_audio", "reason",
                                                             "callback_outcome")


class CallbackDialler:
    """One per node answering with the hotline flow; `start` after the node registered, `stop` before it
    stops. `run_once` is one round (tests call it with their clock)."""

    def __init__(self, node: IvrNode, session_factory: sessionmaker[Session], rules: service.TicketRules,
                 settings: CallbackSettings, flow: Callable[[], FlowBundle], services: CallServices,
                 recordings_dir: Path, node_name: str, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.node = node
        self.session_factory = session_factory
        self.rules = rules
        self.settings = settings
        self.policy = settings.policy()
        self.flow = flow
        self.services = services
        self.recordings_dir = recordings_dir
        self.node_name = node_name
        self.clock = clock
        self._lock = threading.Lock()
        self._calls: set[threading.Thread] = set()
        self._rounds = Periodic("callback-dialler", self.run_once, settings.poll_seconds)

    def start(self) -> None:
        self._rounds.start()

    def stop(self, timeout: float = 10.0) -> None:
        """No new rounds; the calls in progress end with the node (their outcome is still recorded)."""
        self._rounds.stop(timeout)

    def wait_idle(self, timeout: float) -> bool:
        """Every call placed so far has ended and its outcome is stored (tests, and a tidy shutdown)."""
        with self._lock:
            calls = list(self._calls)
        for thread in calls:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in calls)

    @property
    def calls_in_progress(self) -> int:
        with self._lock:
            return len(self._calls)

    def run_once(self) -> list[int]:
        """One round; returns the ids of the attempts it started dialling."""
        now = self.clock()
        calendar = self._calendar()
        steps: tuple[tuple[str, Callable[[], object]], ...] = (
            ("closing attempts past their lease", lambda: callbacks.expire_leases(
                self.session_factory, policy=self.policy, calendar=calendar, rules=self.rules, now=now)),
            ("scheduling first attempts", lambda: callbacks.schedule_new(self.session_factory, self.policy,
                                                                         calendar, now)))
        for step, job in steps:
            try:  # one of them failing (a row the rules refuse) must not stop the calls
                job()
            except Exception:
                log.exception("callbacks: %s failed; placing the due calls all the same", step)
        health = self.node.health()  # a node full of incoming calls has no line to spend an attempt on
        free = min(self.settings.max_concurrent_calls - self.calls_in_progress,
                   health.capacity - health.active_calls)
        claimed = callbacks.claim_due(self.session_factory, self.node_name, policy=self.policy, calendar=calendar,
                                      now=now, limit=free)
        for call in claimed:
            thread = threading.Thread(target=self._place, args=(call,), name=f"callback-{call.attempt_id}",
                                      daemon=True)
            with self._lock:
                self._calls.add(thread)
            thread.start()
        return [call.attempt_id for call in claimed]

    def serve_inbound(self, session: CallSession, run: Callable[[Mapping[str, Any]], CallResult]) -> CallResult:
        """Run the intake flow for a citizen who called 12345 (`run(extra_vars)`): when their ticket waits
        for its callback, the attempt is held for this call and the flow offers the reply and the survey
        (`pending_callback`); their answer is stored like a callback's, otherwise the attempt is given back
        as it was (not counted: they called us). A database away only means no offer."""
        try:
            pending = callbacks.claim_for_caller(self.session_factory, session.caller, self.node_name,
                                                 policy=self.policy, now=self.clock())
        except Exception:
            log.exception("call %s: pending callback not looked up", session.call_id)
            pending = None
        if pending is None:
            return run({})
        flow_result: CallResult | None = None
        try:
            flow_result = run({"pending_callback": "yes", **flow_vars(pending)})
            return flow_result
        finally:
            self._settle_inbound(pending, flow_result, session)

    def _settle_inbound(self, call: CallbackCall, flow_result: CallResult | None, session: CallSession) -> None:
        result = attempt_result(flow_result, session, session.recording_path or "") if flow_result else None
        try:
            calendar = self._calendar()
            with self.session_factory.begin() as db_session:
                if result is not None and result.outcome == "answered":
                    callbacks.finish(db_session, call.attempt_id, result, node=self.node_name, policy=self.policy,
                                     calendar=calendar, rules=self.rules, now=self.clock())
                else:
                    callbacks.release(db_session, call.attempt_id, node=self.node_name)
        except Exception:
            log.exception("call %s: callback attempt %d not settled; its lease will close it", session.call_id,
                          call.attempt_id)

    def _calendar(self) -> WorkingCalendar:
        with self.session_factory() as session:
            return WorkingCalendar(service.load_holiday_overrides(session))

    def _place(self, call: CallbackCall) -> None:
        """Dial, run the flow, store the outcome: whatever happens, the attempt is finished and the thread
        leaves the count of calls in progress."""
        try:
            try:
                result = self._call(call)
            except Exception as error:  # the call failed on our side: counted, retried like a failed dial
                log.exception("callback attempt %d failed", call.attempt_id)
                result = AttemptResult("failed", note=f"{type(error).__name__}: {error}")
            calendar = self._calendar()
            with self.session_factory.begin() as session:
                callbacks.finish(session, call.attempt_id, result, node=self.node_name, policy=self.policy,
                                 calendar=calendar, rules=self.rules, now=self.clock())
            log.info("callback attempt %d (ticket %s, attempt %d): %s %s", call.attempt_id, call.ticket_number,
                     call.attempt_number, result.outcome, SATISFACTION.get(result.satisfaction_key or "", ""))
        except service.Conflict as conflict:  # our lease ran out meanwhile: already counted as interrupted
            log.warning("callback attempt %d: %s", call.attempt_id, conflict)
        except Exception:
            log.exception("callback attempt %d: outcome not stored; its lease will close it", call.attempt_id)
        finally:
            with self._lock:
                self._calls.discard(threading.current_thread())

    def _call(self, call: CallbackCall) -> AttemptResult:
        dialled = self.node.dial(call.phone, timeout=self.settings.ring_seconds)
        if dialled.status != "answered" or dialled.session is None:
            return AttemptResult(dialled.status if dialled.status in callbacks.OUTCOMES else "failed",
                                 note=f"SIP {dialled.sip_status}" if dialled.sip_status else None)
        session = dialled.session
        try:  # whatever fails here, the call is hung up (the node's slot comes back with it)
            recording = record_caller(session, self.recordings_dir)
            flow_result = FlowRunner(self.flow(), session, self.services, initial_vars=flow_vars(call),
                                     call_ended=(CallEnded,)).run()
        finally:
            session.hangup()
        return attempt_result(flow_result, session, str(recording.path))


def flow_vars(call: CallbackCall) -> dict[str, Any]:
    """What the callback flow expects (its `expects`)."""
    return {"citizen_language": call.language or "", "confidential": "yes" if call.confidential else "no",
            "ticket_number": call.ticket_number, "ticket_last4": call.ticket_number[-4:],
            "reply_unit": call.handling_unit, "reply_time": call.handled_at, "reply_situation": call.situation,
            "reply_result": call.result}


def attempt_result(flow_result: CallResult, session: CallSession, recording_ref: str) -> AttemptResult:
    """The attempt's outcome from what the flow collected: a satisfaction answered it; otherwise the flow
    says why (wrong digits, silence) or the citizen hung up before the question was answered."""
    key = flow_result.vars.get(SATISFACTION_VAR)
    common = {"recording_ref": recording_ref, "call_id": session.call_id}
    if key in SATISFACTION:
        return AttemptResult("answered", key, reason_ref=flow_result.vars.get(REASON_VAR),
                             reason_text=flow_result.vars.get(REASON_TEXT_VAR) or None, **common)
    outcome = flow_result.vars.get(OUTCOME_VAR)
    if outcome in ("not_confirmed", "silence"):
        return AttemptResult(outcome, **common)
    if flow_result.outcome == "caller_hung_up":
        return AttemptResult("hung_up", note=flow_result.detail, **common)
    return AttemptResult("failed", note=f"{flow_result.outcome}: {flow_result.detail}", **common)
