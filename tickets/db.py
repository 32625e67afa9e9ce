"""Engine, sessions and schema upgrades for a ticket database given by URL.

The embedded default is a SQLite file; several nodes share PostgreSQL (`postgresql+psycopg2://...`).
The schema comes only from the Alembic migrations (`upgrade`), never from `create_all`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///var/tickets.sqlite3"
MIGRATIONS = Path(__file__).with_name("migrations")
CONNECT_TIMEOUT_SECONDS = 5  # PostgreSQL (libpq connect_timeout)


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
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


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
