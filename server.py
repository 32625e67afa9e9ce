"""Composition root: reads the configuration, wires the packages together and runs them until Ctrl-C.

One node on its embedded defaults (`make run`): Kamailio on loopback started from deploy/kamailio, the IVR
registered to it as 12345, the ticket database in a SQLite file, the reminder scheduler, and the HTTP API
(tickets, health, calls) on localhost. Several nodes: point [server] database_url at PostgreSQL, set
redis_url so one node runs each scheduled job, and turn off start_local_sip_server.

The call application is chosen by [callflows] flow: `hotline12345` (the 12345 flow of callflows/flows with
speech recognition, tickets, recordings, transfers; see `hotline_application`) or `demo` (ivr's press-1/2
demo, no speech models needed).

The configuration is one INI file: `sip.conf` when present, else the documented `sip.conf.example`.
"""
from __future__ import annotations

import argparse
import configparser
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import redis
import uvicorn
from fastapi import FastAPI, Query
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import asr
from callflows.adapters.calendar_adapter import DatabaseCalendar
from callflows.adapters.recordings_adapter import WavRecordings
from callflows.adapters.speech_adapter import VoskSpeech
from callflows.adapters.switchboard_adapter import IvrSwitchboard
from callflows.adapters.tickets_adapter import DatabaseTickets
from callflows.handler import FlowCallHandler
from callflows.interpreter import CallServices
from callflows.issues import FlowError
from callflows.prompts import PromptLibrary
from callflows.registry import FlowRegistry
from callflows.tts import PromptSynthesizer
from ivr.config import IvrSettings, SettingsError, load_settings
from ivr.demo_flow import DemoFlow
from ivr.local_sip_server import LocalSipServer
from ivr.node import CallRecord, IvrNode
from ivr.session import CallEnded, CallSession
from recordings.wav_writer import record_caller
from tickets import db
from tickets.api import Operator, TicketsContext, install
from tickets.auth import issue_token
from tickets.locks import JobLock, LocalJobLock, RedisJobLock
from tickets.scheduler import Scheduler
from tickets.classify import Classifier
from tickets.models import Ticket
from tickets import service
from tickets.service import TicketRules, set_holiday_override
from tickets.settings import SettingsError as TicketSettingsError
from tickets.settings import load_ticket_settings

log = logging.getLogger("server")
ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ServerSettings:
    """The [server] section: everything beside telephony ([sip], read by ivr.config)."""

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    start_local_sip_server: bool = True
    database_url: str = db.DEFAULT_URL
    redis_url: str = ""  # empty: one node, in-process job locks
    recordings_dir: str = "var/recordings"
    prompt_cache_dir: str = "var/prompts"
    admin_token: str = ""  # stored hashed at start so a fresh install can log in to the API
    scheduler_interval_seconds: float = 30.0


DEMO_FLOW = "demo"


@dataclass(frozen=True)
class CallflowSettings:
    """The [callflows] section: which call application answers, and the numbers and files it needs."""

    flow: str = "hotline12345"  # a flow file <flows_dir>/<flow>.yaml, or "demo" for ivr's demo menu
    operator_seat: str = "1003"  # SIP number of the human operator seat (0, or a second failure)
    police_number: str = "110"  # SIP number of the 110 desk (9 during the emergency guidance)
    flows_dir: str = "callflows/flows"
    models_dir: str = "var/models"  # Vosk models, one folder per language (Korean is also packaged)
    # Free-speech streams this node's recognisers decode in real time at once (0: asr's default per core);
    # callers beyond it are served on keys. Measure with benchmarks/bench_asr.py.
    speech_capacity: float = 0.0


def default_config_path() -> Path:
    local = ROOT / "sip.conf"
    return local if local.is_file() else ROOT / "sip.conf.example"


def load_server_settings(path: Path) -> ServerSettings:
    return _load_section(path, "server", ServerSettings)


def load_callflow_settings(path: Path) -> CallflowSettings:
    """[callflows], checked: numbers are digits and the flow file exists, so a typo stops start-up."""
    settings = _load_section(path, "callflows", CallflowSettings)
    for key in ("operator_seat", "police_number"):
        value = getattr(settings, key)
        if not value.isdigit():
            raise SettingsError(f"{path}: [callflows] {key} must be a SIP number (digits), got {value!r}")
    if settings.flow != DEMO_FLOW:
        flow_file = ROOT / settings.flows_dir / f"{settings.flow}.yaml"
        if not flow_file.is_file():
            raise SettingsError(f"{path}: [callflows] flow {settings.flow!r}: no flow file {flow_file} "
                                f"(expected {DEMO_FLOW!r} or the name of a .yaml file in flows_dir)")
    return settings


