"""Deadline countdowns (the domain's reminder point is "nearly due") and the SVG charts."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from console.charts import columns, horizontal_bars, rate_ring
from console.countdown import countdown, duration_text

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)


def deadline(kind, due, remind, met=False):
    return SimpleNamespace(kind=kind, due_at=NOW + due, remind_at=NOW + remind, is_open=not met)


def ticket(status="dispatched", due=timedelta(hours=5), remind=timedelta(hours=1), overdue=False, extra=()):
    deadlines = [] if due is None else [deadline("response", due, remind)]
    return SimpleNamespace(status=status, deadlines=[*deadlines, *extra], overdue=overdue)


def test_time_left_nearly_due_and_overdue():
    ok = countdown(ticket(), NOW, "zh")
    assert (ok.state, ok.seconds_left, ok.text, ok.kind) == ("ok", 5 * 3600, "剩余 5小时0分", "response")
    near = countdown(ticket(remind=-timedelta(minutes=1)), NOW, "en")
    assert (near.state, near.text) == ("near", "5 h 0 min left")
    over = countdown(ticket(due=-timedelta(days=1, hours=2, minutes=30)), NOW, "zh")
    assert (over.state, over.seconds_left, over.text) == ("overdue", -95400, "超期 1天2小时")
    assert countdown(ticket(status="closed", due=None), NOW, "zh").state == "settled"
    assert countdown(ticket(status="closed", due=None, overdue=True), NOW, "en").text == "was late"
    assert countdown(ticket(status="draft", due=None), NOW, "en").text == "no deadline"


def test_the_nearest_open_deadline_counts():
    unit_reply = deadline("unit_reply", timedelta(hours=2), timedelta(hours=-1))
    met = deadline("complaint_review", timedelta(hours=-3), timedelta(hours=-4), met=True)
    nearest = countdown(ticket(extra=[unit_reply, met]), NOW, "en")
    assert (nearest.kind, nearest.state, nearest.seconds_left) == ("unit_reply", "near", 7200)


def test_duration_shows_the_two_largest_units():
    assert duration_text(59, "en") == "0 min"
    assert duration_text(3 * 86400 + 5 * 60, "en") == "3 d 0 h"
    assert duration_text(-(2 * 3600 + 7 * 60), "zh") == "2小时7分"


def test_charts_scale_to_the_largest_value_and_escape_labels():
    svg = str(horizontal_bars([("停水", 10), ("<script>", 5)], width=520, label_width=150))
    assert svg.count("<rect") == 4 and "&lt;script&gt;" in svg and "<script>" not in svg
    assert 'width="310.0"' in svg and 'width="155.0"' in svg  # full bar 520-150-60, half bar
    assert "—" in str(horizontal_bars([], empty="—"))
    hours = str(columns([0, 2, 4], ["00", "01", "02"], height=200, every=1))
    assert 'height="176.0"' in hours and 'height="88.0"' in hours and ">01</text>" in hours
    ring = str(rate_ring(0.5, size=120))
    assert "50.0%" in ring and "—" in str(rate_ring(None))
