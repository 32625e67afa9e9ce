"""The Alembic migrations are the schema: they build it from nothing, match the models, and tear down."""
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from tickets import db
from tickets.models import Base

ROOT = Path(__file__).resolve().parents[2]

TABLES = {"tickets", "ticket_events", "member_units", "knowledge_entries", "holiday_overrides", "api_tokens",
          "ticket_number_counters", "transcript_corrections"}


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_head_on_empty_database_creates_every_table(empty_db_url):
    assert table_names(empty_db_url) == set()
    db.upgrade(empty_db_url)
    assert table_names(empty_db_url) == TABLES | {"alembic_version"}


def test_migrated_schema_matches_the_models(empty_db_url):
    db.upgrade(empty_db_url)
    engine = create_engine(empty_db_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_downgrade_base_removes_everything_and_upgrade_again_works(empty_db_url):
    db.upgrade(empty_db_url)
    db.downgrade(empty_db_url, "base")
    assert table_names(empty_db_url) == {"alembic_version"}
    db.upgrade(empty_db_url)
    assert TABLES <= table_names(empty_db_url)


def test_upgrade_is_idempotent_at_start_up(empty_db_url):
    db.upgrade(empty_db_url)
    db.upgrade(empty_db_url)
    assert TABLES <= table_names(empty_db_url)


@pytest.mark.postgres
def test_nodes_starting_together_migrate_once(postgres_databases):
    """Three node processes upgrade one empty PostgreSQL database at the same moment."""
    url = postgres_databases.create()
    try:
        nodes = [subprocess.Popen([sys.executable, "-c", "import sys; from tickets import db; db.upgrade(sys.argv[1])",
                                   url], cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        failures = [node.stderr.read() for node in nodes if node.wait(timeout=120) != 0]
        assert failures == []
        assert TABLES <= table_names(url)
    finally:
        postgres_databases.drop(url)


def test_fresh_install_creates_the_sqlite_folder(tmp_path):
    url = f"sqlite:///{tmp_path / 'var' / 'data' / 'tickets.sqlite3'}"
    session_factory = db.open_database(url)
    session_factory.kw["bind"].dispose()
    assert TABLES <= table_names(url)
