"""A scripted call and fake ports for unit tests of the interpreter's logic.

The caller is a script of events in order: keys pressed, an utterance, silence, hang-up. Time passes
only as the interpreter consumes the script (frames of 20 ms, or digit time-outs), so tests are
deterministic and instant. An utterance is audio whose samples encode which text was said, so the fake
recogniser can "hear" it after asr's real endpointer cut it out of the frame stream (a Say frame is voice).
"""
from __future__ import annotations

import struct
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from asr.endpoint import Endpointer, Phase
from callflows.ports import CallEnded, ThreeWayResult, TicketInfo, TicketNotFound

FRAME = 0.02
REQUEST_TYPES = ("咨询", "求助", "投诉", "举报", "建议", "表扬", "申诉")
QUIET_FRAME = bytes(320)
_SPOKEN: list[str] = []  # utterance code -> text


@dataclass
class Keys:
    keys: str


@dataclass
class Say:
    text: str
    seconds: float = 1.0

    def frame(self) -> bytes:
        if self.text not in _SPOKEN:
            _SPOKEN.append(self.text)
        level = 2000 + _SPOKEN.index(self.text)
        return struct.pack("<160h", *([level, -level] * 80))


@dataclass
class Quiet:
    seconds: float


@dataclass
class HangUp:
    pass


def heard_text(pcm: bytes) -> str | None:
    """What a `Say` frame in `pcm` said (None for silence)."""
    for (sample,) in struct.iter_unpack("<h", pcm):
        if abs(sample) >= 2000:
            return _SPOKEN[abs(sample) - 2000]
    return None


class ScriptedCall:
    def __init__(self, *events: Any, caller: str = "13900001111", call_id: str = "call-1",
                 backlog_after_prompt: float = 0.0):
        self.events: deque = deque(events)
        # Seconds of quiet caller audio already queued when each prompt ends (the real session keeps
        # receiving while it plays); read_frame(0) returns None once nothing is queued.
        self.backlog_after_prompt = backlog_after_prompt
        self._backlog = 0.0
        self.caller = caller
        self.call_id = call_id
        self.played: list[Any] = []
        self.barge_in: list[bool] = []  # per played prompt
        self.hung_up = False
        self._sink = None  # stream_frames: while set, time spent waiting for a digit feeds it frames

    def _front(self) -> Any:
        while self.events:
            front = self.events[0]
            if isinstance(front, Keys) and not front.keys or isinstance(front, (Say, Quiet)) and front.seconds <= 1e-9:
                self.events.popleft()
                continue
            if isinstance(front, HangUp):
                raise CallEnded()
            return front
        return None

    def play(self, audio: Any, *, barge_in: bool = True) -> str | None:
        if self.hung_up:
            raise CallEnded()
        self.played.append(audio)
        self.barge_in.append(barge_in)
        self._backlog = self.backlog_after_prompt
        front = self._front()
        if barge_in and isinstance(front, Keys):
            return front.keys[0]  # interrupts, and stays queued
        return None

    def stream_frames(self, sink):
        while self._backlog > 1e-9:
            self._backlog -= FRAME
            sink(QUIET_FRAME, True)
        self._sink = sink

        def stop() -> None:
            self._sink = None
        return stop

    def next_digit(self, timeout: float, *, until=None) -> str | None:
        remaining = timeout
        while True:
            if until is not None and until():
                return None
            front = self._front()
            if isinstance(front, Keys):
                digit, front.keys = front.keys[0], front.keys[1:]
                return digit
            if front is None or remaining <= 1e-9:
                return None
            if self._sink is not None:  # the line carries the caller's audio frame by frame
                front.seconds -= FRAME
                remaining -= FRAME
                self._sink(front.frame() if isinstance(front, Say) else QUIET_FRAME, False)
                continue
            spent = min(front.seconds, remaining)  # the caller is quiet or talking: time passes
            front.seconds -= spent
            remaining -= spent
            if remaining <= 1e-9:
                return None  # a key after the time-out is for the next question

    def read_frame(self, timeout: float = 1.0) -> bytes | None:
        if self._backlog > 1e-9:
            self._backlog -= FRAME
            return QUIET_FRAME
        if timeout <= 0:
            return None  # nothing queued: the script's audio is live
        front = self._front()
        if isinstance(front, (Say, Quiet)):
            front.seconds -= FRAME
            return front.frame() if isinstance(front, Say) else QUIET_FRAME
        return QUIET_FRAME

    def collect_digits(self, *, max_digits: int, first_digit_timeout: float = 5.0,
                       inter_digit_timeout: float = 3.0, terminator: str | None = "#") -> str:
        collected = ""
        while len(collected) < max_digits:
            digit = self.next_digit(inter_digit_timeout if collected else first_digit_timeout)
            if digit is None or digit == terminator:
                break
            collected += digit
        return collected

    def hangup(self) -> None:
        self.hung_up = True

    def texts(self) -> list[str]:
        """What the caller heard, as 'lang:text' (FakePrompts) in order."""
        return [str(item) for item in self.played]


