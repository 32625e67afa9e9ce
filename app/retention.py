"""Deleting old call audio on schedule, by the ticket's request type (recordings.retention.RetentionPolicy),
and recording in each ticket's history which files were deleted and under which rule. Transcripts (text)
stay; the console then says the audio was deleted. Audio of calls that never became a ticket is deleted
once it is older than every category's time.

Configured in the [retention] section: `default = DAYS` and one line per request type, e.g. `举报 = 730`;
without a section nothing is deleted.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from inifile import SettingError
from recordings.retention import RetentionPolicy, audio_older_than, delete_audio
from tickets.models import REQUEST_TYPES, Ticket
from tickets.periodic import Periodic
from tickets.service import record_event

log = logging.getLogger(__name__)
ACTOR = "retention"
ACTION = "retention"
AUDIO_FIELDS = ("call_recording_ref", "recording_ref", "name_recording_ref", "address_recording_ref")
BATCH = 500


def retention_policy(values: dict[str, str]) -> RetentionPolicy:
    """The [retention] section's values; a bad key or value raises SettingError naming it."""
    default: int | None = None
    by_type: dict[str, int] = {}
    for key, raw in values.items():
        try:
            days = int(raw)
        except ValueError:
            raise SettingError(key, f"must be a number of days, got {raw!r}") from None
        if key == "default":
            default = days
        elif key in REQUEST_TYPES:
            by_type[key] = days
        else:
            raise SettingError(key, f"is not 'default' nor a request type ({', '.join(REQUEST_TYPES)})")
    try:
        return RetentionPolicy(default, by_type)
    except ValueError as error:
        key, _, message = str(error).partition(": ")
        raise SettingError(key, message) from None


@dataclass
class RetentionReport:
    by_ticket: dict[str, list[Path]] = field(default_factory=dict)  # ticket number -> deleted files
    untracked: list[Path] = field(default_factory=list)


class RetentionJob:
    def __init__(self, session_factory: sessionmaker[Session], policy: RetentionPolicy, recordings_dir: Path, *,
                 interval_seconds: float = 3600.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.session_factory = session_factory
        self.policy = policy
        self.recordings_dir = recordings_dir
        self.clock = clock
        self._rounds = Periodic("audio-retention", self.run_once, interval_seconds, first_round_at_once=True)

    def run_once(self, now: datetime | None = None) -> RetentionReport:
        now = now or self.clock()
        report = RetentionReport()
        shortest = self.policy.shortest_days
        if shortest is None:
            return report
        with self.session_factory() as session:
            candidates = session.execute(
                select(Ticket.id).where(Ticket.call_time <= now - timedelta(days=shortest),
                                        or_(*(getattr(Ticket, name).is_not(None) for name in AUDIO_FIELDS)))
                .order_by(Ticket.call_time).limit(BATCH)).scalars().all()
        for ticket_id in candidates:
            with self.session_factory.begin() as session:
                ticket = session.get(Ticket, ticket_id)
                if ticket is None or not self.policy.expired(ticket.call_time, ticket.request_type, now):
                    continue
                files = [Path(ref) for ref in (getattr(ticket, name) for name in AUDIO_FIELDS) if ref]
                deleted = delete_audio(files)
                if deleted:
                    days = self.policy.keep_days(ticket.request_type)
                    note = (f"deleted {len(deleted)} audio file(s) after {days} days "
                            f"({ticket.request_type or 'default'}): {', '.join(p.name for p in deleted)}")
                    record_event(session, ticket, ACTOR, ACTION, ticket.status, note, now)
                    report.by_ticket[ticket.number] = deleted
        longest = self.policy.longest_days
        if longest is not None and self.recordings_dir.is_dir():
            old = audio_older_than(self.recordings_dir, now - timedelta(days=longest))
            with self.session_factory() as session:
                referenced = self._referenced(session, old)
            # a ticket's files are deleted by the pass above, with a history line (next round if batched out)
            report.untracked = delete_audio(path for path in old if str(path) not in referenced)
        if report.by_ticket or report.untracked:
            log.info("retention: audio deleted for %d tickets, %d files of calls without a ticket",
                     len(report.by_ticket), len(report.untracked))
        return report

    @staticmethod
    def _referenced(session: Session, paths: list[Path]) -> set[str]:
        names = [str(path) for path in paths]
        found: set[str] = set()
        for start in range(0, len(names), BATCH):
            chunk = names[start:start + BATCH]
            for row in session.execute(select(*(getattr(Ticket, name) for name in AUDIO_FIELDS)).where(
                    or_(*(getattr(Ticket, name).in_(chunk) for name in AUDIO_FIELDS)))):
                found.update(ref for ref in row if ref)
        return found

    def start(self) -> None:
        """A round now, then every `interval_seconds` (a failed round, the disk or database away, is retried)."""
        self._rounds.start()

    def stop(self) -> None:
        self._rounds.stop()