def _load_section(path: Path, name: str, settings_class: type[Any]) -> Any:
    """One INI section into the frozen dataclass `settings_class`; unknown keys and bad values are named."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    if not parser.has_section(name):
        return settings_class()
    section = parser[name]
    types = {f.name: f.type for f in fields(settings_class)}
    unknown = set(section) - set(types)
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) in [{name}]: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key in section:
        try:
            if types[key] == "bool":
                values[key] = section.getboolean(key)
            elif types[key] == "int":
                values[key] = section.getint(key)
            elif types[key] == "float":
                values[key] = section.getfloat(key)
            else:
                values[key] = section[key].strip()
        except ValueError:
            raise SettingsError(f"{path}: [{name}] {key} must be a {types[key]}, got {section[key]!r}") from None
    return settings_class(**values)


def calls_api(app: FastAPI, node: IvrNode, speech_load: Callable[[], dict[str, Any]] | None = None) -> None:
    """GET /api/health (open, for load balancers and monitoring) and GET /api/calls (operators only:
    caller numbers are personal data). `speech_load()` adds the recognisers' load (asr.PoolMetrics)."""

    @app.get("/api/health", tags=["calls"])
    def health() -> dict[str, Any]:
        state = node.health().to_dict()
        state["status"] = "ok" if state["registration"] == "registered" else "degraded"
        if speech_load is not None:
            state["speech"] = speech_load()
        return state

    @app.get("/api/calls", tags=["calls"])
    def calls(principal: Operator,
              state: Annotated[str | None, Query(pattern="^(active|ended)$")] = None,
              caller: str | None = None,
              direction: Annotated[str | None, Query(pattern="^(inbound|outbound)$")] = None,
              since: datetime | None = None, until: datetime | None = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """Calls in progress and recent detail records (newest first), filtered."""
        active = node.active_calls() if state != "ended" else []
        ended = list(reversed(node.recent_calls())) if state != "active" else []

        def wanted(record: CallRecord) -> bool:
            started = record.started_at
            return ((caller is None or record.caller == caller)
                    and (direction is None or record.direction == direction)
                    and (since is None or (started is not None and started >= since))
                    and (until is None or (started is not None and started < until)))

        return {"active": [r.to_dict() for r in active if wanted(r)],
                "ended": [r.to_dict() for r in ended if wanted(r)][:limit]}


def recorded(application: Callable[[CallSession], None], recordings_dir: Path) -> Callable[[CallSession], None]:
    """Wrap a call application so the caller's audio is recorded for the whole call."""

    def on_call(session: CallSession) -> None:
        record_caller(session, recordings_dir)
        application(session)

    return on_call


class TranscriptLinker:
    """After each call: the caller's whole recording is transcribed in the background (asr.TranscriptJobs,
    one at a time) and the transcript file is linked to the call's ticket, found by its call id. Calls
    without a ticket (status checks, transfers before the request) are not transcribed."""

    def __init__(self, session_factory: sessionmaker[Session], jobs: asr.TranscriptJobs) -> None:
        self.session_factory = session_factory
        self.jobs = jobs

    def on_record(self, record: CallRecord) -> None:
        log.info("call ended: %s", record.to_dict())
        if record.direction != "inbound" or not record.recording_path:
            return
        with self.session_factory() as session, session.begin():
            ticket = session.scalar(select(Ticket).where(Ticket.call_id == record.call_id))
            language = ticket.language if ticket is not None else None
            number = ticket.number if ticket is not None else None
        if number is None:
            return
        available = self.jobs.registry.available_languages()
        if language not in available:
            log.info("call %s (ticket %s): no transcript, no speech model for language %r (have: %s)",
                     record.call_id, number, language, ", ".join(available) or "none")
            return
        self.jobs.submit(record.recording_path, language=language,
                         on_done=lambda transcript, path: self._link(record.call_id, path))

    def _link(self, call_id: str, transcript: Path) -> None:
        with self.session_factory() as session, session.begin():
            ticket = session.scalar(select(Ticket).where(Ticket.call_id == call_id))
            if ticket is not None:
                service.update_fields(session, ticket, {"transcript_ref": str(transcript)}, actor="asr")
                log.info("call %s: transcript %s linked to ticket %s", call_id, transcript, ticket.number)


def hotline_application(sip: IvrSettings, settings: ServerSettings, callflow_settings: CallflowSettings,
                        session_factory: sessionmaker[Session], rules: TicketRules
                        ) -> tuple[IvrNode, Callable[[], None], asr.RecognitionPool]:
    """The IVR node answering with a call flow (callflows) over the real ports: Vosk speech, the ticket
    database, WAV recordings, transfers through the node itself, the holiday calendar. Returns the node,
    what to call at shutdown and the recognition pool (its load is reported in /api/health). Raises
    FlowError for a broken flow file."""
    recordings_dir = ROOT / settings.recordings_dir
    asr_settings = asr.AsrSettings(models_dir=ROOT / callflow_settings.models_dir)
    if callflow_settings.speech_capacity > 0:
        asr_settings = replace(asr_settings, realtime_streams=callflow_settings.speech_capacity)
    asr_registry = asr.configure(asr_settings)
    pool = asr.RecognitionPool(asr_registry)
    languages = asr_registry.available_languages()
    pool.preload(languages)
    log.info("speech models loaded: %s", ", ".join(languages) or "none (keypad and recorded messages only)")

    flows = FlowRegistry(ROOT / callflow_settings.flows_dir)
    bundle = flows.get(callflow_settings.flow)
    prompts = PromptLibrary(PromptSynthesizer(ROOT / settings.prompt_cache_dir))
    warmed = sum(prompts.prewarm(flow) for flow in bundle.flows.values())
    log.info("flow %s: %d fixed prompts synthesised or found in the cache", callflow_settings.flow, warmed)

    tickets_port = DatabaseTickets(session_factory, rules)
    transcripts = TranscriptLinker(session_factory, asr.TranscriptJobs(asr_registry))
    handler: FlowCallHandler | None = None  # needs the node (switchboard), which needs on_call first

    def answer(session: CallSession) -> None:
        assert handler is not None, "calls are answered only after node.start()"
        handler(session)

    node = IvrNode.from_settings(sip, on_call=recorded(answer, recordings_dir), on_record=transcripts.on_record)
    services = CallServices(speech=VoskSpeech(pool), tickets=tickets_port,
                            switchboard=IvrSwitchboard(node, seats_for=tickets_port.seat_numbers),
                            recordings=WavRecordings(recordings_dir), prompts=prompts,
                            calendar=DatabaseCalendar(session_factory))
    handler = FlowCallHandler(flows, callflow_settings.flow, services,
                              initial_vars={"operator_number": callflow_settings.operator_seat,
                                            "police_number": callflow_settings.police_number},
                              call_ended=(CallEnded,))

    def shutdown() -> None:
        transcripts.jobs.shutdown()
        pool.shutdown()

    return node, shutdown, pool


def demo_application(sip: IvrSettings, settings: ServerSettings) -> tuple[IvrNode, Callable[[], None]]:
    """ivr's demo menu (press 1 or 2), recorded; needs no speech models."""
    flow = DemoFlow(ROOT / settings.prompt_cache_dir)
    flow.prepare()
    node = IvrNode.from_settings(sip, on_call=recorded(flow.on_call, ROOT / settings.recordings_dir),
                                 on_record=lambda record: log.info("call ended: %s", record.to_dict()))
    return node, lambda: None


def job_lock(redis_url: str) -> JobLock:
    if not redis_url:
        return LocalJobLock()
    return RedisJobLock(redis.Redis.from_url(redis_url))


def local_extensions(sip: IvrSettings) -> dict[str, str]:
    return {sip.extension: sip.password, **sip.test_extensions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None, help="INI file (default: sip.conf, else sip.conf.example)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config_path = args.config or default_config_path()
    try:
        sip = load_settings(config_path)
        settings = load_server_settings(config_path)
        ticket_settings = load_ticket_settings(config_path)
        callflow_settings = load_callflow_settings(config_path)
    except (SettingsError, TicketSettingsError) as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    log.info("configuration from %s", config_path)

    session_factory = db.open_database(settings.database_url)
    with session_factory.begin() as session:
        if settings.admin_token:
            issue_token(session, "bootstrap admin", "admin", token=settings.admin_token)
        for day, is_working_day in ticket_settings.calendar_overrides.items():  # [tickets] holidays/workdays
            set_holiday_override(session, day, is_working_day, "from the configuration file")
    rules = TicketRules(Classifier.from_file(ticket_settings.classification_rules), ticket_settings.deadlines)
    scheduler = Scheduler(session_factory, job_lock(settings.redis_url),
                          interval_seconds=settings.scheduler_interval_seconds)

    speech_pool = None
    if callflow_settings.flow == DEMO_FLOW:
        node, stop_application = demo_application(sip, settings)
    else:
        try:
            node, stop_application, speech_pool = hotline_application(sip, settings, callflow_settings,
                                                                      session_factory, rules)
        except FlowError as error:
            print(f"configuration error: [callflows] flow {callflow_settings.flow!r}:\n{error}", file=sys.stderr)
            return 2
        except asr.ModelIntegrityError as error:
            print(f"configuration error: [callflows] models_dir: {error}", file=sys.stderr)
            return 2

    sip_server = None
    if settings.start_local_sip_server:
        sip_server = LocalSipServer(local_extensions(sip), host=sip.registrar_host, port=sip.registrar_port)
        sip_server.start()
        log.info("Kamailio on %s:%d (log %s)", sip.registrar_host, sip.registrar_port, sip_server.log_path)
    app = FastAPI(title="12345 hotline", version="1")
    install(app, TicketsContext(session_factory, rules))
    calls_api(app, node, (lambda: speech_pool.metrics().to_dict()) if speech_pool is not None else None)

    # uvicorn shuts down on SIGINT/SIGTERM and then re-raises the signal with the previous handler: make
    # both a KeyboardInterrupt so the IVR unregisters and Kamailio stops in `finally`.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        node.start()
        log.info("IVR registered as %s at %s:%d", sip.extension, sip.registrar_host, sip.registrar_port)
        scheduler.start()
        uvicorn.Server(uvicorn.Config(app, host=settings.http_host, port=settings.http_port,
                                      log_level="info")).run()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        scheduler.stop()
        node.stop()
        stop_application()
        if sip_server is not None:
            sip_server.stop()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
