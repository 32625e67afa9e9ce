"""Three-way calls on the node: three_way's desk wired to the member-unit directory, the holiday calendar and
the recordings folder; and what happens once a conference is over: it is stored with its ticket
(tickets.three_way_calls), each leg's recording is transcribed in the background (asr.TranscriptJobs) and
the legs' transcripts are merged into one speaker-labelled transcript linked to the stored call.

The seats' announcement and the hold message of a conference an operator starts come from the 12345 flow's
three_way node, so the seat hears the same words whoever started the call.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

import asr
from app.adapters.calendar_adapter import DatabaseCalendar
from app.adapters.seat_directory import DatabaseSeatDirectory
from callflows.bundle import FlowBundle
from callflows.model import ThreeWayNode
from callflows.prompts import PromptLibrary
from callflows.templates import render
from ivr.node import IvrNode
from ivr.session import CallEnded
from pcm import to_pcm
from recordings.wav_writer import WavRecording, recording_path
from three_way.conference import MIXED, ConferenceEvent, ConferenceView, LegView
from three_way.desk import Case, Outcome, ThreeWayDesk
from three_way.ports import RecordingFactory
from tickets import service, three_way_calls

log = logging.getLogger(__name__)

ACTOR = "three_way"


def build_desk(node: IvrNode, session_factory: sessionmaker[Session], recordings_dir: Path,
               transcripts: asr.TranscriptJobs | None, *, default_language: str = "zh",
               ring_timeout: float = 20.0) -> ThreeWayDesk:
    """The node's three-way desk: seats from the directory, working days from the calendar (with the
    administrator's overrides), recordings under `recordings_dir`, finished calls stored and transcribed."""
    return ThreeWayDesk(node, node.media_clock, DatabaseSeatDirectory(session_factory, default_language),
                        DatabaseCalendar(session_factory), call_ended=(CallEnded,),
                        recordings=conference_recordings(recordings_dir),
                        on_finished=ConferenceRecords(session_factory, transcripts, default_language),
                        ring_timeout=ring_timeout)


def conference_recordings(root: Path) -> Callable[[str], RecordingFactory]:
    """conference id -> label -> WAV file <root>/YYYY/MM/DD/HHMMSS-threeway-<id>-<label>.wav."""

    def for_conference(conference_id: str) -> RecordingFactory:
        started = datetime.now(timezone.utc)
        return lambda label: WavRecording(recording_path(root, f"threeway-{conference_id}-{label}", started))

    return for_conference


# ---- what the API and the stored record show

def leg_json(leg: LegView) -> dict[str, Any]:
    data = {"leg_id": leg.leg_id, "role": leg.role, "number": leg.number, "state": leg.state.value,
            "reason": leg.reason, "muted": leg.muted, "listen_only": leg.listen_only,
            "joined_at": iso(leg.joined_at), "left_at": iso(leg.left_at), "recording": leg.recording}
    data["frames"] = asdict(leg.stats) if leg.stats is not None else None
    return data


def event_json(event: ConferenceEvent) -> dict[str, Any]:
    return {"at": iso(event.at), "kind": event.kind, "leg_id": event.leg_id, "detail": event.detail}


def conference_json(view: ConferenceView, case: Case) -> dict[str, Any]:
    return {"id": view.conference_id, "state": view.state.value, "unit": case.unit, "ticket": case.ticket,
            "started_by": case.started_by, "started_at": iso(view.created_at), "ended_at": iso(view.ended_at),
            "outcome": view.end_reason, "legs": [leg_json(leg) for leg in view.legs],
            "events": [event_json(event) for event in view.events], "recordings": view.recordings,
            "transcript": None}


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# ---- after the end

class ConferenceRecords:
    """The desk's on_finished: store the call with its ticket, then transcribe each leg in the background
    and link the merged, speaker-labelled transcript. A database that is away is logged (the recordings
    stay on disk), never raised into the call."""

    def __init__(self, session_factory: sessionmaker[Session], transcripts: asr.TranscriptJobs | None,
                 default_language: str = "zh") -> None:
        self.session_factory = session_factory
        self.transcripts = transcripts
        self.default_language = default_language

    def __call__(self, view: ConferenceView, case: Case, outcome: Outcome) -> None:
        if not any(leg.joined_at for leg in view.legs):
            return  # nobody was ever connected (no seats, off duty): nothing happened worth a record
        try:
            with self.session_factory.begin() as session:
                three_way_calls.record_call(
                    session, conference_id=view.conference_id, ticket_number=case.ticket, unit_name=case.unit,
                    started_by=case.started_by, started_at=view.created_at, ended_at=view.ended_at,
                    outcome=outcome.reason.value, seat_number=outcome.seat.number if outcome.seat else None,
                    legs=[leg_json(leg) for leg in view.legs], events=[event_json(e) for e in view.events],
                    recordings=view.recordings, actor=ACTOR)
                language = self._ticket_language(session, case.ticket)
        except Exception:
            log.exception("three-way call %s could not be stored", view.conference_id)
            return
        if self.transcripts is not None and MIXED in view.recordings:
            seat_languages = {attempt.seat.number: attempt.seat.language for attempt in outcome.attempts}
            languages = {leg.leg_id: seat_languages.get(leg.number, language) if leg.role == "seat" else language
                         for leg in view.legs if leg.leg_id in view.recordings}
            SpeakerTranscript(self, view, case, languages).start()

    def _ticket_language(self, session: Session, number: str | None) -> str:
        if number:
            try:
                return service.get_by_number(session, number).language or self.default_language
            except service.TicketNotFound:
                pass
        return self.default_language

    def link(self, conference_id: str, path: Path) -> None:
        with self.session_factory.begin() as session:
            three_way_calls.link_transcript(session, conference_id, str(path))
        log.info("three-way call %s: speaker-labelled transcript %s", conference_id, path)


