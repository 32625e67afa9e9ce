"""Runs one node of the 12345 hotline until Ctrl-C: parses the arguments, loads the configuration through
app/, starts Kamailio (when configured), the IVR, the scheduler, the units' webhooks, audio retention and the HTTP API with the operator console, and stops them in
order.

One node on its embedded defaults (`make run`): Kamailio on loopback started from deploy/kamailio, the IVR
registered to it as 12345, the ticket database in a SQLite file, the reminder scheduler, and the HTTP API
(tickets, health, calls) on localhost. Several nodes (README "Several nodes", deploy/cluster/): point [server]
database_url at PostgreSQL, set redis_url (every node's calls shown on every node, one node runs each
scheduled job) and node_name, turn off start_local_sip_server, and run one Kamailio with the dispatcher in
front of the nodes.

The call application is chosen by [callflows] flow: `hotline12345` (the 12345 flow of callflows/flows with
speech recognition, tickets, recordings, transfers; see app.wiring) or `demo` (ivr's press-1/2 demo, no
speech models needed). How the pieces are wired is app/'s business; this file only starts and stops them.

The configuration is one INI file: $HOTLINE_SIP_CONF, else `sip.conf` when present, else the documented
`sip.conf.example` (inifile.config_path).
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys

import uvicorn

import asr
import console
from app.config import DEMO_FLOW, ROOT, add_config_argument, load_config_or_report
from app.exposure import check_exposure
from app.first_run import admin_token, console_address, console_secret, first_run_notice
from app.http import build_http_app
from app.live_calls import LiveCallStore
from app.retention import RetentionJob
from app.wiring import (demo_application, hotline_application, job_lock, local_extensions, prepare_database,
                        shared_calls)
from callflows.issues import FlowError
from ivr.local_sip_server import LocalSipServer
from tickets import db
from tickets.scheduler import Scheduler
from tickets.service import TicketRules
from tickets.webhooks import WebhookSender

log = logging.getLogger("server")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config_or_report(args.config, check=check_exposure)
    if config is None:
        return 2
    log.info("configuration from %s", config.path)

    session_factory = db.open_database(config.server.database_url)
    token = admin_token(config)
    prepare_database(session_factory, config, token.token)
    rules = TicketRules.from_settings(config.tickets)
    scheduler = Scheduler(session_factory, job_lock(config.server.redis_url, config.server.redis_prefix),
                          interval_seconds=config.server.scheduler_interval_seconds)
    webhooks = WebhookSender(session_factory)  # the units' webhooks, apart from the scheduler

    retention = RetentionJob(session_factory, config.retention, ROOT / config.server.recordings_dir)
    live: LiveCallStore | None = None
    if config.callflows.flow == DEMO_FLOW:
        application = demo_application(config)
    else:
        try:
            live = LiveCallStore()
            application = hotline_application(config, session_factory, rules, live)
        except FlowError as error:
            print(f"configuration error: [callflows] flow {config.callflows.flow!r}:\n{error}", file=sys.stderr)
            return 2
        except asr.ModelIntegrityError as error:
            print(f"configuration error: [callflows] models_dir: {error}", file=sys.stderr)
            return 2

    sip, sip_server = config.sip, None
    if config.server.start_local_sip_server:
        sip_server = LocalSipServer(local_extensions(sip), host=sip.registrar_host, port=sip.registrar_port,
                                    trusted_hosts=(sip.local_ip,))
        sip_server.start()
        log.info("Kamailio on %s:%d (log %s)", sip.registrar_host, sip.registrar_port, sip_server.log_path)
    node = application.node
    shared = shared_calls(config.server, node, live)
    app = build_http_app(session_factory, rules, application, console.ConsoleSettings(
        session_secret=console_secret(config), flows_dir=ROOT / config.callflows.flows_dir,
        active_flow=config.callflows.flow, operator_seat=config.callflows.operator_seat), live,
        extensions={*sip.test_extensions, config.callflows.operator_seat}, shared=shared,
        callback_policy=config.callbacks.policy())

    # uvicorn shuts down on SIGINT/SIGTERM and then re-raises the signal with the previous handler: make
    # both a KeyboardInterrupt so the IVR unregisters and Kamailio stops in `finally`.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        node.start()
        log.info("IVR registered as %s at %s:%d", sip.extension, sip.registrar_host, sip.registrar_port)
        shared.start()
        log.info("node %s: calls shared through %s", shared.node_name,
                 "Redis" if config.server.redis_url else "nothing (this node's calls only)")
        scheduler.start()
        if application.callbacks is not None:
            application.callbacks.start()
        webhooks.start()
        retention.start()
        log.info("operator console on %s", console_address(config))
        if notice := first_run_notice(token, config):
            log.info("%s", notice)
            print(notice, flush=True)
        uvicorn.Server(uvicorn.Config(app, host=config.server.http_host, port=config.server.http_port,
                                      log_level="info")).run()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        scheduler.stop()
        if application.callbacks is not None:
            application.callbacks.stop()
        webhooks.stop()
        retention.stop()
        node.stop()
        shared.stop()
        application.stop()
        if sip_server is not None:
            sip_server.stop()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
