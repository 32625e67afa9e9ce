"""Administrator's command line: `python -m tickets due --received ISO8601 (--working-days N | --level L |
--rule KIND [--level L]) [--config FILE] [--override YYYY-MM-DD=work|holiday ...]` prints the due time as ISO
8601, so the calendar arithmetic can be checked before a real ticket depends on it. KIND is any deadline kind a
ticket shows in its `deadlines` (`response` takes the level); `--received` is the deadline's start."""
from __future__ import annotations

import argparse
import sys
from datetime import date, datetime

from inifile import ConfigError
from tickets.calendar import WorkingCalendar
from tickets.deadlines import SHANGHAI, DeadlineKind, DeadlinePolicy
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
    args = parser.parse_args(argv)

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
