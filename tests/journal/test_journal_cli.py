"""python -m journal: status, calls to write and one call's records, read beside a running node."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from journal.__main__ import main
from journal.records import DraftSaved, LeftIncomplete, Submitted
from journal.store import Journal

T0 = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[2]


def test_status_calls_and_show_while_the_journal_is_open(tmp_path, capsys):
    path = tmp_path / "node.sqlite3"
    with Journal(path) as journal:  # the node holds it open meanwhile
        journal.add_reserved_numbers("2026-12-02", ["2633600041", "2633600042"])
        journal.append(DraftSaved("call-1", "1001", {"content": "단수", "language": "ko"}, T0))
        journal.submit_with_reserved_number(Submitted("call-1", "1001", {"caller_name": "김철수"}, T0),
                                            "2026-12-02", "OperationalError: away")
        journal.append(DraftSaved("call-2", "1002", {"language": "ko"}, T0))
        journal.append(LeftIncomplete("call-2", "transferred to 110", T0))
        journal.append(DraftSaved("call-3", "1003", {"content": "통화 중"}, T0))

        assert main(["status", str(path)]) == 0
        status = json.loads(capsys.readouterr().out)
        assert (status["calls_in_flow"], status["calls_to_write"], status["reserved_unused"],
                status["reserved_taken_unwritten"]) == (1, 2, 1, 1)

        assert main(["calls", str(path)]) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [(c["call_id"], c["outcome"], c["number"], c["number_source"]) for c in lines] == [
            ("call-1", "submitted", "2633600041", "reserved"), ("call-2", "incomplete", "", "")]

        assert main(["show", str(path), "call-1"]) == 0
        kinds = [json.loads(line)["kind"] for line in capsys.readouterr().out.splitlines()]
        assert kinds == ["draft", "db_missed", "submit"]


def test_a_missing_journal_or_call_is_an_error_not_a_new_file(tmp_path, capsys):
    assert main(["status", str(tmp_path / "nowhere.sqlite3")]) == 2
    assert "no journal at" in capsys.readouterr().err and not (tmp_path / "nowhere.sqlite3").exists()
    Journal(tmp_path / "node.sqlite3").close()
    assert main(["show", str(tmp_path / "node.sqlite3"), "call-9"]) == 1
    assert "no records of call call-9" in capsys.readouterr().err


def test_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "journal", "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "status" in result.stdout and "show" in result.stdout
