"""Composition root: reads the configuration, wires the packages together and runs them until Ctrl-C.

One node on its embedded defaults (`make run`): Kamailio on loopback started from deploy/kamailio, the IVR
registered to it as 12345, the ticket database in a SQLite file, the reminder scheduler, and the HTTP API
(tickets, health, calls) on localhost. Several nodes: point [server] database_url at PostgreSQL, set
redis_url so one node runs each scheduled job, and turn off start_local_sip_server.

The configuration is one INI file: `sip.conf` when present, else the documented `sip.conf.example`.
"""
from __future__ import annotations

import argparse
import configparser
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import redis
import uvicorn
from fastapi import FastAPI, Query

from ivr.config import IvrSettings, SettingsError, load_settings
from ivr.demo_flow import DemoFlow
from ivr.local_sip_server import LocalSipServer
from ivr.node import CallRecord, IvrNode
from ivr.session import CallSession
from recordings.wav_writer import record_caller
from tickets import db
from tickets.api import Operator, TicketsContext, install
from tickets.auth import issue_token
from tickets.locks import JobLock, LocalJobLock, RedisJobLock
from tickets.scheduler import Scheduler
from tickets.classify import Classifier
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


def default_config_path() -> Path:
    local = ROOT / "sip.conf"
    return local if local.is_file() else ROOT / "sip.conf.example"


def load_server_settings(path: Path) -> ServerSettings:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    if not parser.has_section("server"):
        return ServerSettings()
    section = parser["server"]
    types = {f.name: f.type for f in fields(ServerSettings)}
    unknown = set(section) - set(types)
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) in [server]: {', '.join(sorted(unknown))}")
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
            raise SettingsError(f"{path}: [server] {key} must be a {types[key]}, got {section[key]!r}") from None
    return ServerSettings(**values)


def calls_api(app: FastAPI, node: IvrNode) -> None:
    """GET /api/health (open, for load balancers and monitoring) and GET /api/calls (operators only:
    caller numbers are personal data)."""

    @app.get("/api/health", tags=["calls"])
    def health() -> dict[str, Any]:
        state = node.health().to_dict()
        state["status"] = "ok" if state["registration"] == "registered" else "degraded"
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
    except (SettingsError, TicketSettingsError) as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    log.info("configuration from %s", config_path)

    sip_server = None
    if settings.start_local_sip_server:
        sip_server = LocalSipServer(local_extensions(sip), host=sip.registrar_host, port=sip.registrar_port)
        sip_server.start()
        log.info("Kamailio on %s:%d (log %s)", sip.registrar_host, sip.registrar_port, sip_server.log_path)

    session_factory = db.open_database(settings.database_url)
    with session_factory.begin() as session:
        if settings.admin_token:
            issue_token(session, "bootstrap admin", "admin", token=settings.admin_token)
        for day, is_working_day in ticket_settings.calendar_overrides.items():  # [tickets] holidays/workdays
            set_holiday_override(session, day, is_working_day, "from the configuration file")
    rules = TicketRules(Classifier.from_file(ticket_settings.classification_rules), ticket_settings.deadlines)
    scheduler = Scheduler(session_factory, job_lock(settings.redis_url),
                          interval_seconds=settings.scheduler_interval_seconds)

    flow = DemoFlow(ROOT / settings.prompt_cache_dir)
    flow.prepare()
    node = IvrNode.from_settings(sip, on_call=recorded(flow.on_call, ROOT / settings.recordings_dir),
                                 on_record=lambda record: log.info("call ended: %s", record.to_dict()))
    app = FastAPI(title="12345 hotline", version="1")
    install(app, TicketsContext(session_factory, rules))
    calls_api(app, node)

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
        if sip_server is not None:
            sip_server.stop()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
