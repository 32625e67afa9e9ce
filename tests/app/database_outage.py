"""Ticket databases a test can take away and bring back, on SQLite and on the machine's PostgreSQL.

PostgreSQL: a database with a unique name; away = `ALTER DATABASE ... ALLOW_CONNECTIONS false` and its
backends terminated (what a failover or a network cut looks like to the node); the server itself is never
stopped or reconfigured. SQLite: away = the file moved aside (a lost mount): the next connection finds an
empty database and every statement fails.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from tickets import db

POSTGRES_URL = os.environ.get("TICKETS_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


class OutageDatabase:
    """A migrated ticket database with `away()` and `back()`; `session_factory` is the node's."""

    url: str
    engine: Engine

    @property
    def session_factory(self) -> sessionmaker[Session]:
        return db.make_session_factory(self.engine)

    def away(self) -> None:
        raise NotImplementedError

    def back(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.engine.dispose()


class PostgresOutage(OutageDatabase):
    def __init__(self, prefix: str = "journal_test") -> None:
        server = make_url(POSTGRES_URL)
        self.admin = create_engine(server, isolation_level="AUTOCOMMIT")
        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = server.set(database=self.name).render_as_string(hide_password=False)
        db.upgrade(self.url)
        self.engine = db.make_engine(self.url)

    def away(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false'))
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": self.name})

    def back(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))

    def close(self) -> None:
        super().close()
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


class SqliteOutage(OutageDatabase):
    def __init__(self, folder: Path) -> None:
        self.path = folder / "tickets.sqlite3"
        self.url = f"sqlite:///{self.path}"
        db.upgrade(self.url)
        self.engine = db.make_engine(self.url)

    def _files(self, path: Path) -> list[Path]:
        return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]

    def away(self) -> None:
        self.engine.dispose()
        for file in self._files(self.path):
            if file.exists():
                file.rename(file.with_name(file.name + ".away"))

    def back(self) -> None:
        self.engine.dispose()
        for file in self._files(self.path):
            file.unlink(missing_ok=True)  # the empty database the failed connections created
            aside = file.with_name(file.name + ".away")
            if aside.exists():
                aside.rename(file)


def outage_database(backend: str, folder: Path) -> OutageDatabase:
    return PostgresOutage() if backend == "postgres" else SqliteOutage(folder)
