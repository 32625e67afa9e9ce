"""Audio retention on the real databases (SQLite and PostgreSQL): exactly the expired files are deleted, by
the ticket's request type, and each ticket's history says which and why; transcripts stay; audio of calls
without a ticket goes once older than every category's time; the [retention] section is checked."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.retention import RetentionJob, retention_policy
from inifile import ConfigError, IniFile
from recordings.retention import RetentionPolicy
from tickets import service
from tests.tickets.conftest import (db_url, engine, migrated_postgres_url, postgres_databases,  # noqa: F401
                                    rules, session_factory)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
POLICY = RetentionPolicy(default_days=90, days_by_category={"举报": 365, "咨询": 30})


def audio(folder: Path, name: str, age_days: float | None = None) -> Path:
    path = folder / name
    path.write_bytes(b"RIFF....WAVE")
    if age_days is not None:
        moment = (NOW - timedelta(days=age_days)).timestamp()
        os.utime(path, (moment, moment))
    return path


def call(session, rules, folder: Path, label: str, request_type: str, age_days: float) -> tuple[int, list[Path]]:
    files = [audio(folder, f"{label}.wav"), audio(folder, f"{label}-request-1.wav"), audio(folder, f"{label}-name-1.wav")]
    transcript = folder / f"{label}.transcript.json"
    transcript.write_text("{}")
    ticket, _ = service.create_ticket(session, {
        "content": "路灯坏了", "request_type": request_type, "call_time": NOW - timedelta(days=age_days),
        "call_recording_ref": str(files[0]), "recording_ref": str(files[1]), "name_recording_ref": str(files[2]),
        "transcript_ref": str(transcript)}, rules=rules, actor="ivr", now=NOW - timedelta(days=age_days))
    return ticket.id, files


def test_exactly_the_expired_audio_is_deleted_and_each_ticket_records_it(session_factory, rules, tmp_path):
    with session_factory.begin() as session:
        complaint_old, complaint_old_files = call(session, rules, tmp_path, "complaint-old", "投诉", 91)
        complaint_new, complaint_new_files = call(session, rules, tmp_path, "complaint-new", "投诉", 89)
        report, report_files = call(session, rules, tmp_path, "report", "举报", 200)        # kept 365 days
        question, question_files = call(session, rules, tmp_path, "question", "咨询", 31)   # kept 30 days
    orphan_old = audio(tmp_path, "status-check-old.wav", age_days=366)   # a call that made no ticket
    orphan_new = audio(tmp_path, "status-check-new.wav", age_days=100)
    job = RetentionJob(session_factory, POLICY, tmp_path)

    result = job.run_once(NOW)

    with session_factory() as session:
        numbers = {service.get_ticket(session, i).number: i for i in (complaint_old, question)}
    assert {numbers[n]: paths for n, paths in result.by_ticket.items()} == {
        complaint_old: complaint_old_files, question: question_files}
    assert result.untracked == [orphan_old]
    survivors = {p for p in tmp_path.iterdir() if p.suffix == ".wav"}
    assert survivors == {*complaint_new_files, *report_files, orphan_new}
    assert (tmp_path / "complaint-old.transcript.json").exists()  # the text stays for review
    with session_factory() as session:
        [event] = [e for e in service.get_ticket(session, complaint_old).events if e.action == "retention"]
        assert (event.actor, event.at) == ("retention", NOW)
        assert event.note == ("deleted 3 audio file(s) after 90 days (投诉): complaint-old.wav, "
                              "complaint-old-request-1.wav, complaint-old-name-1.wav")
        assert "after 30 days (咨询)" in [e for e in service.get_ticket(session, question).events
                                           if e.action == "retention"][0].note
        assert not [e for e in service.get_ticket(session, report).events if e.action == "retention"]

    again = job.run_once(NOW + timedelta(hours=1))  # nothing left to delete: nothing recorded twice
    assert again.by_ticket == {} and again.untracked == []
    with session_factory() as session:
        assert len([e for e in service.get_ticket(session, complaint_old).events if e.action == "retention"]) == 1


def test_a_ticket_referring_to_old_audio_is_never_swept_without_its_history(session_factory, rules, tmp_path):
    with session_factory.begin() as session:
        ticket_id, files = call(session, rules, tmp_path, "report", "举报", 200)
    for path in files:  # older on disk than every category's time, but its ticket keeps it a year
        moment = (NOW - timedelta(days=400)).timestamp()
        os.utime(path, (moment, moment))
    result = RetentionJob(session_factory, POLICY, tmp_path).run_once(NOW)
    assert result.untracked == [] and all(path.exists() for path in files)


def test_no_policy_deletes_nothing(session_factory, rules, tmp_path):
    with session_factory.begin() as session:
        _, files = call(session, rules, tmp_path, "old", "投诉", 5000)
    assert RetentionJob(session_factory, RetentionPolicy(), tmp_path).run_once(NOW).by_ticket == {}
    assert all(path.exists() for path in files)


def test_the_retention_section_is_read_and_checked(tmp_path):
    config = tmp_path / "node.conf"
    config.write_text("[retention]\ndefault = 180\n举报 = 730\n[server]\n", encoding="utf-8")
    assert IniFile(config).parse("retention", retention_policy) == RetentionPolicy(180, {"举报": 730})
    config.write_text("[server]\n", encoding="utf-8")
    assert IniFile(config).parse("retention", retention_policy) == RetentionPolicy()
    for body, named in (("投诉 = soon\n", r"\[retention\] 投诉 must be a number of days"),
                        ("complaints = 3\n", r"\[retention\] complaints is not 'default' nor a request type"),
                        ("default = 0\n", r"\[retention\] default keep audio at least 1 day")):
        config.write_text("[retention]\n" + body, encoding="utf-8")
        with pytest.raises(ConfigError, match=named):
            IniFile(config).parse("retention", retention_policy)
