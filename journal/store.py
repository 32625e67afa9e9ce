"""The node's journal: a SQLite file in WAL mode with synchronous=FULL, one per node (var/journal/).

Why SQLite and not an fsync'd append-only file: several records must become durable together (a reserved
ticket number is taken and the submit that tells it to the caller is recorded in one commit, or neither);
the replayer and the transcription worker need indexed look-ups (calls not yet written, jobs not yet run)
without reading the whole history; the node's call threads, its replayer and a `python -m journal` run
beside it share the file safely; and it is in the standard library. With WAL and synchronous=FULL every
commit is fsync'd before `append` returns; a commit torn by a crash fails the WAL frame checksums and is
rolled back when the file is next opened, so the journal ends at the last whole record. Each record also
carries a CRC32 of its body, checked on every read: a damaged record is logged, counted and skipped, never
fatal.

Tables: `entries` (the append-only records, see journal.records), `calls` (an index of each call's outcome
and whether the ticket database holds it), `reserved_numbers` (ticket numbers reserved from the database
for use while it is away), `attachments` (references made after the call, such as its recording and its
transcript, waiting for the call's ticket) and `transcript_jobs` (durable transcription jobs).
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from journal.records import (DatabaseMissed, JournaledCall, LeftIncomplete, Record, RecordError, Submitted,
                             Written, decode, decode_values, encode, encode_values, fold)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    body TEXT NOT NULL,
    crc INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_call ON entries (call_id, seq);
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY,
    first_at TEXT NOT NULL,
    outcome TEXT,
    ended_at TEXT,
    written_at TEXT
);
CREATE INDEX IF NOT EXISTS calls_to_write ON calls (written_at, outcome);
CREATE TABLE IF NOT EXISTS reserved_numbers (
    number TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    reserved_at TEXT NOT NULL,
    call_id TEXT UNIQUE,
    taken_at TEXT
);
CREATE TABLE IF NOT EXISTS attachments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    body TEXT NOT NULL,
    crc INTEGER NOT NULL,
    queued_at TEXT NOT NULL,
    done_at TEXT,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS attachments_to_write ON attachments (done_at, call_id);
CREATE TABLE IF NOT EXISTS transcript_jobs (
    call_id TEXT PRIMARY KEY,
    recording TEXT NOT NULL,
    language TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    transcript TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    finished_at TEXT
);
"""
JOB_QUEUED, JOB_TRANSCRIBED, JOB_FAILED = "queued", "transcribed", "failed"
ATTACHED, NO_TICKET = "attached", "no ticket"  # how an attachment ended


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Attachment:
    """References made after the call (its whole recording, its transcript) for the call's ticket: kept
    here until the ticket is in the database, then set on it (journal.replayer)."""

    id: int
    call_id: str
    actor: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class TranscriptJob:
    """A recorded call to transcribe (queued), transcribed (the transcript is an attachment), or failed."""

    call_id: str
    recording: str
    language: str
    state: str
    transcript: str | None
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class JournalStatus:
    """Counts for `python -m journal status` and the node's log."""

    calls_in_flow: int
    calls_to_write: int
    calls_written: int
    reserved_unused: int
    reserved_taken_unwritten: int
    attachments_to_write: int
    transcripts: dict[str, int]
    damaged_records: int


