"""The call applications on an IVR node, wired to the real parts: the 12345 flow (callflows over the
adapters, with the callback dialler on the same node) or ivr's demo menu; the database prepared from the
configuration; the scheduler's job lock.

Each application function returns the node and what to call at shutdown; server.py starts and stops them.
"""
from __future__ import annotations

import logging
import math
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import redis
from sqlalchemy.orm import Session, sessionmaker

import asr
from app.adapters.calendar_adapter import DatabaseCalendar
from app.callbacks import CallbackDialler
from app.adapters.recordings_adapter import WavRecordings
from app.adapters.speech_adapter import VoskSpeech
from app.adapters.switchboard_adapter import IvrSwitchboard
from app.conferences import CaseAnnouncements, build_desk
from app.config import ROOT, NodeConfig, ServerSettings
from app.journal_service import JournalService
from app.live_calls import LiveCallStore, PickUpSwitchboard
from app.referrals import referral_vars
from app.node_commands import NodeCommands
from app.shared_calls import DEFAULT_PREFIX, SharedCalls
from app.transcripts import TranscriptLinker
from callflows.handler import FlowCallHandler
from callflows.interpreter import CallServices
from callflows.model import Flow
from callflows.prompts import PromptLibrary, fixed_texts
from callflows.registry import FlowRegistry
from ivr.config import IvrSettings
from ivr.demo_flow import DemoFlow
from ivr.node import IvrNode
from ivr.session import CallEnded, CallSession
from pcm import SAMPLE_RATE, SAMPLE_WIDTH, read_wav
from recordings.wav_writer import record_caller
from three_way.desk import ThreeWayDesk
from tickets.auth import issue_token
from tickets.locks import JobLock, LocalJobLock, RedisJobLock
from tickets.service import TicketRules, set_holiday_override
from tts import PromptSynthesizer

log = logging.getLogger(__name__)
COMMAND_REPLY_SECONDS = 3.0  # how long an operator's pick-up waits for the node holding the call

@dataclass(frozen=True)
class Application:
    """A call application on its node: the node, what to call at shutdown, and the three-way desk of the
    hotline flow (None for the demo) with the words of operator-started calls."""

    node: IvrNode
    stop: Callable[[], None]
    three_way: ThreeWayDesk | None = None
    announcements: CaseAnnouncements | None = None
    speech_load: Callable[[], dict[str, Any]] | None = None  # the recognisers' load, for /api/health
    callbacks: CallbackDialler | None = None  # places the satisfaction callbacks; started once registered


def prepare_database(session_factory: sessionmaker[Session], config: NodeConfig, admin_token: str) -> None:
    """The bootstrap admin token (configured or generated: app.first_run; stored hashed) and the calendar
    overrides of [tickets] holidays/workdays, written at every start."""
    with session_factory.begin() as session:
        issue_token(session, "bootstrap admin", "admin", token=admin_token)
        for day, is_working_day in config.tickets.calendar_overrides.items():
            set_holiday_override(session, day, is_working_day, "from the configuration file")


def recorded(application: Callable[[CallSession], None], recordings_dir: Path) -> Callable[[CallSession], None]:
    """Wrap a call application so the caller's audio is recorded for the whole call."""

    def on_call(session: CallSession) -> None:
        record_caller(session, recordings_dir)
        application(session)

    return on_call


#: Speech the recognisers are warmed on at start (asr.RecognitionPool.warm_up): one answer's worth.
WARM_UP_SECONDS = 4.0


def warm_up_speech(prompts: PromptLibrary, flows: Iterable[Flow], language: str) -> bytes:
    """The flows' own fixed prompts in `language`, synthesised (they are already in the cache), up to
    WARM_UP_SECONDS: words of the hotline's domain, so the recognisers' graph caches fill where callers go."""
    speech = b""
    for flow in flows:
        for prompt_language, text in fixed_texts(flow):
            if prompt_language == language and len(speech) < WARM_UP_SECONDS * SAMPLE_RATE * SAMPLE_WIDTH:
                speech += read_wav(prompts.text(text, language))
    return speech[:int(WARM_UP_SECONDS * SAMPLE_RATE) * SAMPLE_WIDTH]


