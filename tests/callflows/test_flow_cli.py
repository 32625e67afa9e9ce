"""`python -m callflows check|show` as an administrator runs them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import callflows

HOTLINE = Path(callflows.__file__).parent / "flows" / "hotline12345.yaml"
ROOT = Path(callflows.__file__).parent.parent


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callflows", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


def test_check_clean_flow_exits_zero():
    result = cli("check", str(HOTLINE))
    assert result.returncode == 0
    assert result.stdout == f"{HOTLINE}: OK\n"


def test_check_reports_every_mistake_and_exits_one(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("languages: [zh]\nstart: a\nnodes:\n  a: {kind: play, prompt: {zh: 你好}, next: b}\n"
                      "  c: {kind: hangup, colour: red}\n", encoding="utf-8")
    result = cli("check", str(HOTLINE), str(broken))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{HOTLINE}: OK",
        f"{broken}:4: 'next' of play node 'a' points to 'b', which is not a node of this flow",
        f"{broken}:5: node 'c' is unreachable from start 'a'",
        f"{broken}:5: unknown field 'colour' in hangup node 'c'; expected one of: prompt"]


def test_check_missing_file(tmp_path):
    result = cli("check", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1 and "nope.yaml: no such file" in result.stderr


def test_show_prints_a_mermaid_flowchart():
    result = cli("show", str(HOTLINE))
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[:2] == ["flowchart TD", "    start([start]) --> n_welcome"]
    assert '    n_emergency -- "9" --> n_to_police' in lines
    assert '    n_has_type -- "var=request_type, empty=True" --> n_type_menu' in lines
    assert '    n_confirm_type -- "1 / 是 / 네" --> n_route' in lines
    assert '    anywhere(("any point")) -. "0" .-> n_operator' in lines