@dataclass
class FakeHeard:
    audio: bytes | None
    text: str | None
    recognised: bool


class FakeListening:
    """asr's real Endpointer (a Say frame is voice); "recognition" reads the Say codes of the utterance."""

    def __init__(self, speech: FakeSpeech, language: str, phrases, recognise: bool, endpointer: Endpointer,
                 on_partial=None):
        self.speech, self.language, self.phrases = speech, language, phrases
        self.recognising = recognise
        self.endpointer = endpointer
        self.on_partial = on_partial
        self.last_partial = None
        self.cancelled = False

    @property
    def finished(self) -> bool:
        return self.cancelled or self.endpointer.finished

    def feed(self, frame: bytes, queued: bool = False) -> None:
        if not self.finished:
            decoded = self.endpointer.push(frame, queued=queued)
            said = heard_text(b"".join(decoded)) if decoded and self.recognising else None
            if said and said != self.last_partial and self.on_partial is not None:
                self.last_partial = said
                self.on_partial(said)  # as the pool reports words while they are spoken, when they change

    def silence(self, seconds: float) -> None:
        if not self.finished:
            self.endpointer.silence(seconds)

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.speech.open_turns -= self.recognising

    def result(self) -> FakeHeard:
        if self.endpointer.phase is not Phase.ENDED:
            return FakeHeard(None, None, False)
        pcm = self.endpointer.utterance
        if not self.recognising:
            return FakeHeard(pcm, None, False)
        if self.speech.in_time is not None and len(self.speech.requests) >= self.speech.in_time:
            self.speech.late += 1
            return FakeHeard(pcm, None, False)  # as asr's turn when the words are not in within its wait
        said = heard_text(pcm)
        if self.phrases:
            self.speech.requests.append(("recognize", self.language, tuple(self.phrases)))
            return FakeHeard(pcm, said if said in self.phrases else None, True)
        self.speech.requests.append(("transcribe", self.language, ()))
        text = said or ""
        return FakeHeard(pcm, "" if text == "<mumble>" else text, True)


class FakeSpeech:
    """`capacity`: how many recognising listenings may be open at once (None: unlimited). `in_time`: how
    many answers are recognised before the recognisers fall behind (None: all); every answer after them
    is heard but not recognised in time (counted in `late`)."""

    def __init__(self, languages: set[str] = frozenset({"zh", "ko"}), *, capacity: int | None = None,
                 is_voice=None, in_time: int | None = None):
        self.languages = set(languages)
        self.capacity = capacity
        self.in_time = in_time
        self.late = 0
        self.is_voice = is_voice or (lambda frame: heard_text(frame) is not None)
        self.open_turns = 0
        self.refused = 0
        self.requests: list[tuple[str, str, tuple[str, ...]]] = []

    def has_model(self, language: str) -> bool:
        return language in self.languages

    def listen(self, language: str, *, phrases=None, recognise: bool = True, timeout: float, max_length: float,
               end_silence: float, on_partial=None) -> FakeListening | None:
        if recognise and self.capacity is not None and self.open_turns >= self.capacity:
            self.refused += 1
            return None
        self.open_turns += recognise
        endpointer = Endpointer(timeout=timeout, end_silence=end_silence, max_length=max_length,
                                is_voice=self.is_voice)
        return FakeListening(self, language, phrases, recognise, endpointer, on_partial if recognise else None)


@dataclass
class FakeProposal:
    level: int
    request_type: str | None
    topic: str | None
    police_transfer: str | None = None