def hotline_application(config: NodeConfig, session_factory: sessionmaker[Session], rules: TicketRules,
                        live: LiveCallStore) -> Application:
    """The IVR node answering with a call flow (callflows) over the real ports: Vosk speech, the ticket
    database behind the node's journal, WAV recordings, transfers through the node itself, the holiday
    calendar; every call shown in `live` (the console's live view, from which an operator picks a call up);
    the recognisers' load for /api/health. Raises FlowError for a broken flow file, asr.ModelIntegrityError
    for a changed model."""
    settings, callflow_settings = config.server, config.callflows
    recordings_dir = ROOT / settings.recordings_dir
    asr_settings = asr.AsrSettings(models_dir=ROOT / callflow_settings.models_dir)
    if callflow_settings.speech_capacity > 0:  # as many kept recognisers as streams (a new one costs ~4x)
        asr_settings = replace(asr_settings, realtime_streams=callflow_settings.speech_capacity,
                               warm_recognizers=math.ceil(callflow_settings.speech_capacity))
    asr_registry = asr.configure(asr_settings)
    pool = asr.RecognitionPool(asr_registry)
    languages = asr_registry.available_languages()
    pool.preload(languages)
    log.info("speech models loaded: %s", ", ".join(languages) or "none (keypad and recorded messages only)")

    flows = FlowRegistry(ROOT / callflow_settings.flows_dir)
    bundle = flows.get(callflow_settings.flow)
    callback_flow = config.callbacks.flow
    callback_bundle = flows.get(callback_flow) if config.callbacks.enabled else None
    synthesizer = PromptSynthesizer(ROOT / settings.prompt_cache_dir)
    prompts = PromptLibrary(synthesizer)
    flows_spoken = [*bundle.flows.values(), *(callback_bundle.flows.values() if callback_bundle else ())]
    warmed = set().union(*(prompts.prewarm(flow) for flow in flows_spoken))
    removed = synthesizer.keep_only(warmed)  # prompts with callers' data never stay in the cache
    log.info("flow %s: %d fixed prompts synthesised or found in the cache (%d other files removed)",
             callflow_settings.flow, len(warmed), removed)
    for language in languages if callflow_settings.speech_warm_up else ():
        speech = warm_up_speech(prompts, bundle.flows.values(), language)
        if speech:
            pool.warm_up(language, speech)

    journal = JournalService.open(config.journal, session_factory, rules)
    tickets_port = journal.tickets
    transcript_jobs = asr.TranscriptJobs(asr_registry)
    transcripts = TranscriptLinker(journal.journal, transcript_jobs, journal.sink)
    transcripts.resume()
    journal.start()
    handler: FlowCallHandler | None = None  # needs the node (switchboard), which needs on_call first

    dialler: CallbackDialler | None = None  # needs the node too

    def answer(session: CallSession) -> None:
        assert handler is not None, "calls are answered only after node.start()"
        live.watch(session)
        referral = referral_vars(callflow_settings.referral_numbers, session.caller, session.called)
        if dialler is None:
            handler(session, referral)
        else:  # a callback pending for the caller is offered first
            dialler.serve_inbound(session, lambda extra_vars: handler(session, {**referral, **extra_vars}))

    node = IvrNode.from_settings(config.sip, on_call=recorded(answer, recordings_dir),
                                 on_record=transcripts.on_record)
    desk = build_desk(node, session_factory, recordings_dir, transcript_jobs,
                      default_language=bundle.main.first_language)
    services = CallServices(speech=VoskSpeech(pool), tickets=tickets_port,
                            switchboard=PickUpSwitchboard(IvrSwitchboard(node, desk), live),
                            recordings=WavRecordings(recordings_dir), prompts=prompts,
                            calendar=DatabaseCalendar(session_factory), observer=live)
    handler = FlowCallHandler(flows, callflow_settings.flow, services,
                              initial_vars={"operator_number": callflow_settings.operator_seat,
                                            "police_number": callflow_settings.police_number},
                              call_ended=(CallEnded,))

    if callback_bundle is not None:
        dialler = CallbackDialler(node, session_factory, rules, config.callbacks, lambda: flows.get(callback_flow),
                                  services, recordings_dir, node_name(settings))

    def shutdown() -> None:
        desk.stop()
        transcripts.shutdown()
        journal.close()
        prompts.close()
        pool.shutdown()

    announcements = CaseAnnouncements(lambda: flows.get(callflow_settings.flow), prompts)
    return Application(node, shutdown, desk, announcements, speech_load=lambda: pool.metrics().to_dict(),
                       callbacks=dialler)


def demo_application(config: NodeConfig) -> Application:
    """ivr's demo menu (press 1 or 2), recorded; needs no speech models."""
    flow = DemoFlow(ROOT / config.server.prompt_cache_dir)
    flow.prepare()
    node = IvrNode.from_settings(config.sip, on_call=recorded(flow.on_call, ROOT / config.server.recordings_dir),
                                 on_record=lambda record: log.info("call ended: %s", record.to_dict()))
    return Application(node, lambda: None)


def job_lock(redis_url: str, prefix: str = DEFAULT_PREFIX) -> JobLock:
    """Scheduler jobs run once across nodes with Redis; in-process locks for one node."""
    if not redis_url:
        return LocalJobLock()
    return RedisJobLock.from_url(redis_url, prefix=f"{prefix}:job:")


def node_name(settings: ServerSettings) -> str:
    """[server] node_name, else the host name."""
    return settings.node_name or socket.gethostname()


def shared_calls(settings: ServerSettings, node: IvrNode, live: LiveCallStore | None) -> SharedCalls:
    """Every node's calls through Redis ([server] redis_url), or this node's alone without it. The live-state
    client has short time-outs (a Redis that hangs delays the next round, never a call); the command client
    waits a little longer than a command's answer may take."""
    name = node_name(settings)
    if not settings.redis_url:
        return SharedCalls(name, node, live)
    # retry=None: redis-py's own retries (3, with back-off) would hold a round for seconds; the next round
    # is the retry.
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1.0, socket_timeout=1.0, retry=None)
    commands = NodeCommands(redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1.0,
                                                 socket_timeout=COMMAND_REPLY_SECONDS + 2, retry=None),
                            name, prefix=settings.redis_prefix, handlers={}, reply_timeout=COMMAND_REPLY_SECONDS)
    return SharedCalls(name, node, live, client, commands=commands, prefix=settings.redis_prefix,
                       expiry=settings.live_calls_expiry)


def local_extensions(sip: IvrSettings) -> dict[str, str]:
    """Who the project's own Kamailio lets register: the IVR and the test extensions."""
    return {sip.extension: sip.password, **sip.test_extensions}
