"""Ticket store throughput and query latency on SQLite and PostgreSQL.

Prints, per back end:
- tickets created per second through tickets.service.create_ticket, one transaction per ticket (what the
  API and the IVR do), over --sample tickets;
- then the table is filled to --tickets rows with a bulk insert (same columns, spread over 90 days, 12 units,
  all statuses) and list/search latencies p50/p99 over --repeat runs of each query through
  tickets.service.list_tickets (count + one page of 50, as GET /api/tickets does).

Usage: .venv/bin/python benchmarks/bench_tickets.py [--tickets 100000] [--sample 2000] [--repeat 100]
       [--backends sqlite,postgres] [--postgres-url postgresql+psycopg2://postgres@127.0.0.1:5432/test]
A temporary SQLite file and a temporary PostgreSQL database are created and removed.
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine, insert, make_url, text

from tickets import db, service
from tickets.lifecycle import Status
from tickets.models import MemberUnit, Ticket
from tickets.service import TicketRules

WORDS = ["停水", "停电", "燃气", "暖气", "噪音", "路灯", "垃圾", "物业", "占道", "井盖", "社保", "公交", "学校",
         "医保", "违建", "拖欠工资", "油烟", "漏水", "电梯", "绿化"]
TOPICS = ["供水", "供电", "燃气", "供暖", "环境", "市政", "物业", "交通", "教育", "社保"]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure_creates(session_factory, rules, count: int) -> float:
    """Tickets per second, one committed transaction each, with classification and deadline computation."""
    rng = random.Random(1)
    started = time.perf_counter()
    for index in range(count):
        with session_factory.begin() as session:
            service.create_ticket(session, {"content": f"{rng.choice(WORDS)} 第{index}号楼",
                                            "phone": f"138{index:08d}"}, rules=rules, actor="bench",
                                  idempotency_key=f"bench-{index}")
    return count / (time.perf_counter() - started)


def bulk_fill(session_factory, total: int) -> None:
    """Fill the table to `total` rows quickly (the numbers use day-of-year 001-090 of 2025, so no clash)."""
    rng = random.Random(2)
    statuses = [s.value for s in Status]
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    with session_factory.begin() as session:
        units = [service.create_unit(session, {"name": f"bench unit {n}"}).id for n in range(12)]
        existing = session.query(Ticket).count()
    batch, per_day = [], {}
    for index in range(total - existing):
        created = start + timedelta(seconds=rng.randrange(90 * 86400))
        day = created.strftime("%y%j")
        per_day[day] = per_day.get(day, 0) + 1
        level = rng.choice([1, 2, 3, 3, 3, 4])
        batch.append({
            "number": f"{day}{per_day[day]:05d}", "content": f"{rng.choice(WORDS)}{rng.choice(WORDS)} {index}",
            "phone": f"139{rng.randrange(10**8):08d}", "caller_name": f"市民{index}", "address": f"{index % 500}号",
            "topic": rng.choice(TOPICS), "request_type": rng.choice(["咨询", "求助", "投诉", "举报", "建议"]),
            "level": level, "unit_id": rng.choice(units), "status": rng.choice(statuses), "is_draft": False,
            "overdue": rng.random() < 0.05, "confidential": False, "statutory_data_missing": False,
            "call_time": created, "received_at": created, "created_at": created, "updated_at": created,
            "response_due_at": created + timedelta(hours=[2, 24, 168, 360][level - 1]), "version": 1})
        if len(batch) == 5000:
            with session_factory.begin() as session:
                session.execute(insert(Ticket), batch)
            batch = []
    if batch:
        with session_factory.begin() as session:
            session.execute(insert(Ticket), batch)


def measure_queries(session_factory, repeat: int) -> dict[str, tuple[float, float, int]]:
    """p50 and p99 in milliseconds and the match count of each typical operator query."""
    with session_factory() as session:
        unit_id = session.query(MemberUnit.id).order_by(MemberUnit.id).first()[0]
    now = datetime(2025, 2, 15, tzinfo=timezone.utc)
    queries: dict[str, Callable[[], service.TicketQuery]] = {
        "newest page": lambda: service.TicketQuery(now=now),
        "status+level": lambda: service.TicketQuery(statuses=["received", "dispatched"], level=2, now=now),
        "unit, by deadline": lambda: service.TicketQuery(unit_id=unit_id, sort="response_due_at", now=now),
        "overdue": lambda: service.TicketQuery(overdue=True, now=now),
        "date range, page 20": lambda: service.TicketQuery(created_from=datetime(2025, 2, 1, tzinfo=timezone.utc),
                                                           created_to=datetime(2025, 2, 8, tzinfo=timezone.utc),
                                                           page=20, now=now),
        "text search 停水": lambda: service.TicketQuery(text="停水", now=now),
        "text search number": lambda: service.TicketQuery(text="2503100042", now=now),
    }
    results = {}
    for name, make in queries.items():
        timings, total = [], 0
        for _ in range(repeat):
            with session_factory() as session:
                started = time.perf_counter()
                _, total = service.list_tickets(session, make())
                timings.append((time.perf_counter() - started) * 1000)
        results[name] = (percentile(timings, 0.5), percentile(timings, 0.99), total)
    return results


def run(name: str, url: str, args: argparse.Namespace) -> None:
    db.upgrade(url)
    engine = db.make_engine(url)
    session_factory = db.make_session_factory(engine)
    rules = TicketRules.default()
    rate = measure_creates(session_factory, rules, args.sample)
    print(f"[{name}] created {args.sample} tickets via service.create_ticket: {rate:.0f} tickets/s")
    started = time.perf_counter()
    bulk_fill(session_factory, args.tickets)
    print(f"[{name}] bulk-filled to {args.tickets} tickets in {time.perf_counter() - started:.1f} s")
    if name == "postgres":
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    for query, (p50, p99, total) in measure_queries(session_factory, args.repeat).items():
        print(f"[{name}] list {query:<20} matches {total:>6}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    backends = args.backends.split(",")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as folder:
            run("sqlite", f"sqlite:///{Path(folder) / 'bench.sqlite3'}", args)
    if "postgres" in backends:
        admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
        name = f"tickets_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            run("postgres", make_url(args.postgres_url).set(database=name).render_as_string(hide_password=False),
                args)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
