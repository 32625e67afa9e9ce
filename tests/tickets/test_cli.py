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


def test_config_file_sets_rules_and_overrides(tmp_path):
    config = tmp_path / "sip.conf"
    config.write_text("[tickets]\nunit_reply = 3wd\nlevel_2 = 12h\nholidays = 2026-03-03\n", encoding="utf-8")
    assert due("--received", "2026-03-02T10:00", "--rule", "unit_reply", "--config", str(config)).stdout == (
        "2026-03-06T23:59:59+08:00\n")  # Tue 3rd made a holiday: Wed, Thu, Fri
    assert due("--received", "2026-03-02T10:00", "--level", "2", "--config", str(config)).stdout == (
        "2026-03-02T22:00:00+08:00\n")
    assert due("--received", "2026-03-02T10:00", "--working-days", "1", "--config", str(config),
               "--override", "2026-03-03=work").stdout == "2026-03-03T23:59:59+08:00\n"
    config.write_text("[tickets]\nunit_reply = soon\n", encoding="utf-8")
    result = due("--received", "2026-03-02T10:00", "--rule", "unit_reply", "--config", str(config))
    assert result.returncode == 2 and "[tickets] unit_reply must be a positive amount" in result.stderr
