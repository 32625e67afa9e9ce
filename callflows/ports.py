"""What the interpreter needs from the rest of the system, as small Protocols (structural typing).

callflows never imports ivr, asr, tickets or tts: the composition (app/) passes objects that have these
methods (the ivr CallSession fits `Call` as it is; app/adapters wrap asr, tickets, recordings and ivr).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pydub


class CallEnded(Exception):
    """Raised by a `Call` when either side hung up. The real session raises ivr's own CallEnded; pass that
    class to the interpreter (`FlowRunner(call_ended=...)`)."""


class Call(Protocol):
    """The subset of ivr's CallSession the flows use (see CONTRACTS.md).

    `play` returns the digit that interrupted the prompt and leaves it queued, so the next
    `next_digit`/`collect_digits` still sees it (type-ahead)."""

    call_id: str
    caller: str

    def play(self, audio: str | Path | pydub.AudioSegment | bytes, *, barge_in: bool = True) -> str | None: ...

    def collect_digits(self, *, max_digits: int, first_digit_timeout: float = 5.0,
                       inter_digit_timeout: float = 3.0, terminator: str | None = "#") -> str: ...

    def read_frame(self, timeout: float = 1.0) -> bytes | None: ...

    def stream_frames(self, sink: Callable[[bytes, bool], None]) -> Callable[[], None]:
        """Hand every caller frame to `sink(frame, queued)` as it arrives (on the media thread: quick),
        starting with the frames queued since the last read (queued=True); returns what stops it."""
        ...

    def next_digit(self, timeout: float, *, until: Callable[[], bool] | None = None) -> str | None:
        """The oldest digit not yet taken; None after `timeout` s, or as soon as `until()` holds (checked
        whenever a frame was handed to a `stream_frames` sink, so a listener's end wakes the waiter)."""
        ...

    def hangup(self) -> None: ...


class HeardSpeech(Protocol):
    """What one answer turned out to be (asr.TurnResult fits)."""

    audio: bytes | None  # the utterance (8 kHz 16-bit PCM), None when the caller said nothing in time
    text: str | None     # free speech: the words ('' not understood); grammar: the phrase said, or None
    recognised: bool     # False: no recognition ran or it could not finish (keep the audio, transcribe later)


class Listening(Protocol):
    """One answer being listened to. The port finds where the speech starts and ends (once) and, when
    `recognising`, decodes it while the caller speaks. Frames come from `Call.stream_frames`."""

    recognising: bool

    def feed(self, frame: bytes, queued: bool = False) -> None: ...

    def silence(self, seconds: float) -> None:
        """No audio arrived for `seconds`: count it as quiet."""
        ...

    @property
    def finished(self) -> bool:
        """The utterance ended, or nobody spoke within the time-out, or it was cancelled."""
        ...

    def result(self) -> HeardSpeech:
        """After `finished`: the answer (waits briefly for the recogniser's last words)."""
        ...

    def cancel(self) -> None:
        """A key was pressed or the call ended: give the recogniser back (harmless when done)."""
        ...


class Speech(Protocol):
    """Listening to a caller's answers: endpointing always, recognition where a model and capacity exist."""

    def has_model(self, language: str) -> bool:
        """False where no model is installed: the flow then runs on keypad answers and recordings."""
        ...

    def listen(self, language: str, *, phrases: Sequence[str] | None = None, recognise: bool = True,
               timeout: float, max_length: float, end_silence: float,
               on_partial: Callable[[str], None] | None = None) -> Listening | None:
        """A listening for one answer: free speech, or one of `phrases` (a grammar). None when recognition
        was asked for and the node's recognisers are at capacity (serve the caller on keys instead); with
        `recognise=False` it only finds the utterance (recordings) and is never None."""
        ...


class Proposal(Protocol):
    """What the ticket rules propose for a request (tickets.classify.Proposal fits)."""

    level: int
    request_type: str | None
    topic: str | None
    police_transfer: str | None  # "at_once" (fire, gas) or "ask" (with the caller's consent): a matter for 110


@dataclass(frozen=True)
class TicketInfo:
    number: str
    status: str
    deadline: datetime | None = None
    request_type: str | None = None


class TicketNotFound(LookupError):
    """`Tickets.update` for a number that does not exist."""


class Tickets(Protocol):
    """The ticket service as the call sees it. Drafts are keyed by call id, so every method is idempotent
    per call, and every value is saved the moment it is collected."""

    def propose(self, text: str) -> Proposal: ...

    def save_draft(self, call_id: str, caller: str, fields: Mapping[str, Any]) -> None:
        """Create the call's draft if needed and merge `fields` into it (names: validator.DRAFT_FIELDS)."""
        ...

    def submit(self, call_id: str, caller: str, fields: Mapping[str, Any]) -> TicketInfo:
        """Merge `fields` into the draft and submit it (draft -> received); deadline from the level."""
        ...

    def mark_incomplete(self, call_id: str, reason: str) -> None:
        """The call left the flow before `submit`: keep the draft, flagged for an operator to complete."""
        ...

    def update(self, number: str, fields: Mapping[str, Any]) -> TicketInfo:
        """Raises TicketNotFound."""
        ...

    def find(self, number: str) -> TicketInfo | None: ...

    def open_tickets(self, caller: str) -> Sequence[TicketInfo]: ...

    def kb_search(self, text: str, language: str) -> str | None:
        """The knowledge-base answer to speak, in `language`, or None."""
        ...

    def unit_for(self, topic: str) -> str | None:
        """The member unit responsible for `topic` (None when no unit lists it)."""
        ...

    def answer_by_unit(self, number: str, unit: str, note: str) -> TicketInfo:
        """The ticket was answered on the spot by `unit` (答复, closed). Raises TicketNotFound."""
        ...

    def transfer_to_unit(self, number: str, unit: str, note: str) -> TicketInfo:
        """转办 to `unit`; the info's deadline is the unit's reply deadline. Raises TicketNotFound."""
        ...


@dataclass(frozen=True)
class ThreeWayResult:
    """How a three-way call went for the caller. outcome: joined (a seat took part and has left), no_seats,
    off_duty, nobody_accepted, escaped (the caller pressed the escape digit while waiting)."""

    outcome: str
    seat: str | None = None  # the number of the seat that took part
    conference_id: str | None = None

    @property
    def joined(self) -> bool:
        return self.outcome == "joined"


Audio = str | Path | bytes


class Switchboard(Protocol):
    """Leaving the IVR: a blind transfer, or a three-way call with a member unit's remote seat."""

    def transfer(self, call: Call, number: str) -> bool:
        """True when the call was handed over (the IVR's part of the call is then over)."""
        ...

    def seats_on_duty(self, unit: str) -> bool:
        """`unit` has remote seats that may be rung now (its working hours, on a working day)."""
        ...

    def three_way(self, call: Call, unit: str, announcement: Callable[[str], Audio], *, hold: Audio | None = None,
                  escape_digit: str | None = None, ticket: str | None = None) -> ThreeWayResult:
        """Ring `unit`'s seats in order, each hearing `announcement(its language)`, while the caller hears
        `hold`; bridge the seat that accepts with the caller (the IVR listens and records). Returns when it
        is over for the caller, whose call continues. Raises the call-ended exception when the caller hung
        up before a seat joined. `ticket` is the case's ticket number (recordings are linked to it)."""
        ...


class Recordings(Protocol):
    def save(self, call_id: str, label: str, pcm: bytes) -> str:
        """Store one utterance or message; returns a reference kept with the ticket."""
        ...


class WorkingDays(Protocol):
    """tickets.calendar.WorkingCalendar fits: statutory holidays and make-up working days."""

    def is_working_day(self, d: date) -> bool: ...


class PromptAudio(Protocol):
    """Turns a prompt into something `Call.play` accepts (callflows.prompts.PromptLibrary)."""

    def text(self, text: str, language: str) -> str | Path | bytes:
        """A prompt without call data (may be cached and shared by every call)."""
        ...

    def variable(self, text: str, language: str) -> str | Path | bytes:
        """A prompt with a caller's data in it (their number, their ticket number): for this call only,
        never cached."""
        ...

    def prefetch(self, text: str, language: str) -> Future[Any]:
        """`variable` started off the call's thread, for a prompt the call is about to play."""
        ...

    def recorded(self, path: Path) -> str | Path | bytes: ...


class CallObserver(Protocol):
    """Whoever watches calls as they happen (the operator console's live view, a node's live-call store):
    told which node a call enters and what the caller is saying. Called on the call's own thread, so an
    implementation must be quick; one that raises is logged and ignored, never costs the caller the call."""

    def node_entered(self, call_id: str, flow: str, node: str) -> None:
        """The call entered `node` of `flow` (sub-flows are named by their own flow)."""
        ...

    def partial_transcript(self, call_id: str, text: str) -> None:
        """What the recogniser has heard so far of the utterance in progress (replaced by the next one)."""
        ...

    def final_transcript(self, call_id: str, text: str) -> None:
        """The recogniser's text of a finished utterance (a free-speech answer, or a menu phrase said)."""
        ...


class NoCallObserver:
    """The default CallObserver: nobody is watching."""

    def node_entered(self, call_id: str, flow: str, node: str) -> None:
        pass

    def partial_transcript(self, call_id: str, text: str) -> None:
        pass

    def final_transcript(self, call_id: str, text: str) -> None:
        pass
