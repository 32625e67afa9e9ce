"""The Alembic migrations are the schema: they build it from nothing, match the models, and tear down."""
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import DateTime, column, create_engine, inspect, select, table, text

from tickets import db
from tickets.models import SEARCH_INDEXES, Base

ROOT = Path(__file__).resolve().parents[2]

TABLES = {"tickets", "ticket_events", "ticket_deadlines", "member_units", "knowledge_entries", "holiday_overrides",
          "api_tokens", "ticket_number_counters", "transcript_corrections", "replies", "reply_attachments",
          "notifications", "three_way_calls", "callback_attempts"}


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
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                              "include_object": not_a_search_index})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def not_a_search_index(obj, name, type_, reflected, compare_to) -> bool:
    """The text-search indexes are PostgreSQL expression indexes the models do not declare."""
    return not (type_ == "index" and name in SEARCH_INDEXES)


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


def test_deadlines_migration_carries_over_schedules_in_flight(empty_db_url):
    """A database before the deadlines with a replied ticket (reminded, callback due) and one still waiting: after the
    upgrade each has its deadlines with the same times and claims, and downgrading restores the columns."""
    db.upgrade(empty_db_url, "0002")
    engine = create_engine(empty_db_url)
    t = [datetime(2026, 3, 2, hour) for hour in range(24)]  # naive UTC, as the schema stores it
    common = {"content": "x", "confidential": False, "level": 3, "is_draft": False, "overdue": False,
              "statutory_data_missing": False, "created_at": t[0], "updated_at": t[0], "version": 1}
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO tickets (id, number, status, received_at, response_due_at, remind_at, reminded_at, "
            "replied_at, callback_due_at, content, confidential, level, is_draft, overdue, statutory_data_missing, "
            "created_at, updated_at, version) VALUES (1, '2606100001', 'callback_done', :t1, :t9, :t7, :t8, :t5, "
            ":t20, :content, :confidential, :level, :is_draft, :overdue, :statutory_data_missing, :created_at, "
            ":updated_at, :version)"), {**common, "t1": t[1], "t9": t[9], "t7": t[7], "t8": t[8], "t5": t[5],
                                        "t20": t[20]})
        connection.execute(text(
            "INSERT INTO tickets (id, number, status, received_at, response_due_at, remind_at, content, "
            "confidential, level, is_draft, overdue, statutory_data_missing, created_at, updated_at, version) "
            "VALUES (2, '2606100002', 'received', :t2, :t10, :t8, :content, :confidential, :level, :is_draft, "
            ":overdue, :statutory_data_missing, :created_at, :updated_at, :version)"),
            {**common, "t2": t[2], "t10": t[10], "t8": t[8]})
        connection.execute(text("INSERT INTO ticket_events (ticket_id, at, actor, action) VALUES "
                                "(1, :t6, 'op', 'callback')"), {"t6": t[6]})
    db.upgrade(empty_db_url)
    deadlines = table("ticket_deadlines", column("ticket_id"), column("kind"),
                      *(column(name, DateTime()) for name in ("started_at", "due_at", "remind_at", "met_at",
                                                               "reminded_at")))
    with engine.connect() as connection:
        rows = connection.execute(select(deadlines).order_by(deadlines.c.ticket_id, deadlines.c.kind)).all()
    assert [tuple(row) for row in rows] == [
        (1, "callback", t[5], t[20], t[5] + (t[20] - t[5]) * 0.8, t[6], None),
        (1, "response", t[1], t[9], t[7], t[5], t[8]),
        (2, "response", t[2], t[10], t[8], None, None)]
    db.downgrade(empty_db_url, "0002")
    tickets = table("tickets", column("id"), column("remind_at", DateTime()), column("reminded_at", DateTime()))
    with engine.connect() as connection:
        assert connection.execute(select(tickets.c.remind_at, tickets.c.reminded_at).order_by(tickets.c.id)).all() == [
            (t[7], t[8]), (t[8], None)]
    engine.dispose()
