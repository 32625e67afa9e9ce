"""`python -m tickets due` as an administrator runs it."""
import subprocess
import sys


def due(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tickets", "due", *args], capture_output=True, text=True,
                          timeout=60)


def test_working_days_over_national_day():
    result = due("--received", "2026-09-30T17:00", "--working-days", "2")
    assert (result.returncode, result.stdout, result.stderr) == (0, "2026-10-09T23:59:59+08:00\n", "")


def test_level_and_rule():
    assert due("--received", "2026-02-14T22:30:00+08:00", "--level", "1").stdout == "2026-02-15T00:30:00+08:00\n"
    assert due("--received", "2026-09-30T09:00", "--rule", "appeal_investigation").stdout == (
        "2026-10-10T23:59:59+08:00\n")


def test_past_the_data_warns_and_takes_overrides():
    result = due("--received", "2026-12-31T09:00", "--rule", "appeal_resolution", "--override", "2027-01-01=holiday")
    assert result.returncode == 0
    assert result.stdout == "2027-01-12T23:59:59+08:00\n"
    assert "statutory holiday calendar has no data" in result.stderr


def test_bad_input_is_a_clear_error():
    result = due("--received", "yesterday", "--level", "1")
    assert result.returncode == 2 and "not an ISO 8601 time: 'yesterday'" in result.stderr
    result = due("--received", "2026-01-05T09:00", "--rule", "nap")
    assert result.returncode == 2 and "unknown deadline rule 'nap'" in result.stderr
