"""Ticket store throughput and query latency on SQLite and PostgreSQL.

Prints, per back end:
- tickets created per second through the HTTP API (POST /api/tickets with a bearer token, what an
  operator's client or a second node does): the stand-alone ticket API (tickets.api.create_app) is served
  by uvicorn in --api-processes child processes sharing one port (SO_REUSEPORT: the kernel spreads the
  connections, as a balancer spreads them over nodes), and --clients concurrent clients (one keep-alive
  connection each) post tickets: --api-sample of them from threads of this process (--load python), or
  for --api-seconds from wrk (--load wrk, a C load generator with benchmarks/bench_tickets.lua, so that the
  clients take little of the cores). Printed beside the rate: the servers' CPU milliseconds per ticket
  (from /proc, stable on a loaded machine where the rate is not), the PostgreSQL backends' and the clients'
  CPU, what the servers sent the database per ticket (SQL statements, commits, connection check-outs:
  counted by SQLAlchemy event hooks installed in the benchmark's server processes, not in the product),
  how many tickets each process created; and a line of what the clients sent, the 201 answers, anything
  else (which stops the run), and the tickets the database holds afterwards (with wrk, up to --clients
  more than the 201s: requests in flight when it stopped). --statements lists the statements by kind;
- tickets created per second through tickets.service.create_ticket, one transaction per ticket (the IVR's
  path, without HTTP), over --sample tickets;
- then the table is filled to --tickets rows with a bulk insert (same columns, spread over 90 days, 12 units,
  all statuses) and list/search latencies p50/p99 over --repeat runs of each query through
  tickets.service.list_tickets (count up to 1000 + one page of 50, as GET /api/tickets does; "1000+" is
  more than 1000; one text search is also counted exactly). Text searches on PostgreSQL use the bigram
  indexes of migration 0007.

Usage: .venv/bin/python benchmarks/bench_tickets.py [--tickets 100000] [--sample 2000] [--repeat 100]
       [--api-sample 3000] [--clients 8] [--load python|wrk] [--api-seconds 10] [--api-processes 1]
       [--statements] [--backends sqlite,postgres]
       [--postgres-url postgresql+psycopg2://postgres@127.0.0.1:5432/test]
A temporary SQLite file and a temporary PostgreSQL database are created and removed.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, event, insert, make_url, text
from sqlalchemy.pool import Pool

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


API_TOKEN = "bench-admin-token-not-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_api(url: str, port: int, counts_path: str) -> None:
    """A child process: the stand-alone ticket API on 127.0.0.1:port (uvicorn, one process). The port is
    bound with SO_REUSEPORT, so that --api-processes children share it and the kernel spreads the clients'
    connections over them (as a balancer spreads them over nodes). What it sends the database while serving
    is counted and written to `counts_path` as JSON when uvicorn stops (SIGTERM: uvicorn re-raises it after
    shutting down, as a KeyboardInterrupt here)."""
    import uvicorn

    from tickets.api import ApiSettings, create_app
    app = create_app(ApiSettings(database_url=url, bootstrap_admin_token=API_TOKEN))
    counts = count_database_traffic()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("127.0.0.1", port))
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])
    except KeyboardInterrupt:
        pass
    finally:
        Path(counts_path).write_text(json.dumps(counts))


def count_database_traffic() -> Counter:
    """Counters, from now on, of every SQL statement (and of each kind, by its first words), commit, rollback,
    pool check-out (a round trip of its own while the engine pings connections before use) and new database
    connection of every engine in this process."""
    counts: Counter = Counter()

    def statement(conn, cursor, sql: str, parameters, context, executemany: bool) -> None:
        counts["statements"] += 1
        counts["sql: " + " ".join(sql.split()[:4])[:60]] += 1

    def tally(name: str) -> Callable[..., None]:
        def count(*_: object) -> None:
            counts[name] += 1
        return count

    event.listen(Engine, "before_cursor_execute", statement)
    event.listen(Engine, "commit", tally("commits"))
    event.listen(Engine, "rollback", tally("rollbacks"))
    event.listen(Pool, "checkout", tally("checkouts"))
    event.listen(Pool, "connect", tally("connects"))
    return counts


@dataclass
class ApiFigures:
    rate: float  # tickets per second
    server_cpu: float  # server process CPU seconds per ticket (user + system)
    database_cpu: float  # the database backends' CPU seconds per ticket (PostgreSQL on this machine; else 0)
    client_cpu: float  # this process's CPU seconds per ticket (the clients)
    traffic: dict[str, float]  # database statements, commits, ... per ticket (see count_database_traffic)
    spread: list[int]  # tickets each API process created


@dataclass
class Load:
    created: int  # 201 answers the clients got
    elapsed: float  # seconds from the first request to the last answer
    client_cpu: float  # CPU seconds the clients spent
    note: str  # what was sent and what came back


def measure_api_creates(url: str, args: argparse.Namespace) -> tuple[ApiFigures, str]:
    """Tickets per second through POST /api/tickets from --clients concurrent connections to --api-processes
    API processes, with the CPU both sides spent and what the servers sent the database, per ticket; and a
    line saying what the clients sent, what came back and how many tickets the database then holds."""
    port = free_port()
    counts_files = []
    for _ in range(args.api_processes):
        counts_file = tempfile.NamedTemporaryFile(prefix="bench-api-counts-", suffix=".json", delete=False)
        counts_file.close()
        counts_files.append(Path(counts_file.name))
    servers: list[subprocess.Popen] = []
    try:
        for counts_path in counts_files:  # one after another: the first one upgrades the schema
            servers.append(subprocess.Popen([sys.executable, __file__, "--serve-api", url, str(port),
                                             str(counts_path)]))
            wait_for_api(port, servers[-1])
        base = f"http://127.0.0.1:{port}"
        marks: dict[str, Any] = {}

        def begin() -> None:  # the clients are connected and about to send their first request
            marks["backends"], marks["servers"] = backend_cpu_seconds(url), servers_cpu_seconds(servers)

        if args.load == "wrk":
            load = wrk_load(base, args.clients, args.api_seconds, begin)
        else:
            load = python_load(base, args.api_sample, args.clients, begin)
        cpu = servers_cpu_seconds(servers) - marks["servers"]
        database_cpu = sum(seconds - marks["backends"].get(pid, 0.0)
                           for pid, seconds in backend_cpu_seconds(url).items())
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        stored = tickets_stored(url)
        if stored < load.created:
            raise RuntimeError(f"{load.created} tickets answered 201 but {stored} are in the database")
        totals: Counter = Counter()
        spread = []
        for counts_path in counts_files:
            counts = json.loads(counts_path.read_text())
            totals.update(counts)
            spread.append(counts.get("sql: INSERT INTO tickets (number,", 0))
        traffic = {name: total / stored for name, total in totals.items()}
        figures = ApiFigures(load.created / load.elapsed, cpu / stored, database_cpu / stored,
                             load.client_cpu / stored, traffic, spread)
        return figures, f"{load.note}; tickets in the database: {stored}"
    finally:
        for server in servers:
            if server.poll() is None:
                server.terminate()
                server.wait(timeout=30)
        for counts_path in counts_files:
            counts_path.unlink(missing_ok=True)


def python_load(base: str, count: int, clients: int, begin: Callable[[], None]) -> Load:
    """`count` creates from `clients` threads of this process, one keep-alive connection each (httpx)."""
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    per_client = [count // clients + (1 if n < count % clients else 0) for n in range(clients)]
    failures: list[str] = []
    created = Counter()
    start = threading.Barrier(clients + 1)

    def client(n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            http.get("/openapi.json")  # connected (to one of the processes) before the clock starts
            start.wait()
            for index in range(per_client[n]):
                response = http.post("/api/tickets", json={
                    "content": f"{rng.choice(WORDS)} 第{index}号楼 {rng.choice(WORDS)}",
                    "phone": f"138{n:02d}{index:06d}", "caller_name": f"市民{n}-{index}"},
                    headers={"Idempotency-Key": f"bench-{n}-{index}"})
                if response.status_code == 201:
                    created[n] += 1
                else:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    begin()
    client_before = time.process_time()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} of {count} creations failed, e.g. {failures[0]}")
    return Load(sum(created.values()), elapsed, time.process_time() - client_before,
                f"python clients: sent {count}, 201: {sum(created.values())}")


WRK_SCRIPT = Path(__file__).with_suffix(".lua")


def wrk_load(base: str, clients: int, seconds: int, begin: Callable[[], None]) -> Load:
    """Creates for `seconds` from wrk (a C load generator: the clients then take little of the two cores),
    `clients` threads with one connection each and the Python clients' 30 s timeout (wrk's own is 2 s); its
    Lua script gives each request its own body and key and counts the answers. Requests still in flight when
    wrk stops are neither answered nor failed (the database may hold them)."""
    if shutil.which("wrk") is None:
        raise SystemExit("--load wrk needs wrk (deploy/setup.sh installs it: apt-get install wrk)")
    begin()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(["wrk", "-t", str(clients), "-c", str(clients), "-d", f"{seconds}s",
                                "--timeout", "30s", "-s", str(WRK_SCRIPT), base, "--", API_TOKEN],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # grown by wrk's CPU alone: the servers still run
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {err.strip()[:500]}")
    line = next((text for text in out.splitlines() if text.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no BENCH line: {out[-500:]} {err[-500:]}")
    report = {key: int(value) for key, value in (item.split("=") for item in line.split()[1:])}
    errors = report["connect"] + report["read"] + report["write"] + report["timeout"]
    if report["other"] or errors:
        raise RuntimeError(f"wrk: {report['other']} answers other than 201, {errors} socket errors (connect "
                           f"{report['connect']}, read {report['read']}, write {report['write']}, timeout "
                           f"{report['timeout']}): {err.strip()[:500]}")
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    return Load(report["created"], report["duration_us"] / 1e6, cpu,
                f"wrk: sent {report['sent']}, 201: {report['created']}, other: {report['other']}, socket "
                f"errors: {errors}, latency p50/p99 {report['p50_us'] / 1000:.1f}/{report['p99_us'] / 1000:.1f} ms")


def tickets_stored(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM tickets")).scalar_one()
    finally:
        engine.dispose()


def wait_for_api(port: int, server: subprocess.Popen) -> None:
    """Until `server` listens on `port` (seen in /proc: with several processes on the port, an HTTP answer
    may come from another one), then one answer on the port."""
    deadline = time.monotonic() + 60
    while not listening(server.pid, port):
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError("the API server did not start")
        time.sleep(0.2)
    if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).status_code != 200:
        raise RuntimeError("the API server does not answer")


def listening(pid: int, port: int) -> bool:
    """Whether process `pid` has a socket listening on 127.0.0.1:`port` (from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(fields[9])
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except FileNotFoundError:
        return False
    for descriptor in descriptors:
        try:
            target = os.readlink(descriptor)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def servers_cpu_seconds(servers: list[subprocess.Popen]) -> float:
    return sum(process_cpu_seconds(server.pid) for server in servers)


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_cpu_seconds(url: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to the database of `url` (same machine only;
    {} for SQLite or a server elsewhere)."""
    if not url.startswith("postgresql"):
        return {}
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            pids = connection.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND pid <> pg_backend_pid()")).scalars().all()
    finally:
        engine.dispose()
    seconds = {}
    for pid in pids:
        try:
            seconds[pid] = process_cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):  # ended meanwhile, or on another machine
            pass
    return seconds


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


def measure_queries(session_factory, repeat: int) -> dict[str, tuple[float, float, str]]:
    """p50 and p99 in milliseconds and the match count of each typical operator query, counted as the API and
    the console count (up to service.INTERACTIVE_COUNT_LIMIT: '1000+' is more than 1000), and one text search
    counted exactly, for comparison."""
    with session_factory() as session:
        unit_id = session.query(MemberUnit.id).order_by(MemberUnit.id).first()[0]
    now = datetime(2025, 2, 15, tzinfo=timezone.utc)
    limit = service.INTERACTIVE_COUNT_LIMIT
    queries: dict[str, Callable[[], service.TicketQuery]] = {
        "newest page": lambda: service.TicketQuery(now=now, count_limit=limit),
        "status+level": lambda: service.TicketQuery(statuses=["received", "dispatched"], level=2, now=now,
                                                    count_limit=limit),
        "unit, by deadline": lambda: service.TicketQuery(unit_id=unit_id, sort="response_due_at", now=now,
                                                         count_limit=limit),
        "overdue": lambda: service.TicketQuery(overdue=True, now=now, count_limit=limit),
        "date range, page 20": lambda: service.TicketQuery(created_from=datetime(2025, 2, 1, tzinfo=timezone.utc),
                                                           created_to=datetime(2025, 2, 8, tzinfo=timezone.utc),
                                                           page=20, now=now, count_limit=limit),
        "text search 停水": lambda: service.TicketQuery(text="停水", now=now, count_limit=limit),
        "text search number": lambda: service.TicketQuery(text="2503100042", now=now, count_limit=limit),
        "停水, exact count": lambda: service.TicketQuery(text="停水", now=now),
    }
    results = {}
    for name, make in queries.items():
        timings, total = [], ""
        for _ in range(repeat):
            with session_factory() as session:
                started = time.perf_counter()
                found = service.list_tickets(session, make())
                timings.append((time.perf_counter() - started) * 1000)
            total = f"{found.total}{'' if found.total_exact else '+'}"
        results[name] = (percentile(timings, 0.5), percentile(timings, 0.99), total)
    return results


def run(name: str, url: str, args: argparse.Namespace) -> None:
    db.upgrade(url)
    if args.api_sample:
        api, sent = measure_api_creates(url, args)
        traffic = api.traffic
        print(f"[{name}] created tickets via POST /api/tickets, {args.clients} {args.load} clients, "
              f"{args.api_processes} API process(es) (tickets each: {'/'.join(map(str, api.spread))}): "
              f"{api.rate:.0f} tickets/s (CPU per ticket: server {api.server_cpu * 1000:.2f} ms, database "
              f"{api.database_cpu * 1000:.2f} ms, clients {api.client_cpu * 1000:.2f} ms; per ticket "
              f"{traffic.get('statements', 0):.2f} SQL statements, {traffic.get('commits', 0):.2f} commits, "
              f"{traffic.get('rollbacks', 0):.2f} rollbacks, {traffic.get('checkouts', 0):.2f} connection "
              f"check-outs, {traffic.get('connects', 0):.3f} new connections)")
        if args.statements:
            for kind, per_ticket in sorted(traffic.items(), key=lambda item: -item[1]):
                if kind.startswith("sql: "):
                    print(f"[{name}]   {per_ticket:5.2f}  {kind[5:]}")
        print(f"[{name}]   {sent}")
    engine = db.make_engine(url)
    session_factory = db.make_session_factory(engine)
    rules = TicketRules.default()
    rate = measure_creates(session_factory, rules, args.sample)
    print(f"[{name}] created {args.sample} tickets via service.create_ticket: {rate:.0f} tickets/s")
    started = time.perf_counter()
    bulk_fill(session_factory, args.tickets)
    print(f"[{name}] bulk-filled to {args.tickets} tickets in {time.perf_counter() - started:.1f} s")
    if name == "postgres":  # statistics and visibility as a running database has them after autovacuum
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE tickets"))
    for query, (p50, p99, total) in measure_queries(session_factory, args.repeat).items():
        print(f"[{name}] list {query:<20} matches {total:>6}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--api-sample", type=int, default=3000, help="tickets created through the API (0: skip)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent API clients")
    parser.add_argument("--load", choices=["python", "wrk"], default="python",
                        help="the API's clients: threads of this process (--api-sample creates) or wrk "
                             "(--api-seconds of creates)")
    parser.add_argument("--api-seconds", type=int, default=10, help="how long wrk creates tickets")
    parser.add_argument("--api-processes", type=int, default=1,
                        help="API server processes sharing the port (as nodes behind a balancer)")
    parser.add_argument("--statements", action="store_true", help="list the API's SQL statements per ticket by kind")
    parser.add_argument("--serve-api", nargs=3, metavar=("URL", "PORT", "COUNTS"), help=argparse.SUPPRESS)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    if args.serve_api:
        serve_api(args.serve_api[0], int(args.serve_api[1]), args.serve_api[2])
        return
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
