"""Writes journaled calls to the ticket database once it is back, exactly once.

The replayer takes the calls that ended and are not yet known to be in the database, oldest first, and hands
each to a `TicketSink` (the composition's adapter over the ticket service), which creates or completes the
call's ticket keyed by our call id. Only then is the call marked written in the journal. A crash between
the two repeats the write on the next round, and the sink finds the ticket by its unique call id and adds
nothing. After the calls, transcripts that were made while their ticket was not yet in the database are
linked to it.

`BackgroundTasks` runs the replayer (and the reservation top-up and the journal's pruning) on one thread
in the node; `python -m journal replay` runs one round from the command line.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from journal.records import JournaledCall
from journal.store import JOB_TRANSCRIBED, Journal

log = logging.getLogger(__name__)
REPLAYED_BY = "replay"


class TicketSink(Protocol):
    """The ticket database, as the replayer needs it."""

    def write_call(self, call: JournaledCall) -> str:
        """Create or complete the call's ticket from what the journal holds (idempotent by call id: a call
        already written changes nothing). Returns the ticket's number, '' when the call left nothing to
        write (no request was given). Raises when the database cannot be reached."""
        ...

    def link_transcript(self, call_id: str, transcript: str) -> bool:
        """Store the transcript's reference on the call's ticket; False when the call has no ticket."""
        ...

    def available(self) -> bool:
        """Whether the database answers now (asked after a failed write: away, or this call's problem?)."""
        ...


@dataclass
class ReplayReport:
    written: list[tuple[str, str]] = field(default_factory=list)  # (call id, ticket number) written now
    nothing_to_write: list[str] = field(default_factory=list)     # ended calls that left no request
    failed: dict[str, str] = field(default_factory=dict)          # call id -> error, database reachable
    transcripts_linked: list[str] = field(default_factory=list)
    error: str = ""                                               # why the round stopped early

    def __str__(self) -> str:
        tickets = ", ".join(f"{number} (call {call_id})" for call_id, number in self.written) or "none"
        text = (f"written: {tickets}; calls without a request: {len(self.nothing_to_write)}; "
                f"transcripts linked: {len(self.transcripts_linked)}")
        text += "".join(f"; call {call_id} failed: {error}" for call_id, error in self.failed.items())
        return text + (f"; stopped: {self.error}" if self.error else "")


class Replayer:
    def __init__(self, journal: Journal, sink: TicketSink) -> None:
        self.journal = journal
        self.sink = sink
        self._round = threading.Lock()  # the node's thread and a CLI round in the same process never overlap

    def replay_once(self) -> ReplayReport:
        """Write every journaled call the database lacks, then link waiting transcripts.

        A failure while the database does not answer ends the round (it is away; the next round tries
        again). A failure while it answers is this call's own (logged, reported, tried again next round):
        it must not hold back the calls after it."""
        report = ReplayReport()
        with self._round:
            try:
                self._write_calls(report)
                self._link_transcripts(report)
            except Exception as error:  # the database went away again: keep everything for the next round
                report.error = f"{type(error).__name__}: {error}"
                log.warning("journal replay stopped: %s", report.error)
        if report.written or report.transcripts_linked or report.failed:
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

    def _link_transcripts(self, report: ReplayReport) -> None:
        for job in self.journal.transcript_jobs(JOB_TRANSCRIBED):
            call = self.journal.call(job.call_id)
            if call is None or call.written_at is None or job.transcript is None:
                continue  # its ticket is not in the database yet
            if self.sink.link_transcript(job.call_id, job.transcript):
                self.journal.transcript_linked(job.call_id)
                report.transcripts_linked.append(job.call_id)
            else:
                self.journal.transcript_failed(job.call_id, "the call has no ticket to link to", give_up_after=1)


class BackgroundTasks:
    """Runs `tasks` in turn every `interval` seconds on one daemon thread until `stop`. A task that raises
    is logged and tried again next round; `stop` returns as soon as the running task finishes."""

    def __init__(self, tasks: Sequence[Callable[[], object]], *, interval: float, name: str = "journal") -> None:
        self.tasks = list(tasks)
        self.interval = interval
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
            for task in self.tasks:
                if self._stop.is_set():
                    return
                try:
                    task()
                except Exception:
                    log.exception("journal task %s failed; retrying in %.0f s",
                                  getattr(task, "__qualname__", task), self.interval)
            self._stop.wait(self.interval)
