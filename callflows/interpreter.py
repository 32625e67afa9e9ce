"""Drives one call through a flow bundle: prompts out, digits and speech in, tickets through the ports.

Rules that hold everywhere, whatever the flow says:
- the operator digit (flow `operator`) reaches the operator node at any prompt or question; in a digit
  collection it counts when it is the whole entry (numbers may start with 0);
- an input node that fails `retries + 1` times goes to its `on_failure`, else the flow's, else the main
  flow's (by default: the operator) — so a second failure to understand reaches a human; an answer the
  recognisers could not hear in time (the node's load) is not the caller's failure: the question is asked
  again at once on keys, so a busy node never sends a caller to the operator or takes a late "yes" for none;
- every collected value the flow maps in `draft` is saved to the ticket draft at once, and a call that
  leaves before the ticket is submitted marks its draft incomplete for an operator;
- a port that fails unexpectedly (or a flow that loops) hands the caller to the operator node once;
- with a flow `emergency` watch, every free-speech answer is classified as it is heard: words of danger (the
  ticket rules' police transfer) run the emergency nodes at once, whatever the question was.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from callflows import model
from callflows.bundle import FlowBundle
from callflows.listening import CallListener, Heard
from callflows.model import Flow, InputNode, Node, Prompt
from callflows.ports import (Call, CallEnded, CallObserver, Listening, NoCallObserver, PromptAudio, Recordings,
                             Speech, Switchboard, TicketNotFound, Tickets, WorkingDays)
from callflows.prefetch import CallPrompts
from callflows.templates import placeholders, render

log = logging.getLogger(__name__)

MENU_UTTERANCE = 4.0       # longest answer to a menu, seconds
MENU_END_SILENCE = 0.8
CONFIRM_YES, CONFIRM_AGAIN = "1", "2"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class CallServices:
    """Everything outside callflows that a call uses (see callflows.ports)."""

    speech: Speech
    tickets: Tickets
    switchboard: Switchboard
    recordings: Recordings
    prompts: PromptAudio
    calendar: WorkingDays
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(SHANGHAI))
    observer: CallObserver = field(default_factory=NoCallObserver)  # the live view; nobody by default


@dataclass
class CallResult:
    outcome: str                    # completed | caller_hung_up | transferred | flow_error
    vars: dict[str, Any]
    visited: list[str]              # "flow:node" in order ("error" marks a rescue to the operator)
    detail: str = ""


class _Jump(Exception):
    """Leave whatever flow/sub-flow is running and continue at a node of the main flow."""

    def __init__(self, node: str):
        self.node = node


class _Finished(Exception):
    """The call is over for the IVR (hung up, transferred)."""


_RETURN = "\0return"
_NO_INPUT, _INVALID, _AGAIN = "no_input", "invalid", "again"
# The recognisers could not hear this answer in time (the node's load, not the caller): the same question is
# asked again at once on keys (the listener is keypad-only from then on), and it is not counted as a failure.
_ON_KEYS = "on keys"


class FlowRunner:
    MAX_STEPS = 500  # a flow that loops without the caller ending it is a flow mistake

    def __init__(self, bundle: FlowBundle, call: Call, services: CallServices, *,
                 initial_vars: Mapping[str, Any] | None = None,
                 call_ended: tuple[type[BaseException], ...] = (CallEnded,)):
        self.bundle = bundle
        self.main = bundle.main
        self.call = call
        self.services = services
        self.call_ended = call_ended
        self.draft_fields = bundle.draft_fields()
        self.vars: dict[str, Any] = {}
        for flow in bundle.flows.values():  # defaults of every flow of the bundle; the main flow's win
            self.vars.update(flow.vars)
        self.vars.update(self.main.vars)
        self.vars.update(initial_vars or {})
        self.vars.update(caller=call.caller, call_id=call.call_id, language=self.main.first_language)
        self.visited: list[str] = []  # "flow:node" in order; "error" where the operator rescue began
        self.steps = 0
        self.outcome = ""
        self.detail = ""
        # The last question the caller could not answer (or the flow error), until a later answer succeeds:
        # why a call reached the operator, said in its detail (the incomplete draft's reason).
        self.failure = ""
        self.draft_open = False
        self.submitted = False
        self.listener = CallListener(call, services.speech, services.observer)
        self.prompts = CallPrompts(bundle, services.prompts)  # this call's prompts with call data in them

    @property
    def language(self) -> str:
        return str(self.vars["language"])

    # -- running ---------------------------------------------------------------------------------

    def run(self) -> CallResult:
        target = self.main.start
        rescued = False
        try:
            while True:
                try:
                    self._execute(self.main, target)
                    self._end("completed", "flow ended")
                except _Jump as jump:
                    target = jump.node
                except (_Finished, *self.call_ended):
                    raise
                except Exception:  # a port failed, or the flow loops: hand the caller to a human once
                    log.exception("call %s: flow error at %s", self.call.call_id, self._where())
                    if rescued or not self.main.operator:
                        self.outcome, self.detail = "flow_error", f"flow error at {self._where()}"
                        self._hang_up_quietly()
                        break
                    rescued, target, self.steps = True, self.main.operator.node, 0
                    self.failure = f"a flow error at {self._where()}"
                    self.visited.append("error")
        except _Finished:
            pass
        except self.call_ended:
            self.outcome, self.detail = "caller_hung_up", self._at(f"caller hung up at {self._where()}")
            self._after_hangup()
        self.prompts.close()
        if self.draft_open and not self.submitted:
            self._safely(self.services.tickets.mark_incomplete, self.call.call_id, self.detail)
        return CallResult(self.outcome, dict(self.vars), list(self.visited), self.detail)

    def _execute(self, flow: Flow, start: str) -> bool:
        """Run `flow` from `start`; True when it reached a `return` node."""
        name: str | None = start
        while name:
            self.steps += 1
            if self.steps > self.MAX_STEPS:
                raise RuntimeError(f"more than {self.MAX_STEPS} steps: the flow loops")
            node = flow.nodes[name]
            self.visited.append(f"{flow.name}:{name}")
            self._safely(self.services.observer.node_entered, self.call.call_id, flow.name, name)
            self._safely(self.prompts.ahead, flow, node, self.vars, self.language)
            name = getattr(self, f"_do_{node.kind}")(flow, node)
            if name == _RETURN:
                return True
        return False

    def _after_hangup(self) -> None:
        """The flow's on_hangup: what must still happen once the caller left (e.g. transfer the ticket to the
        unit). Nodes that touch the call end it; a failing port is logged."""
        if not self.main.on_hangup:
            return
        outcome, detail, self.steps = self.outcome, self.detail, 0
        try:
            self._execute(self.main, self.main.on_hangup)
        except (_Finished, _Jump, *self.call_ended):
            pass
        except Exception:
            log.exception("call %s: on_hangup failed at %s", self.call.call_id, self._where())
        self.outcome, self.detail = outcome, detail  # the call's outcome is still the hang-up

    def _end(self, outcome: str, detail: str) -> None:
        self.outcome, self.detail = outcome, detail
        self._hang_up_quietly()
        raise _Finished

    def _hang_up_quietly(self) -> None:
        try:
            self.call.hangup()
        except self.call_ended:
            pass

    def _where(self) -> str:
        return self.visited[-1] if self.visited else "start"

    def _at(self, detail: str) -> str:
        """`detail`, with the failure that led there when there was one."""
        return f"{detail} after {self.failure}" if self.failure else detail

    # -- prompts ---------------------------------------------------------------------------------

    def _audio(self, flow: Flow, prompt: Prompt, *, language: str | None = None,
               extra: Mapping[str, Any] | None = None) -> Any:
        language = language or self.language
        wav = prompt.wav_by_language.get(language) or prompt.wav
        if wav:
            return self.services.prompts.recorded(flow.path.parent / wav)
        template = prompt.texts.get(language, "")
        text = render(template, {**self.vars, **(extra or {})}, language, self.bundle.labels_for(flow))
        if placeholders(template):  # call data in it: synthesised for this call, never cached
            return self.prompts.audio(text, language)
        return self.services.prompts.text(text, language)

    def _say(self, flow: Flow, prompt: Prompt | None, *, barge_in: bool = True, language: str | None = None,
             extra: Mapping[str, Any] | None = None, operator_escape: bool = True) -> str | None:
        if prompt is None:
            return None
        return self._play(self._audio(flow, prompt, language=language, extra=extra), barge_in, operator_escape)

    def _play(self, audio: Any, barge_in: bool, operator_escape: bool = True) -> str | None:
        """Play; the operator digit pressed over a prompt leaves at once (unless the caller may be typing a
        number that starts with it). Any other digit stays queued for the next question."""
        digit = self.call.play(audio, barge_in=barge_in)
        if operator_escape and self.main.operator and digit == self.main.operator.digit:
            self.call.next_digit(0)  # consume the queued digit
            self._check_operator(digit)
        return digit

    # -- listening -------------------------------------------------------------------------------

    def _check_operator(self, digit: str | None) -> None:
        if digit and self.main.operator and digit == self.main.operator.digit:
            raise _Jump(self.main.operator.node)

    def _listen(self, *, timeout: float, pending: str | None = None, turn: Listening | None = None) -> Heard:
        """A digit; with a listening `turn` (callflows.listening), a digit or the caller's utterance."""
        if turn is not None:
            return self.listener.hear(turn, pending=pending)
        queued = self.call.next_digit(0)
        if queued or pending:
            return Heard(digit=queued or pending)
        return Heard(digit=self.call.next_digit(timeout))

    def _attempts(self, flow: Flow, node: InputNode, attempt: Callable[[], str]) -> str | None:
        """Run `attempt` up to retries+1 times; it returns a target node or _NO_INPUT/_INVALID/_AGAIN, or
        _ON_KEYS, which is the node's load and not the caller's failure: asked again on keys, not counted
        (once: after it the listener hears keys only, so it cannot come again)."""
        problem = None
        failures = 0
        moved_to_keys = False
        while failures <= node.retries:
            if problem == _NO_INPUT:
                self._say(flow, node.no_input)
            elif problem == _INVALID:
                self._say(flow, node.invalid)
            result = attempt()
            if result == _ON_KEYS and not moved_to_keys:
                moved_to_keys, problem = True, None
                continue
            if result not in (_NO_INPUT, _INVALID, _AGAIN, _ON_KEYS):
                self.failure = ""
                return result
            problem = result
            failures += 1
        return self._give_up(flow, node, str(problem))

    def _give_up(self, flow: Flow, node: Node, why: str = "") -> str | None:
        log.info("call %s: %s '%s' failed (%s), giving up", self.call.call_id, node.kind, node.name, why)
        own = getattr(node, "on_failure", None)
        if not own or (flow is self.main and self.main.operator and own == self.main.operator.node):
            # not a way the flow planned for this question (a menu's "no key: go on"): a failure to tell
            self.failure = f"{flow.name}:{node.name} failed" + (f" ({why})" if why else "")
        target = own or flow.on_failure
        if target:
            return target
        if self.main.on_failure:
            raise _Jump(self.main.on_failure)
        self._end("completed", f"gave up at {flow.name}:{node.name}")
        return None

    # -- saving what was collected -------------------------------------------------------------------

    def _store(self, name: str, value: Any) -> None:
        self.vars[name] = value
        field_name = self.draft_fields.get(name)
        if field_name and value is not None:
            self._safely(self.services.tickets.save_draft, self.call.call_id, self.call.caller, {field_name: value})
            self.draft_open = True

    def _draft_values(self) -> dict[str, Any]:
        return {field_name: self.vars[var] for var, field_name in self.draft_fields.items()
                if self.vars.get(var) is not None}

    def _safely(self, action: Callable[..., Any], *args: Any) -> None:
        """Saving or telling an observer must never cost the caller the call: log and go on."""
        try:
            action(*args)
        except Exception:
            log.exception("call %s: %s failed", self.call.call_id, getattr(action, "__name__", action))

    def _render(self, flow: Flow, template: str | None) -> str:
        return render(template or "", self.vars, self.language, self.bundle.labels_for(flow))

    # -- node kinds ------------------------------------------------------------------------------

    def _do_play(self, flow: Flow, node: model.PlayNode) -> str:
        self._say(flow, node.prompt, barge_in=node.barge_in, language=node.language)
        return node.next

    def _do_menu(self, flow: Flow, node: model.MenuNode) -> str | None:
        language = self.language
        phrases = [word for option in node.options for word in option.say.get(language, [])]

        def attempt() -> str:
            with self.listener.turn(language, phrases=phrases, recognise=bool(phrases), record=False,
                                    timeout=node.timeout, max_length=MENU_UTTERANCE,
                                    end_silence=MENU_END_SILENCE) as turn:
                prompt = node.prompt if turn is not None or node.keypad_prompt is None else node.keypad_prompt
                interrupted = self._say(flow, prompt, barge_in=node.barge_in)
                heard = self._listen(timeout=node.timeout, pending=interrupted, turn=turn)
            self._check_operator(heard.digit)
            if heard.digit:
                chosen = next((o for o in node.options if o.digit == heard.digit), None)
            elif heard.audio and not heard.recognised:
                return _ON_KEYS  # the recognisers could not keep up: asked again, on keys
            elif heard.audio:
                said = heard.text
                if said:
                    self._safely(self.services.observer.final_transcript, self.call.call_id, said)
                chosen = next((o for o in node.options if said and said in o.say.get(language, [])), None)
            else:
                return _NO_INPUT
            if chosen is None:
                return _INVALID
            for name, template in chosen.assign.items():
                self._store(name, self._render(flow, template))
            return chosen.next

        return self._attempts(flow, node, attempt)

    def _do_collect(self, flow: Flow, node: model.CollectNode) -> str | None:
        def attempt() -> str:
            self._say(flow, node.prompt, barge_in=node.barge_in, operator_escape=False)  # typed-ahead digits stay queued
            digits = self.call.collect_digits(max_digits=node.max_length, first_digit_timeout=node.timeout,
                                              inter_digit_timeout=node.inter_digit_timeout,
                                              terminator=node.terminator)
            self._check_operator(digits)
            if not digits:
                return _NO_INPUT
            if not node.min_length <= len(digits) <= node.max_length:
                return _INVALID
            if node.read_back is not None:
                self._say(flow, node.read_back, barge_in=node.confirm, extra={node.var: digits})
            if node.confirm:
                answer = self._listen(timeout=node.timeout).digit
                self._check_operator(answer)
                if answer != CONFIRM_YES:
                    return _AGAIN if answer == CONFIRM_AGAIN else _INVALID
            self._store(node.var, digits)
            return node.next

        return self._attempts(flow, node, attempt)

    def _do_ask(self, flow: Flow, node: model.AskNode) -> str | None:
        language = self.language
        has_model = self.listener.speech_available(language)
        phrases = (node.grammar or {}).get(language, []) if node.grammar is not None else None
        if not has_model and (node.grammar is not None or node.no_model):
            return node.no_model or self._give_up(flow, node, "no speech model")

        def attempt() -> str:
            with self.listener.turn(language, phrases=phrases, recognise=True, record=True, timeout=node.timeout,
                                    max_length=node.max_length, end_silence=node.end_silence) as turn:
                prompt = node.prompt if turn.recognising or node.keypad_prompt is None else node.keypad_prompt
                interrupted = self._say(flow, prompt, barge_in=node.barge_in)
                heard = self._listen(timeout=node.timeout, pending=interrupted, turn=turn)
            self._check_operator(heard.digit)
            if heard.digit:
                return _INVALID
            if heard.audio is None:
                return _NO_INPUT
            if node.grammar is not None:
                if not heard.recognised:  # recognisers full: as without a model
                    return node.no_model or self._give_up(flow, node, "not recognised in time")
                if heard.text is None:
                    return _INVALID
                self._safely(self.services.observer.final_transcript, self.call.call_id, heard.text)
                self._store(node.var, heard.text)
                return node.next
            self._store(f"{node.var}_audio", self.services.recordings.save(self.call.call_id, node.var, heard.audio))
            text = (heard.text or "").strip()
            if text:
                self._safely(self.services.observer.final_transcript, self.call.call_id, text)
            if heard.recognised and not text:
                return _INVALID
            self._store(node.var, text)  # '' when not recognised (no model, or on keys): transcribed later
            self._watch_for_danger(text)
            return node.next

        return self._attempts(flow, node, attempt)

    def _watch_for_danger(self, text: str) -> None:
        """The flow's emergency watch (the procedures handle non-police matters and link to 110, 第三条): when
        the rules find words of danger in `text`, the emergency nodes run now (they transfer to 110, or ask
        first); their `return` (the caller declined) continues the call after this answer. A classifier that
        fails costs nothing but the watch on this answer."""
        watch = self.main.emergency
        if watch is None or not text:
            return
        try:
            police = self.services.tickets.propose(text).police_transfer
        except Exception:
            log.exception("call %s: classifying an answer for words of danger failed", self.call.call_id)
            return
        if police:
            log.info("call %s: words of danger (%s) at %s", self.call.call_id, police, self._where())
            self.vars["police_transfer"] = police
            self._execute(self.main, watch.node)

    def _do_record(self, flow: Flow, node: model.RecordNode) -> str:
        with self.listener.turn(self.language, phrases=None, recognise=False, record=True, timeout=node.timeout,
                                max_length=node.max_length, end_silence=node.end_silence) as turn:
            self._say(flow, node.prompt)
            heard = self._listen(timeout=node.timeout, turn=turn)
        self._check_operator(heard.digit)
        if heard.audio:
            self._store(node.var, self.services.recordings.save(self.call.call_id, node.var, heard.audio))
        return node.next

    def _do_branch(self, flow: Flow, node: model.BranchNode) -> str:
        for case in node.cases:
            if self._holds(flow, case.condition):
                return case.next
        return node.otherwise

    def _holds(self, flow: Flow, c: model.Condition) -> bool:
        if c.business_hours is not None:
            return self._in_business_hours(flow.business_hours or self.main.business_hours) == c.business_hours
        if c.working_day is not None:
            return self.services.calendar.is_working_day(self.services.clock().date()) == c.working_day
        if c.language is not None:
            return self.language == c.language
        if c.speech_available is not None:
            return self.listener.speech_available(self.language) == c.speech_available
        if c.seats_on_duty is not None:
            unit = self._render(flow, c.seats_on_duty)
            return bool(unit) and self.services.switchboard.seats_on_duty(unit)
        if c.open_tickets is not None:
            count = len(self.services.tickets.open_tickets(self.call.caller))
            self.vars["open_ticket_count"] = count
            return (count > 0) == c.open_tickets
        value = self.vars.get(c.var)
        if c.empty is not None:
            return (value in (None, "")) == c.empty
        if c.one_of is not None:
            return str(value) in c.one_of
        return str(value) == self._render(flow, c.equals)

    def _in_business_hours(self, hours: model.BusinessHours) -> bool:
        now = self.services.clock()
        if not self.services.calendar.is_working_day(now.date()):
            return False
        return time.fromisoformat(hours.start) <= now.time() < time.fromisoformat(hours.end)

    def _do_set(self, flow: Flow, node: model.SetNode) -> str:
        for name, template in node.vars.items():
            self._store(name, self._render(flow, template))
        return node.next

    def _do_ticket(self, flow: Flow, node: model.TicketNode) -> str | None:
        tickets = self.services.tickets
        fields = {name: self._render(flow, template) for name, template in node.fields.items()}
        try:
            if node.action == "propose":
                proposal = tickets.propose(self._render(flow, node.text))
                self._store("request_type", proposal.request_type)  # None: no rule matched
                self._store("topic", proposal.topic)
                self._store("level", proposal.level)
                self._store("unit", self._responsible_unit(proposal.topic))
                self._store("police_transfer", proposal.police_transfer)
                return node.next
            if node.action == "create":
                info = tickets.submit(self.call.call_id, self.call.caller, {**self._draft_values(), **fields})
                self.submitted = True
            elif node.action == "update":
                info = tickets.update(self._render(flow, node.number), fields)
            elif node.action == "answer":
                info = tickets.answer_by_unit(self._render(flow, node.number), self._render(flow, node.unit),
                                              self._render(flow, node.note))
            elif node.action == "transfer":
                info = tickets.transfer_to_unit(self._render(flow, node.number), self._render(flow, node.unit),
                                                self._render(flow, node.note))
            else:
                info = tickets.find(self._render(flow, node.number))
                if info is None:
                    return node.on_not_found
        except TicketNotFound:
            if node.on_not_found:
                return node.on_not_found
            log.warning("call %s: ticket %s: no ticket %s", self.call.call_id, node.action, node.number)
            return node.on_error or self._give_up(flow, node, "no such ticket")
        except Exception:
            log.exception("call %s: ticket %s failed", self.call.call_id, node.action)
            return node.on_error or self._give_up(flow, node, "the tickets failed")
        self.vars.update(ticket_number=info.number, ticket_status=info.status, deadline=info.deadline,
                         request_type=info.request_type or self.vars.get("request_type"))
        return node.next

    def _responsible_unit(self, topic: str | None) -> str | None:
        """The topic's member unit; None when there is none, or the directory cannot be read now (the
        proposal itself still counts: the ticket goes on without a unit, an operator routes it)."""
        if not topic:
            return None
        try:
            return self.services.tickets.unit_for(topic)
        except Exception:
            log.exception("call %s: looking up the unit for topic %s failed", self.call.call_id, topic)
            return None

    def _do_kb_answer(self, flow: Flow, node: model.KbAnswerNode) -> str:
        answer = self.services.tickets.kb_search(self._render(flow, node.query), self.language)
        if not answer:
            return node.not_found
        self.vars["kb_answer"] = answer
        self._say(flow, node.prompt)
        self._play(self.services.prompts.text(answer, self.language), barge_in=True)
        return node.next

    def _do_transfer(self, flow: Flow, node: model.TransferNode) -> str | None:
        number = self._render(flow, node.number)
        self._say(flow, node.prompt, barge_in=False)
        if self.services.switchboard.transfer(self.call, number):
            self.outcome, self.detail = "transferred", self._at(f"transferred to {number} at {self._where()}")
            raise _Finished
        log.warning("call %s: transfer to %s failed", self.call.call_id, number)
        return node.on_failure or self._give_up(flow, node, f"no answer from {number}")

    def _do_three_way(self, flow: Flow, node: model.ThreeWayNode) -> str | None:
        unit = self._render(flow, node.unit)
        self._say(flow, node.prompt)  # the operator digit over it reaches the operator
        escape = self.main.operator.digit if self.main.operator else None
        result = self.services.switchboard.three_way(
            self.call, unit, lambda language: self._audio(
                flow, node.announcement,
                language=language if node.announcement.covers(language) else self.main.first_language),
            hold=self._audio(flow, node.hold) if node.hold else None, escape_digit=escape,
            ticket=self.vars.get("ticket_number") or None)
        self.vars.update(three_way_outcome=result.outcome, three_way_seat=result.seat,
                         three_way_id=result.conference_id)
        if result.outcome == "escaped" and self.main.operator:
            raise _Jump(self.main.operator.node)
        return node.next if result.joined else (node.on_failure or node.next)

    def _do_subflow(self, flow: Flow, node: model.SubflowNode) -> str | None:
        subflow = self.bundle.flows[node.flow]
        returned = self._execute(subflow, subflow.start)
        return node.next if returned else None

    def _do_return(self, flow: Flow, node: model.ReturnNode) -> str:
        return _RETURN

    def _do_hangup(self, flow: Flow, node: model.HangupNode) -> None:
        self._say(flow, node.prompt, barge_in=False)
        self._end("completed", self._at(f"hung up at {self._where()}"))