class Journal:
    """One node's journal file. Thread-safe: one connection, one lock; every method is one transaction."""

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.damaged_records = 0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            raise OSError(f"{self.path}: SQLite would not use WAL mode here (got {mode!r}); "
                          "put the journal on a local file system")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise OSError(f"{self.path}: journal schema {version} is newer than this code ({SCHEMA_VERSION})")
        self._db.executescript(SCHEMA)  # idempotent (IF NOT EXISTS), its own transaction
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT under the lock: the commit is durable (fsync'd) when this returns."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- what callers say ------------------------------------------------------------------------------

    def append(self, *records: Record) -> None:
        """Append records (all of them or none) durably, before returning."""
        with self._transaction() as db:
            for record in records:
                self._insert(db, record)

    def _insert(self, db: sqlite3.Connection, record: Record) -> None:
        body = encode(record)
        at = record.at.isoformat()
        db.execute("INSERT INTO entries (call_id, kind, at, body, crc) VALUES (?, ?, ?, ?, ?)",
                   (record.call_id, record.kind, at, body, zlib.crc32(body.encode())))
        db.execute("INSERT OR IGNORE INTO calls (call_id, first_at) VALUES (?, ?)", (record.call_id, at))
        if isinstance(record, Submitted):
            db.execute("UPDATE calls SET outcome = 'submitted', ended_at = ? WHERE call_id = ?",
                       (at, record.call_id))
        elif isinstance(record, LeftIncomplete):
            db.execute("UPDATE calls SET outcome = 'incomplete', ended_at = ? "
                       "WHERE call_id = ? AND outcome IS NULL", (at, record.call_id))
        elif isinstance(record, Written):
            db.execute("UPDATE calls SET written_at = ? WHERE call_id = ?", (at, record.call_id))

    def records(self, call_id: str) -> list[Record]:
        """The call's records in order; damaged or undecodable ones are logged, counted and skipped."""
        with self._lock:
            rows = self._db.execute("SELECT seq, kind, body, crc FROM entries WHERE call_id = ? ORDER BY seq",
                                    (call_id,)).fetchall()
        records = []
        for seq, kind, body, crc in rows:
            if zlib.crc32(body.encode()) != crc:
                self._damaged(call_id, seq, "checksum mismatch")
                continue
            try:
                records.append(decode(kind, call_id, body))
            except RecordError as error:
                self._damaged(call_id, seq, str(error))
        return records

    def _damaged(self, call_id: str, seq: int, why: str) -> None:
        self.damaged_records += 1
        log.error("journal %s: record %d of call %s skipped: %s", self.path, seq, call_id, why)

    def call(self, call_id: str) -> JournaledCall | None:
        records = self.records(call_id)
        return fold(call_id, records) if records else None

    def calls_to_write(self) -> list[JournaledCall]:
        """Ended calls the ticket database does not hold yet, oldest first (a call none of whose records
        can be read is left out and logged)."""
        with self._lock:
            ids = [row[0] for row in self._db.execute(
                "SELECT call_id FROM calls WHERE written_at IS NULL AND outcome IS NOT NULL "
                "ORDER BY ended_at, rowid")]
        return [call for call_id in ids if (call := self.call(call_id)) is not None]

    def calls_in_flow(self) -> list[str]:
        """Calls with records but no outcome: in progress now, or cut off by a stop of the node."""
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT call_id FROM calls WHERE outcome IS NULL")]

    def end_calls_in_flow(self, reason: str) -> list[str]:
        """At node start, before answering calls: calls a previous run left in the flow (crash, kill) end
        as incomplete, so the replayer writes what their callers said."""
        now = self.clock()
        with self._transaction() as db:
            ids = [row[0] for row in db.execute("SELECT call_id FROM calls WHERE outcome IS NULL")]
            for call_id in ids:
                self._insert(db, LeftIncomplete(call_id, reason, now))
        return ids

    def missed_database(self, call_id: str, error: str) -> None:
        self.append(DatabaseMissed(call_id, error[:500], self.clock()))

    def written(self, call_id: str, number: str, by: str) -> None:
        self.append(Written(call_id, number, by, self.clock()))

    # -- ticket numbers reserved for when the database is away -------------------------------------------

    def add_reserved_numbers(self, day: str, numbers: Sequence[str]) -> None:
        """Numbers the ticket database reserved for this node on `day` (a label such as 2026-12-02)."""
        now = self.clock().isoformat()
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO reserved_numbers (number, day, reserved_at) VALUES (?, ?, ?)",
                           [(number, day, now) for number in numbers])

    def unused_reserved(self, day: str | None = None) -> list[str]:
        query = "SELECT number FROM reserved_numbers WHERE call_id IS NULL"
        params: tuple[str, ...] = ()
        if day is not None:
            query, params = query + " AND day = ?", (day,)
        with self._lock:
            return [row[0] for row in self._db.execute(query + " ORDER BY number", params)]

    def submit_with_reserved_number(self, record: Submitted, preferred_day: str, error: str) -> Submitted:
        """The database is away at submit: record that, take a reserved number (this call's own if it took
        one before; else the lowest of `preferred_day`, else the newest other day's) and record the submit
        with it, in one commit. Without any number the submit is recorded with number_source "none"."""
        with self._transaction() as db:
            self._insert(db, DatabaseMissed(record.call_id, error[:500], record.at))
            number = self._take_reserved(db, record.call_id, preferred_day)
            told = Submitted(record.call_id, record.caller, record.fields, record.at,
                             number=number or "", number_source="reserved" if number else "none",
                             deadline=record.deadline)
            self._insert(db, told)
        return told

    def _take_reserved(self, db: sqlite3.Connection, call_id: str, preferred_day: str) -> str | None:
        row = db.execute("SELECT number FROM reserved_numbers WHERE call_id = ?", (call_id,)).fetchone()
        if row is None:
            row = db.execute("SELECT number FROM reserved_numbers WHERE call_id IS NULL "
                             "ORDER BY day = ? DESC, day DESC, number LIMIT 1", (preferred_day,)).fetchone()
        if row is None:
            return None
        db.execute("UPDATE reserved_numbers SET call_id = ?, taken_at = ? WHERE number = ?",
                   (call_id, self.clock().isoformat(), row[0]))
        return str(row[0])

    # -- references made after the call, for its ticket -----------------------------------------------------

    def attach(self, call_id: str, fields: Mapping[str, Any], actor: str) -> int:
        """Keep `fields` to set on the call's ticket (by `actor`) once it is in the database; returns its id.
        The same fields for the same call again (a repeated end-of-call event) are kept once."""
        body = encode_values(fields)
        with self._transaction() as db:
            same = db.execute("SELECT id FROM attachments WHERE call_id = ? AND actor = ? AND body = ?",
                              (call_id, actor, body)).fetchone()
            if same is not None:
                return int(same[0])
            cursor = db.execute("INSERT INTO attachments (call_id, actor, body, crc, queued_at) VALUES (?, ?, ?, ?, ?)",
                                (call_id, actor, body, zlib.crc32(body.encode()), self.clock().isoformat()))
            return int(cursor.lastrowid or 0)

    def attachments_to_write(self) -> list[Attachment]:
        """Attachments not yet set on their ticket, oldest first (a damaged one is logged and skipped)."""
        with self._lock:
            rows = self._db.execute("SELECT id, call_id, actor, body, crc FROM attachments WHERE done_at IS NULL "
                                    "ORDER BY id").fetchall()
        found = []
        for attachment_id, call_id, actor, body, crc in rows:
            try:
                if zlib.crc32(body.encode()) != crc:
                    raise ValueError("checksum mismatch")
                found.append(Attachment(attachment_id, call_id, actor, decode_values(body)))
            except ValueError as error:
                self._damaged(call_id, attachment_id, f"attachment: {error}")
        return found

    def attachment_done(self, attachment_id: int, outcome: str = ATTACHED) -> None:
        with self._transaction() as db:
            db.execute("UPDATE attachments SET done_at = ?, outcome = ? WHERE id = ?",
                       (self.clock().isoformat(), outcome, attachment_id))

    # -- durable transcription jobs ---------------------------------------------------------------------

    def queue_transcript(self, call_id: str, recording: str, language: str) -> bool:
        """False when the call already has a job (a repeated end-of-call event queues nothing)."""
        with self._transaction() as db:
            cursor = db.execute("INSERT OR IGNORE INTO transcript_jobs (call_id, recording, language, queued_at) "
                                "VALUES (?, ?, ?, ?)", (call_id, recording, language, self.clock().isoformat()))
            return cursor.rowcount == 1

    def transcript_jobs(self, *states: str) -> list[TranscriptJob]:
        marks = ", ".join("?" * len(states))
        with self._lock:
            rows = self._db.execute(
                "SELECT call_id, recording, language, state, transcript, attempts, last_error "
                f"FROM transcript_jobs WHERE state IN ({marks}) ORDER BY queued_at", states).fetchall()
        return [TranscriptJob(*row) for row in rows]

    def transcript_job(self, call_id: str) -> TranscriptJob | None:
        with self._lock:
            row = self._db.execute("SELECT call_id, recording, language, state, transcript, attempts, last_error "
                                   "FROM transcript_jobs WHERE call_id = ?", (call_id,)).fetchone()
        return TranscriptJob(*row) if row else None

    def transcript_done(self, call_id: str, transcript: str) -> None:
        self._set_job(call_id, "state = ?, transcript = ?, attempts = attempts + 1, last_error = NULL, "
                      "finished_at = ?", (JOB_TRANSCRIBED, transcript, self.clock().isoformat()))

    def transcript_failed(self, call_id: str, error: str, *, give_up_after: int) -> bool:
        """Count a failed attempt; True when the job is given up (state failed) after `give_up_after`."""
        with self._transaction() as db:
            db.execute("UPDATE transcript_jobs SET attempts = attempts + 1, last_error = ? WHERE call_id = ?",
                       (error[:500], call_id))
            db.execute("UPDATE transcript_jobs SET state = ?, finished_at = ? WHERE call_id = ? AND attempts >= ?",
                       (JOB_FAILED, self.clock().isoformat(), call_id, give_up_after))
            row = db.execute("SELECT state FROM transcript_jobs WHERE call_id = ?", (call_id,)).fetchone()
        return row is not None and row[0] == JOB_FAILED

    def _set_job(self, call_id: str, assignments: str, params: tuple[object, ...]) -> None:
        with self._transaction() as db:
            db.execute(f"UPDATE transcript_jobs SET {assignments} WHERE call_id = ?", (*params, call_id))

    # -- keeping it small -------------------------------------------------------------------------------

    def prune(self, older_than: timedelta) -> int:
        """Forget calls written to the database, with their finished transcription jobs, set attachments
        and used numbers, that ended more than `older_than` ago, and unused reservations as old. Returns the
        number of calls forgotten. Unwritten calls and anything still to do for a call are never pruned."""
        cutoff = (self.clock() - older_than).isoformat()
        with self._transaction() as db:
            ids = [row[0] for row in db.execute(
                "SELECT c.call_id FROM calls c LEFT JOIN transcript_jobs j ON j.call_id = c.call_id "
                "WHERE c.written_at IS NOT NULL AND c.ended_at < ? AND (j.state IS NULL OR j.state <> ?) "
                "AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.call_id = c.call_id AND a.done_at IS NULL)",
                (cutoff, JOB_QUEUED))]
            for call_id in ids:
                for table in ("entries", "calls", "transcript_jobs", "reserved_numbers", "attachments"):
                    db.execute(f"DELETE FROM {table} WHERE call_id = ?", (call_id,))
            db.execute("DELETE FROM reserved_numbers WHERE call_id IS NULL AND reserved_at < ?", (cutoff,))
        return len(ids)

    def status(self) -> JournalStatus:
        with self._lock:
            one = lambda sql: self._db.execute(sql).fetchone()[0]  # noqa: E731 - local shorthand
            jobs = dict(self._db.execute("SELECT state, COUNT(*) FROM transcript_jobs GROUP BY state").fetchall())
            return JournalStatus(
                calls_in_flow=one("SELECT COUNT(*) FROM calls WHERE outcome IS NULL"),
                calls_to_write=one("SELECT COUNT(*) FROM calls WHERE outcome IS NOT NULL AND written_at IS NULL"),
                calls_written=one("SELECT COUNT(*) FROM calls WHERE written_at IS NOT NULL"),
                reserved_unused=one("SELECT COUNT(*) FROM reserved_numbers WHERE call_id IS NULL"),
                reserved_taken_unwritten=one(
                    "SELECT COUNT(*) FROM reserved_numbers r JOIN calls c ON c.call_id = r.call_id "
                    "WHERE c.written_at IS NULL"),
                attachments_to_write=one("SELECT COUNT(*) FROM attachments WHERE done_at IS NULL"),
                transcripts=jobs, damaged_records=self.damaged_records)
