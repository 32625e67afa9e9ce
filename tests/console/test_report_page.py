"""The printable periodic report page: the report's figures for operators and supervisors, not for units."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


def test_the_weekly_report_page_shows_the_weeks_figures(site):
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    site.sign_in("operator")
    page = site.client.get(f"/reports?period=weekly&date={today.isoformat()}")
    assert page.status_code == 200, page.text
    assert "热线运行情况周报" in page.text and "@media print" not in page.text  # the style sheet carries it
    monday = today - timedelta(days=today.weekday())
    assert f"{monday.isoformat()} – {(monday + timedelta(days=6)).isoformat()}" in page.text
    rates = re.search(r'<table class="tickets" id="report-rates">.*?<tbody><tr><td>(\d+)</td>', page.text, re.S)
    assert rates.group(1) == "1"  # the call received now; the other ticket is 8 days old
    assert f'href="/reports?period=weekly&amp;date={(today - timedelta(days=7)).isoformat()}"' in page.text
    default = site.client.get("/reports")
    assert "热线运行情况日报" in default.text and (today - timedelta(days=1)).isoformat() in default.text
    bad = site.client.get("/reports?date=2026-13-01")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "date"]
    site.sign_in("water")
    assert site.client.get("/reports").status_code == 403  # units do not get the report
