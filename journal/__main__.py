"""Look into a node's journal: `python -m journal status|calls|show JOURNAL ...`.

Read-only, safe beside the running node (SQLite WAL lets readers in while the node writes). Writing the
journaled calls to the ticket database needs the node's configuration: `python -m app.replay` does it.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from journal.records import JournaledCall, encode
from journal.store import Journal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m journal", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="counts: calls in the flow, to write, written; numbers; jobs")
    status.add_argument("journal", type=Path)
    calls = commands.add_parser("calls", help="the calls the ticket database does not hold yet")
    calls.add_argument("journal", type=Path)
    show = commands.add_parser("show", help="one call's records, in order, as JSON lines")
    show.add_argument("journal", type=Path)
    show.add_argument("call_id")
    args = parser.parse_args(argv)
    if not args.journal.is_file():
        print(f"no journal at {args.journal}", file=sys.stderr)
        return 2
    with Journal(args.journal) as journal:
        if args.command == "status":
            print(json.dumps(asdict(journal.status()), indent=1))
        elif args.command == "calls":
            for call in journal.calls_to_write():
                print(json.dumps(_summary(call), ensure_ascii=False, default=str))
        else:
            records = journal.records(args.call_id)
            if not records:
                print(f"no records of call {args.call_id} in {args.journal}", file=sys.stderr)
                return 1
            for record in records:
                print(json.dumps({"kind": record.kind, **json.loads(encode(record))}, ensure_ascii=False))
    return 0


def _summary(call: JournaledCall) -> dict[str, Any]:
    return {"call_id": call.call_id, "outcome": call.outcome, "ended_at": call.ended_at, "number": call.number,
            "number_source": call.number_source, "database_missed": call.database_missed,
            "fields": sorted(call.fields)}


if __name__ == "__main__":
    sys.exit(main())