@dataclass
class FakeTickets:
    """Classifies by keyword, numbers tickets from 2026000001, answers the KB by keyword."""

    known: dict[str, TicketInfo] = field(default_factory=dict)
    kb: dict[str, str] = field(default_factory=dict)
    open_by_caller: dict[str, list[TicketInfo]] = field(default_factory=dict)
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)
    draft_log: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    submitted: dict[str, dict[str, Any]] = field(default_factory=dict)
    incomplete: dict[str, str] = field(default_factory=dict)
    updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_submit: bool = False
    number_by_callback: bool = False  # as the journal answers with the database away and no number reserved
    deadline: datetime = datetime(2026, 12, 3, 17, 30)
    units: dict[str, str] = field(default_factory=dict)  # topic -> member unit (none by default)
    unit_deadline: datetime = datetime(2026, 9, 30, 23, 59, 59)  # the unit's 2-working-day reply deadline
    settled: list[tuple[str, str, str, str]] = field(default_factory=list)  # (number, status, unit, note)

    def propose(self, text: str) -> FakeProposal:
        if "停水" in text or "단수" in text:
            return FakeProposal(2, "投诉", "water")
        if "怎么" in text or "어떻게" in text:
            return FakeProposal(3, "咨询", "policy")
        return FakeProposal(3, None, None)

    def save_draft(self, call_id: str, caller: str, fields: dict[str, Any]) -> None:
        if fields.get("request_type", "投诉") not in REQUEST_TYPES:  # as tickets.service checks
            raise ValueError(f"request_type: {fields['request_type']!r} is not one of {', '.join(REQUEST_TYPES)}")
        self.drafts.setdefault(call_id, {"caller": caller}).update(fields)
        self.draft_log.append((call_id, dict(fields)))

    def submit(self, call_id: str, caller: str, fields: dict[str, Any]) -> TicketInfo:
        if self.fail_submit:
            raise RuntimeError("database is down")
        self.save_draft(call_id, caller, fields)
        number = f"2026{len(self.submitted) + 1:06d}"
        self.submitted[number] = dict(self.drafts[call_id])
        info = TicketInfo("" if self.number_by_callback else number, "received", self.deadline,
                          fields.get("request_type"))
        self.known[number] = info
        return info

    def mark_incomplete(self, call_id: str, reason: str) -> None:
        self.incomplete[call_id] = reason

    def update(self, number: str, fields: dict[str, Any]) -> TicketInfo:
        if number not in self.known:
            raise TicketNotFound(number)
        self.updates.append((number, dict(fields)))
        return self.known[number]

    def find(self, number: str) -> TicketInfo | None:
        return self.known.get(number)

    def open_tickets(self, caller: str) -> list[TicketInfo]:
        return self.open_by_caller.get(caller, [])

    def kb_search(self, text: str, language: str) -> str | None:
        return next((answer for keyword, answer in self.kb.items() if keyword in text), None)

    def unit_for(self, topic: str) -> str | None:
        return self.units.get(topic)

    def answer_by_unit(self, number: str, unit: str, note: str) -> TicketInfo:
        return self._settle(number, "answered", unit, note, self.known.get(number, TicketInfo(number, "")).deadline)

    def transfer_to_unit(self, number: str, unit: str, note: str) -> TicketInfo:
        return self._settle(number, "dispatched", unit, note, self.unit_deadline)

    def _settle(self, number: str, status: str, unit: str, note: str, deadline: datetime | None) -> TicketInfo:
        if number not in self.known:
            raise TicketNotFound(number)
        self.settled.append((number, status, unit, note))
        info = TicketInfo(number, status, deadline, self.known[number].request_type)
        self.known[number] = info
        return info


