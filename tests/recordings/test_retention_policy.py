"""The retention policy (days per category, a default, for ever) and deleting exactly the files asked."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from recordings.retention import RetentionPolicy, audio_older_than, delete_audio

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def test_days_by_category_then_default_then_for_ever():
    policy = RetentionPolicy(default_days=90, days_by_category={"举报": 730})
    assert (policy.keep_days("举报"), policy.keep_days("咨询"), policy.keep_days(None)) == (730, 90, 90)
    assert policy.expired(NOW - timedelta(days=90), "咨询", NOW)
    assert not policy.expired(NOW - timedelta(days=89, hours=23), "咨询", NOW)
    assert not policy.expired(NOW - timedelta(days=400), "举报", NOW)
    assert (policy.shortest_days, policy.longest_days) == (90, 730)
    forever = RetentionPolicy(days_by_category={"咨询": 30})
    assert not forever.expired(NOW - timedelta(days=9999), "投诉", NOW) and forever.longest_days is None
    assert RetentionPolicy().shortest_days is None


@pytest.mark.parametrize("days", [0, -3, 1.5, "30"])
def test_nonsense_periods_are_refused(days):
    with pytest.raises(ValueError):
        RetentionPolicy(default_days=days)


def test_delete_audio_reports_only_what_it_deleted(tmp_path):
    files = [tmp_path / f"{n}.wav" for n in range(3)]
    for path in files[:2]:
        path.write_bytes(b"RIFF")
    assert delete_audio(files) == files[:2]
    assert not any(path.exists() for path in files)


def test_audio_older_than_finds_old_audio_only(tmp_path):
    old, new, text = tmp_path / "a" / "old.wav", tmp_path / "new.wav", tmp_path / "a" / "old.transcript.json"
    old.parent.mkdir()
    for path in (old, new, text):
        path.write_bytes(b"x")
    past = (NOW - timedelta(days=40)).timestamp()
    os.utime(old, (past, past))
    os.utime(text, (past, past))
    os.utime(new, (NOW.timestamp(), NOW.timestamp()))
    assert audio_older_than(tmp_path, NOW - timedelta(days=30)) == [old]