@dataclass
class _LegTranscript:
    leg_id: str
    role: str
    number: str
    language: str
    recording: str
    transcript: str | None = None
    note: str | None = None
    turns: tuple[dict[str, Any], ...] = ()


class SpeakerTranscript:
    """Each leg's recording transcribed in its party's language (legs without a model are noted), merged
    by time (the legs share the conference's timeline) into `<mixed recording>.transcript.json`."""

    def __init__(self, records: ConferenceRecords, view: ConferenceView, case: Case,
                 languages: Mapping[str, str]) -> None:
        self.records = records
        self.view = view
        self.case = case
        self.legs = [_LegTranscript(leg.leg_id, leg.role, leg.number, languages[leg.leg_id],
                                    view.recordings[leg.leg_id]) for leg in view.legs if leg.leg_id in languages]
        self._remaining = len(self.legs)
        self._lock = threading.Lock()

    def start(self) -> None:
        jobs = self.records.transcripts
        assert jobs is not None
        available = set(jobs.registry.available_languages())
        for leg in self.legs:
            if leg.language not in available:
                leg.note = f"no speech model for {leg.language!r}"
                self._done()
                continue
            jobs.submit(leg.recording, language=leg.language,
                        on_done=lambda transcript, path, leg=leg: self._transcribed(leg, transcript, path),
                        on_error=lambda recording, error, leg=leg: self._failed(leg, error))

    def _transcribed(self, leg: _LegTranscript, transcript: asr.Transcript, path: Path) -> None:
        leg.transcript = str(path)
        leg.turns = tuple({"speaker": leg.leg_id, "role": leg.role, "start": u.words[0].start,
                           "end": u.words[-1].end, "text": u.text, "confidence": round(u.confidence, 3)}
                          for u in transcript.utterances if u.text and u.words)
        self._done()

    def _failed(self, leg: _LegTranscript, error: Exception) -> None:
        leg.note = f"transcription failed: {error}"
        self._done()

    def _done(self) -> None:
        with self._lock:
            self._remaining -= 1
            if self._remaining:
                return
        turns = sorted((turn for leg in self.legs for turn in leg.turns), key=lambda turn: turn["start"])
        target = Path(self.view.recordings[MIXED]).with_suffix(".transcript.json")
        merged = {"conference_id": self.view.conference_id, "ticket": self.case.ticket, "unit": self.case.unit,
                  "legs": {leg.leg_id: {"role": leg.role, "number": leg.number, "language": leg.language,
                                        "recording": leg.recording, "transcript": leg.transcript,
                                        "note": leg.note} for leg in self.legs},
                  "turns": turns, "text": "\n".join(f"{t['speaker']}: {t['text']}" for t in turns)}
        staging = target.with_name(target.name + ".tmp")
        staging.write_text(json.dumps(merged, ensure_ascii=False, indent=1), encoding="utf-8")
        staging.replace(target)
        try:
            self.records.link(self.view.conference_id, target)
        except Exception:
            log.exception("three-way call %s: transcript %s written but not linked", self.view.conference_id,
                          target)


# ---- the words of an operator-started call

class CaseAnnouncements:
    """The announcement (per seat language) and hold message of the flow's three_way node, for a ticket."""

    def __init__(self, bundle: Callable[[], FlowBundle], prompts: PromptLibrary) -> None:
        self.bundle = bundle
        self.prompts = prompts

    def for_ticket(self, values: Mapping[str, Any]) -> tuple[Callable[[str], Path], bytes | None]:
        """(announcement(language), hold PCM) with the ticket's `values` (request_type, topic,
        ticket_number, unit, language) filling the flow's templates."""
        bundle = self.bundle()
        flow, node = next(((flow, node) for flow in bundle.flows.values() for node in flow.nodes.values()
                           if isinstance(node, ThreeWayNode)), (None, None))
        if flow is None or node is None:
            raise LookupError("the call flow has no three_way node to take the announcement from")
        labels = bundle.labels_for(flow)
        fallback = bundle.main.first_language

        def spoken(prompt: Any, language: str) -> Path:
            language = language if language in prompt.texts else fallback
            return self.prompts.text(render(prompt.texts[language], values, language, labels), language)

        hold = to_pcm(spoken(node.hold, str(values.get("language") or fallback))) if node.hold else None
        return (lambda language: spoken(node.announcement, language)), hold
