"""Real databases for the ticket tests: every test using `db_url` runs once on SQLite and once on the
machine's PostgreSQL.

SQLite gets a fresh file per test. PostgreSQL gets one database per test session, named uniquely so that
concurrent runs never collide, migrated once, emptied after each test and dropped at the end.
Set TICKETS_TEST_POSTGRES_URL to use another server (default: the local trust-auth postgres).

Fixtures for other ticket tests (the scheduler's too): `db_url`, `engine`, `session_factory`, `rules`,
`empty_db_url` (an unmigrated database, for migration tests); for the HTTP API: `app`, `client` and `world`
(units and a token per role).
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import copy_sqlite
from tests.tickets.ticket_api_helpers import ADMIN_TOKEN, auth
from tickets import db
from tickets.api import ApiSettings, create_app
from tickets.auth import issue_token
from tickets.models import Base
from tickets.service import TicketRules, create_unit

POSTGRES_URL = os.environ.get("TICKETS_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
BACKENDS = [pytest.param("sqlite", id="sqlite"),
            pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


class PostgresDatabases:
    """Creates and drops uniquely named databases on the test server."""

    def __init__(self, server_url: str) -> None:
        self.server_url = make_url(server_url)
        self.admin = create_engine(self.server_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)

    def create(self) -> str:
        name = f"tickets_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return self.server_url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(POSTGRES_URL)
    try:
        with databases.admin.connect():
            pass
    except Exception as error:  # noqa: BLE001 - any connection failure means: no server here
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {error}")
    yield databases
    databases.admin.dispose()


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_databases: PostgresDatabases) -> Iterator[str]:
    url = postgres_databases.create()
    db.upgrade(url)
    yield url
    postgres_databases.drop(url)


def _empty_tables(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        names = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A migrated, empty ticket database: a copy of the session's migrated SQLite file, or the session's
    PostgreSQL database (emptied after)."""
    if request.param == "sqlite":
        path = tmp_path / "tickets.sqlite3"
        copy_sqlite(request.getfixturevalue("migrated_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("migrated_postgres_url")
    yield url
    _empty_tables(url)


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A database without any schema (for migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    url = databases.create()
    yield url
    databases.drop(url)


@pytest.fixture
def rules() -> TicketRules:
    """The shipped classification rules and default deadline durations."""
    return TicketRules.default()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = db.make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return db.make_session_factory(engine)


@pytest.fixture
def app(db_url, rules):
    """The stand-alone ticket API on the test database, with the bootstrap admin token."""
    app = create_app(ApiSettings(database_url=db_url, bootstrap_admin_token=ADMIN_TOKEN), rules)
    yield app
    app.state.tickets.session_factory.kw["bind"].dispose()


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def world(app):
    """Two units, and a token per role (the unit staff belong to the water unit)."""
    with app.state.tickets.session_factory.begin() as session:
        water = create_unit(session, {"name": "市水务局", "categories": ["供水"], "seat_numbers": ["2001"]})
        roads = create_unit(session, {"name": "市住建局"})
        _, operator = issue_token(session, "operator 1", "operator")
        _, staff = issue_token(session, "water staff", "unit_staff", water.id)
    return {"water": water.id, "roads": roads.id, "operator": auth(operator), "staff": auth(staff),
            "admin": auth(ADMIN_TOKEN)}