@dataclass
class FakeSwitchboard:
    """Transfers and three-way calls as scripted: `reachable` False makes nobody accept; `outcome` is what
    a reachable three-way call ends with; seats are on duty for the units in `on_duty` (None: every unit).
    Each conference is kept as (unit, the announcement in `seat_language`, hold, escape digit, ticket)."""

    reachable: bool = True
    outcome: str = "joined"
    on_duty: set[str] | None = None
    seat_language: str = "zh"
    hang_up_caller: bool = False  # the caller hangs up while the seats ring
    transfers: list[str] = field(default_factory=list)
    conferences: list[tuple[str, Any]] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)

    def transfer(self, call: ScriptedCall, number: str) -> bool:
        self.transfers.append(number)
        return self.reachable

    def seats_on_duty(self, unit: str) -> bool:
        return self.on_duty is None or unit in self.on_duty

    def three_way(self, call: ScriptedCall, unit: str, announcement: Any, *, hold: Any = None,
                  escape_digit: str | None = None, ticket: str | None = None) -> ThreeWayResult:
        self.conferences.append((unit, announcement(self.seat_language)))
        self.details.append({"hold": hold, "escape_digit": escape_digit, "ticket": ticket})
        if self.hang_up_caller:
            call.hung_up = True
            raise CallEnded()
        if not self.reachable:
            return ThreeWayResult("nobody_accepted", conference_id="conf-1")
        return ThreeWayResult(self.outcome, seat="1002" if self.outcome == "joined" else None,
                              conference_id="conf-1")


@dataclass
class FakeRecordings:
    saved: list[tuple[str, str, str | None]] = field(default_factory=list)

    def save(self, call_id: str, label: str, pcm: bytes) -> str:
        self.saved.append((call_id, label, heard_text(pcm)))
        return f"rec/{call_id}/{label}-{len(self.saved)}.wav"


@dataclass
class FakeCalendar:
    holidays: set[date] = field(default_factory=set)

    def is_working_day(self, d: date) -> bool:
        return d.weekday() < 5 and d not in self.holidays


class FakePrompts:
    """Prompts as "language:text"; remembers which were spoken as variable (call data, never cached) and
    which were started ahead."""

    def __init__(self) -> None:
        self.variable_texts: list[str] = []
        self.prefetched: list[str] = []

    def text(self, text: str, language: str) -> str:
        return f"{language}:{text}"

    def variable(self, text: str, language: str) -> str:
        self.variable_texts.append(f"{language}:{text}")
        return f"{language}:{text}"

    def prefetch(self, text: str, language: str) -> Future[str]:
        self.prefetched.append(f"{language}:{text}")
        started: Future[str] = Future()
        started.set_result(self.variable(text, language))
        return started

    def recorded(self, path: Path) -> str:
        return f"wav:{path.name}"


# -- building and running small flows -------------------------------------------------------------

HEADER = """\
languages: [zh]
start: {start}
operator: {{digit: "0", node: operator}}
on_failure: operator
vars: {{operator_number: "8000"}}
draft: {{request: content, name: caller_name, callback: phone, request_type: request_type, level: level}}
nodes:
  operator:
    kind: transfer
    prompt: {{zh: 正在为您转接人工}}
    number: "{{operator_number}}"
"""


def write_flow(directory: Path, nodes: str, *, start: str = "start", name: str = "main",
               header: str = HEADER) -> Path:
    """A flow file: the standard header (operator on 0 and on failure) plus `nodes` (indented 2)."""
    import textwrap

    path = directory / f"{name}.yaml"
    path.write_text(header.format(start=start) + textwrap.indent(textwrap.dedent(nodes), "  "), encoding="utf-8")
    return path


@dataclass
class Harness:
    speech: FakeSpeech = field(default_factory=FakeSpeech)
    tickets: FakeTickets = field(default_factory=FakeTickets)
    switchboard: FakeSwitchboard = field(default_factory=FakeSwitchboard)
    recordings: FakeRecordings = field(default_factory=FakeRecordings)
    calendar: FakeCalendar = field(default_factory=FakeCalendar)
    prompts: FakePrompts = field(default_factory=FakePrompts)
    now: datetime = datetime(2026, 12, 1, 10, 0)  # a Tuesday morning
    observer: Any = None  # a callflows.ports.CallObserver, or None for the default (nobody watching)

    def run(self, path_or_bundle: Any, call: ScriptedCall, **initial_vars: Any):
        from callflows.bundle import load_bundle
        from callflows.interpreter import CallServices, FlowRunner

        bundle = load_bundle(path_or_bundle) if isinstance(path_or_bundle, Path) else path_or_bundle
        services = CallServices(self.speech, self.tickets, self.switchboard, self.recordings, self.prompts,
                                self.calendar, clock=lambda: self.now)
        if self.observer is not None:
            services.observer = self.observer
        return FlowRunner(bundle, call, services, initial_vars=initial_vars).run()
