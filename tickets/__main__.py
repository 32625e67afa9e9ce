"""Administrator's command line.

`python -m tickets due --received ISO8601 (--working-days N | --level L | --rule KIND [--level L]) [--config
FILE] [--override YYYY-MM-DD=work|holiday ...]` prints the due time as ISO 8601, so the calendar arithmetic
can be checked before a real ticket depends on it. KIND is any deadline kind a ticket shows in its
`deadlines` (`response` takes the level); `--received` is the deadline's start.

`python -m tickets report --period daily|weekly --date YYYY-MM-DD [--database URL]` prints the periodic
report (tickets/report.py) as JSON, the same as `GET /api/reports/{period}?date=`."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime

from sqlalchemy.exc import SQLAlchemyError

from inifile import ConfigError
from tickets import db, report
from tickets.calendar import WorkingCalendar
from tickets.deadlines import SHANGHAI, DeadlineKind, DeadlinePolicy
from tickets.models import utcnow
from tickets.schemas import FIRST_YEAR, LAST_YEAR
from tickets.settings import TicketSettings, load_ticket_settings


def _received(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)  # local hotline time by default


def _override(text: str) -> tuple[date, bool]:
    day, _, kind = text.partition("=")
    if kind not in ("work", "holiday"):
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD=work or YYYY-MM-DD=holiday, got {text!r}")
    try:
        return date.fromisoformat(day), kind == "work"
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {day!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tickets")
    commands = parser.add_subparsers(dest="command", required=True)
    due = commands.add_parser("due", help="print the due time of a deadline")
    due.add_argument("--received", type=_received, required=True,
                     help="time of receipt, ISO 8601 (Asia/Shanghai when no offset is given)")
    which = due.add_mutually_exclusive_group()
    which.add_argument("--working-days", type=int)
    which.add_argument("--rule", help=f"a deadline kind: {', '.join(DeadlineKind)} (response needs --level)")
    due.add_argument("--level", type=int, help="response level 1-4: the response deadline")
    due.add_argument("--override", type=_override, action="append", default=[],
                     help="an administrator's holiday or make-up working day, e.g. 2027-01-01=holiday")
    due.add_argument("--config", help="INI file whose [tickets] section sets durations, rules and overrides "
                                      "(the server's sip.conf); default: the built-in rules")
    reporting = commands.add_parser("report", help="print the periodic report as JSON")
    reporting.add_argument("--period", choices=list(report.PERIODS), required=True)
    reporting.add_argument("--date", type=_day, required=True, help="a day of the period, YYYY-MM-DD (Shanghai)")
    reporting.add_argument("--database", default=db.DEFAULT_URL,
                           help=f"the tickets database URL ([server] database_url; default {db.DEFAULT_URL})")
    args = parser.parse_args(argv)
    if args.command == "report":
        return _report(args.period, args.date, args.database)
    return _due(parser, args)


def _day(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise argparse.ArgumentTypeError(f"year {day.year} is outside {FIRST_YEAR}-{LAST_YEAR}")
    return day


def _report(period: str, day: date, database: str) -> int:
    engine = db.make_engine(database)
    try:
        with db.make_session_factory(engine)() as session:
            print(json.dumps(report.build(session, period, day, utcnow()), ensure_ascii=False, indent=2))
    except SQLAlchemyError as error:  # no such database, or one without the tickets' tables
        print(f"error: cannot read the tickets database {database}: {type(error).__name__}: "
              f"{str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0


def _due(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        settings = load_ticket_settings(args.config) if args.config else TicketSettings()
    except ConfigError as error:
        parser.error(str(error))
    overrides = {**settings.calendar_overrides, **dict(args.override)}  # the command line has the last word
    policy = DeadlinePolicy(settings.deadlines, WorkingCalendar(overrides))
    if args.working_days is None and args.rule is None and args.level is None:
        parser.error("one of --working-days, --level or --rule is required")
    if args.level is not None and (args.working_days is not None or args.rule not in (None, DeadlineKind.RESPONSE)):
        parser.error("--level goes with the response deadline only")
    try:
        if args.working_days is not None:
            deadline = policy.working_days(args.received, args.working_days)
        elif args.level is not None or args.rule == DeadlineKind.RESPONSE:
            if args.level is None:
                parser.error("--rule response needs --level")
            deadline = policy.for_level(args.received, args.level)
        else:
            deadline = policy.for_rule(args.received, args.rule)
    except ValueError as error:
        parser.error(str(error))
    print(deadline.due.isoformat())
    if deadline.statutory_data_missing:
        print("warning: the statutory holiday calendar has no data for part of this period; "
              "counted Monday-Friday plus overrides", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
