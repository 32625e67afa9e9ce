"""Engine, sessions and schema upgrades for a ticket database given by URL.

The embedded default is a SQLite file; several nodes share PostgreSQL (`postgresql+psycopg2://...`).
The schema comes only from the Alembic migrations (`upgrade`), never from `create_all`.
"""
from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///var/tickets.sqlite3"
MIGRATIONS = Path(__file__).with_name("migrations")
CONNECT_TIMEOUT_SECONDS = 5  # PostgreSQL (libpq connect_timeout)
# PostgreSQL connections a node keeps open (and opens beyond that before requests wait for one). SQLAlchemy's
# default keeps 5: at 8 requests at once, every 4th request opened a connection (a backend process) and closed
# it again. The node serves HTTP on up to 40 threads, calls and its workers besides.
POOL_SIZE, POOL_OVERFLOW = 16, 8
# What a counter bump's connection may wait for a row another transaction holds before giving up (see
# tickets.service.allocate_number), and how many such connections a process keeps beside its main pool.
COUNTER_LOCK_TIMEOUT = "1s"
COUNTER_POOL_SIZE, COUNTER_POOL_TIMEOUT_SECONDS = 4, 5.0  # a bump waits for one of them, never opens a 5th
_counter_engines: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_counter_engines_lock = threading.Lock()


def make_engine(url: str = DEFAULT_URL, **kwargs: Any) -> Engine:
    """An engine that behaves the same on both back ends: SQLite gets WAL (readers never block the writer),
    a busy timeout instead of instant 'database is locked', and enforced foreign keys."""
    if url.startswith("sqlite"):
        _ensure_sqlite_folder(url)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A database host that stopped answering must cost a call seconds, not the kernel's TCP timeout: the IVR
    # then goes on with its journal (app.journaled_tickets) instead of leaving the caller in silence.
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **kwargs.pop("connect_args", {})}
    pool = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW, **kwargs}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **pool)


def counter_engine(engine: Engine) -> Engine:
    """PostgreSQL connections beside `engine`'s pool, in autocommit, for one-statement counter bumps that must
    not wait for the caller's transaction (tickets.service.allocate_number). Each bump is its own transaction:
    one round trip, no BEGIN/COMMIT, committed without waiting for the disk (synchronous_commit off: the
    caller's later synchronous commit flushes the write-ahead log past it), and it gives up after
    COUNTER_LOCK_TIMEOUT instead of waiting on a row its caller's own transaction holds.

    A pool of its own, so a creator never needs a second connection from the pool its request already holds
    one of (with every main connection held by a creator waiting for a second, all would wait for the pool
    timeout). Made once per engine and process, disposed with `engine`. Connections are not pinged before use:
    a dead one fails the bump, which the caller answers by bumping in its own (pinged) transaction, and
    SQLAlchemy then replaces the pool's connections."""
    with _counter_engines_lock:
        counter = _counter_engines.get(engine)
        if counter is None:
            options = f"-c synchronous_commit=off -c lock_timeout={COUNTER_LOCK_TIMEOUT}"
            counter = create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_size=COUNTER_POOL_SIZE,
                                    max_overflow=0, pool_timeout=COUNTER_POOL_TIMEOUT_SECONDS,
                                    connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS, "options": options})
            _counter_engines[engine] = counter
            event.listen(engine, "engine_disposed", lambda _: counter.dispose())
        return counter


def _ensure_sqlite_folder(url: str) -> None:
    """A fresh install has no data folder yet; SQLite would only say 'unable to open database file'."""
    database = make_url(url).database
    if url.startswith("sqlite") and database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def mark_transaction(session: Session, key: str) -> None:
    """Note under `key` that `session`'s current transaction did something (e.g. holds a row it locked);
    in_marked_transaction tells until that transaction ends."""
    session.info[key] = session.get_transaction()


def in_marked_transaction(session: Session, key: str) -> bool:
    marked = session.info.get(key)
    return marked is not None and marked is session.get_transaction()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (what the application runs at start-up)."""
    _ensure_sqlite_folder(url)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def open_database(url: str = DEFAULT_URL) -> sessionmaker[Session]:
    """Upgrade the schema, then hand out sessions: the one call the composition root needs."""
    upgrade(url)
    return make_session_factory(make_engine(url))
