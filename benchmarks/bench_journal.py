"""The node's journal: how fast answers become durable, and how fast a backlog is replayed after an outage.

Prints:
- appends per second (each one fsync'd: WAL, synchronous=FULL) from one call thread and from --threads call
  threads at once (a typical answer is one append; a submit while the database is away is one commit);
- the replay of --calls journaled calls (each: a few answers and a submit with a reserved number) into a
  fresh ticket database: calls written per second, and the time of a second replay that writes nothing.

Usage: .venv/bin/python benchmarks/bench_journal.py [--appends 500] [--threads 8] [--calls 200]
       [--database-url sqlite:///... | postgresql+psycopg2://...]   (default: a temporary SQLite file)
Everything is written under a temporary folder (the journal next to the disk the node would use: run it on
that disk for figures that mean something).
"""
from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from app.journal_sink import DatabaseSink
from journal.numbers import ReservedNumbers
from journal.records import DraftSaved, Submitted
from journal.replayer import Replayer
from journal.store import Journal
from tickets import db
from tickets.service import TicketRules

ANSWERS = [{"language": "zh"}, {"content": "我家停水两天了，请尽快处理。", "recording_ref": "/rec/request.wav"},
           {"caller_name": "王芳", "name_recording_ref": "/rec/name.wav"},
           {"address": "龙井路8号", "address_recording_ref": "/rec/address.wav"}]


def appends_per_second(journal: Journal, count: int, threads: int) -> float:
    per_thread = max(1, count // threads)

    def call_thread(index: int) -> None:
        for n in range(per_thread):
            journal.append(DraftSaved(f"bench-{threads}-{index}", "1001", ANSWERS[n % len(ANSWERS)],
                                      datetime.now(timezone.utc)))

    workers = [threading.Thread(target=call_thread, args=(index,)) for index in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return per_thread * threads / (time.perf_counter() - started)


def journal_calls(journal: Journal, numbers: ReservedNumbers, sink: DatabaseSink, calls: int) -> None:
    numbers.stock = calls
    numbers.top_up()
    for index in range(calls):
        call_id = f"replay-{index:06d}"
        now = datetime.now(timezone.utc)
        journal.append(*(DraftSaved(call_id, "13800000000", answer, now) for answer in ANSWERS))
        journal.submit_with_reserved_number(Submitted(call_id, "13800000000", {"handling_mode": "转办"}, now),
                                            sink.today(), "benchmark: database away")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as folder:
        with Journal(Path(folder) / "appends.sqlite3") as journal:
            print(f"appends/s, 1 thread: {appends_per_second(journal, args.appends, 1):.0f}")
            print(f"appends/s, {args.threads} threads: {appends_per_second(journal, args.appends, args.threads):.0f}")

        url = args.database_url or f"sqlite:///{Path(folder) / 'tickets.sqlite3'}"
        session_factory = db.open_database(url)
        sink = DatabaseSink(session_factory, TicketRules.default())
        with Journal(Path(folder) / "replay.sqlite3") as journal:
            journal_calls(journal, ReservedNumbers(journal, sink, stock=0, today=sink.today), sink, args.calls)
            replayer = Replayer(journal, sink)
            started = time.perf_counter()
            report = replayer.replay_once()
            seconds = time.perf_counter() - started
            print(f"replay of {args.calls} calls into {url.split(':')[0]}: {len(report.written)} written in "
                  f"{seconds:.2f} s ({len(report.written) / seconds:.0f} calls/s); error: {report.error or 'none'}")
            started = time.perf_counter()
            again = replayer.replay_once()
            print(f"second replay: {len(again.written)} written in {time.perf_counter() - started:.3f} s")
        session_factory.kw["bind"].dispose()


if __name__ == "__main__":
    main()
