"""Writes journaled calls to the ticket database once it is back, exactly once.

The replayer takes the calls that ended and are not yet known to be in the database, oldest first, and hands
each to a `TicketSink` (the composition's adapter over the ticket service), which creates or completes the
call's ticket keyed by our call id. Only then is the call marked written in the journal. A crash between
the two repeats the write on the next round, and the sink finds the ticket by its unique call id and adds
nothing. After the calls, references made after a call (its whole recording, its transcript) that waited
for the call's ticket are set on it.

`BackgroundTasks` runs the replayer (and the reservation top-up and the journal's pruning) on one thread
in the node; `python -m journal replay` runs one round from the command line.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from journal.records import JournaledCall
from journal.store import NO_TICKET, Journal

log = logging.getLogger(__name__)
REPLAYED_BY = "replay"


class TicketSink(Protocol):
    """The ticket database, as the replayer needs it."""

    def write_call(self, call: JournaledCall) -> str:
        """Create or complete the call's ticket from what the journal holds (idempotent by call id: a call
        already written changes nothing). Returns the ticket's number, '' when the call left nothing to
        write (no request was given). Raises when the database cannot be reached."""
        ...

    def attach(self, call_id: str, fields: Mapping[str, Any], actor: str) -> bool:
        """Set `fields` (references made after the call) on the call's ticket; False when it has none."""
        ...

    def available(self) -> bool:
        """Whether the database answers now (asked after a failed write: away, or this call's problem?)."""
        ...


@dataclass
class ReplayReport:
    written: list[tuple[str, str]] = field(default_factory=list)  # (call id, ticket number) written now
    nothing_to_write: list[str] = field(default_factory=list)     # ended calls that left no request
    failed: dict[str, str] = field(default_factory=dict)          # call id -> error, database reachable
    attached: list[str] = field(default_factory=list)           # call ids whose references were set
    error: str = ""                                               # why the round stopped early

    def __str__(self) -> str:
        tickets = ", ".join(f"{number} (call {call_id})" for call_id, number in self.written) or "none"
        text = (f"written: {tickets}; calls without a request: {len(self.nothing_to_write)}; "
                f"references attached: {len(self.attached)}")
        text += "".join(f"; call {call_id} failed: {error}" for call_id, error in self.failed.items())
        return text + (f"; stopped: {self.error}" if self.error else "")


class Replayer:
    def __init__(self, journal: Journal, sink: TicketSink) -> None:
        self.journal = journal
        self.sink = sink
        self._round = threading.Lock()  # the node's thread and a CLI round in the same process never overlap
        self._stopped_by = ""  # the error that stopped the last round, to log an outage once, not every round

    def replay_once(self) -> ReplayReport:
        """Write every journaled call the database lacks, then set the references that waited for their tickets.

        A failure while the database does not answer ends the round (it is away; the next round tries
        again). A failure while it answers is this call's own (logged, reported, tried again next round):
        it must not hold back the calls after it."""
        report = ReplayReport()
        with self._round:
            try:
                self._write_calls(report)
                self._attach(report)
            except Exception as error:  # the database went away again: keep everything for the next round
                report.error = f"{type(error).__name__}: {error}"
            if report.error and not self._stopped_by:
                log.warning("journal replay stopped, calls stay in the journal: %s", report.error)
            elif self._stopped_by and not report.error:
                log.info("journal replay works again")
            self._stopped_by = report.error
        if report.written or report.attached or report.failed:
            log.info("journal replay: %s", report)
        return report

    def _write_calls(self, report: ReplayReport) -> None:
        for call in self.journal.calls_to_write():
            try:
                number = self.sink.write_call(call)
            except Exception as error:
                if not self.sink.available():
                    raise
                log.exception("journal replay: call %s could not be written", call.call_id)
                report.failed[call.call_id] = f"{type(error).__name__}: {error}"
                continue
            self.journal.written(call.call_id, number, REPLAYED_BY)
            if number:
                report.written.append((call.call_id, number))
            else:
                report.nothing_to_write.append(call.call_id)

    def _attach(self, report: ReplayReport) -> None:
        for attachment in self.journal.attachments_to_write():
            call = self.journal.call(attachment.call_id)
            if call is None or call.written_at is None:
                continue  # its ticket is not in the database yet
            if call.number and self.sink.attach(attachment.call_id, attachment.fields, attachment.actor):
                self.journal.attachment_done(attachment.id)
                report.attached.append(attachment.call_id)
            else:
                log.error("journal replay: call %s has no ticket for %s", attachment.call_id, sorted(attachment.fields))
                self.journal.attachment_done(attachment.id, NO_TICKET)


class BackgroundTasks:
    """Runs `tasks` in turn every `interval` seconds on one daemon thread until `stop`. A task that raises
    is logged and tried again next round; `stop` returns as soon as the running task finishes."""

    def __init__(self, tasks: Sequence[Callable[[], object]], *, interval: float, name: str = "journal") -> None:
        self.tasks = list(tasks)
        self.interval = interval
        self._failing: set[int] = set()  # tasks whose last run failed: logged once until they work again
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for index, task in enumerate(self.tasks):
                if self._stop.is_set():
                    return
                name = getattr(task, "__qualname__", repr(task))
                try:
                    task()
                except Exception as error:
                    if index not in self._failing:  # once per outage, not every few seconds
                        log.warning("journal task %s failed, retrying every %.0f s: %s: %s", name, self.interval,
                                    type(error).__name__, error)
                        self._failing.add(index)
                    continue
                if index in self._failing:
                    self._failing.discard(index)
                    log.info("journal task %s works again", name)
            self._stop.wait(self.interval)
