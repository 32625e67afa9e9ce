"""`python -m ivr.softphone call ...` as a tester runs it: a real process, real Kamailio, a pyVoIP callee."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave

import pytest

from inifile import ROOT, config_path
from ivr.softphone.__main__ import config_defaults

pytestmark = pytest.mark.sip


def softphone_cli(sip_server, extension: str, *args: str, password: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ivr.softphone", "call", *args, "--server", f"{sip_server.host}:{sip_server.port}",
               "--extension", extension]
    env = dict(os.environ, HOTLINE_SOFTPHONE_PASSWORD=password or sip_server.password(extension))
    return subprocess.run(command, capture_output=True, text=True, timeout=90, env=env)


@pytest.fixture
def far_end(pyvoip_callee):
    return pyvoip_callee("1018", hangup_after=4.0)


def test_call_prints_a_json_summary_and_records_what_it_heard(sip_server, far_end, tmp_path):
    recording = tmp_path / "heard.wav"
    result = softphone_cli(sip_server, "1011", "1018", "--dtmf", "3,*@2.5", "--codec", "pcmu",
                           "--record", str(recording), "--json", "--hold", "6")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["answered"] is True and summary["sip_status"] == 200
    assert summary["digits_sent"] == "3*" and summary["ended_by"] == "remote"
    assert 3.0 < summary["connected_seconds"] < 8.0
    assert summary["recording"] == str(recording)
    assert far_end.ended.wait(5) and far_end.digits == "3*"
    with wave.open(str(recording)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        assert wav.getnframes() > 8000 * 2  # the callee's 2 s tone at least


def test_a_failing_scenario_step_is_reported_with_its_number(sip_server, far_end, tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("- dtmf: '7'\n- expect-hangup: {within: 0.5}\n")
    result = softphone_cli(sip_server, "1012", "1018", "--scenario", str(scenario))
    assert result.returncode == 1
    assert "FAILED: step 2 (line 2) [expect-hangup]: the far end did not hang up within 0.5 s" in result.stdout


def test_scenario_mistakes_stop_before_dialling(sip_server, tmp_path):
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("- wait: 1\n- dtmf: 'x'\n")
    result = softphone_cli(sip_server, "1013", "1018", "--scenario", str(scenario))
    assert result.returncode == 64
    assert "step 2 (line 2) [dtmf]" in result.stderr


def test_wrong_password_exits_2_with_the_reason(sip_server):
    result = softphone_cli(sip_server, "1014", "12345", "--json", password="wrong")
    assert result.returncode == 2
    assert "403" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("extension", [None, "1014"])
def test_server_extension_and_its_password_default_to_the_configuration(sip_server, far_end, tmp_path, extension):
    conf = tmp_path / "sip.conf"
    conf.write_text(f"[sip]\nregistrar_host = {sip_server.host}\nregistrar_port = {sip_server.port}\n"
                    f"password = unused\n\n[test_extensions]\n1013 = {sip_server.password('1013')}\n"
                    f"1014 = {sip_server.password('1014')}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")} | {"HOTLINE_SIP_CONF": str(conf)}
    chosen = ["--extension", extension] if extension else []  # the first one, or another with its own password
    result = subprocess.run([sys.executable, "-m", "ivr.softphone", "call", "1018", *chosen, "--json", "--hold", "0"],
                            capture_output=True, text=True, timeout=90, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["answered"] is True


def test_after_make_run_on_a_fresh_clone_the_softphone_reads_the_same_example_file(monkeypatch):
    """The README's `python -m ivr.softphone call 12345 ...` with no sip.conf and no $HOTLINE_SIP_CONF: the
    softphone takes its server, extension and password from sip.conf.example, the file `make run` used
    (both ask inifile.config_path)."""
    monkeypatch.delenv("HOTLINE_SIP_CONF", raising=False)
    if (ROOT / "sip.conf").exists():
        pytest.skip("this checkout has a sip.conf of its own, which both would read")
    assert config_path() == ROOT / "sip.conf.example"
    defaults = config_defaults(config_path())
    assert (defaults["server"], defaults["extension"], defaults["password:1001"]) == ("127.0.0.1:5060", "1001",
                                                                                    "test1001")


def test_a_broken_sip_conf_is_named(tmp_path):
    conf = tmp_path / "sip.conf"
    conf.write_text("[sip]\nregistrar_port = many\n")
    result = subprocess.run([sys.executable, "-m", "ivr.softphone", "call", "12345"], capture_output=True,
                            text=True, timeout=60, env=dict(os.environ, HOTLINE_SIP_CONF=str(conf)))
    assert result.returncode == 64
    assert "registrar_port" in result.stderr and str(conf) in result.stderr
