"""Write a node's journaled calls to the ticket database, once: `python -m app.replay [--config FILE]`.

The node's own background thread does the same every `[journal] replay_interval_seconds`; this is for an
administrator who wants it now, or for a node that is stopped. Safe beside the running node: the database's
unique call id makes a call written twice one ticket. Exit status 0 when every ended call is in the database,
1 when the database is away or refused a call (the report says which), 2 for a configuration error.
"""
from __future__ import annotations

import argparse
import logging
import sys

from app.config import ROOT, add_config_argument, load_config_or_report
from app.journal_sink import DatabaseSink
from journal.replayer import Replayer
from journal.store import Journal
from tickets import db
from tickets.service import TicketRules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.replay", description=__doc__.splitlines()[0])
    add_config_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = load_config_or_report(args.config)
    if config is None:
        return 2
    journal_path = ROOT / config.journal.path
    if not journal_path.is_file():
        print(f"no journal at {journal_path} ([journal] path)", file=sys.stderr)
        return 2
    rules = TicketRules.from_settings(config.tickets)
    session_factory = db.make_session_factory(db.make_engine(config.server.database_url))
    with Journal(journal_path) as journal:
        report = Replayer(journal, DatabaseSink(session_factory, rules)).replay_once()
        left = len(journal.calls_to_write())
    print(f"{report}; calls still to write: {left}")
    return 1 if report.error or report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
