"""`make run` as an administrator meets it: server.py starts Kamailio, the IVR and the HTTP API from one INI
file; a simulated caller dials 12345 through the real SIP server; the API shows health and the call's
detail record; Ctrl-C stops everything cleanly. A broken configuration is refused with the key named."""
import configparser
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ivr.local_sip_server import free_udp_port, sip_options_ping

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "test-admin-token"


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(tmp_path: Path, sip_port: int, http_port: int) -> Path:
    """The shipped sip.conf.example with free ports and everything written under tmp_path."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "sip.conf.example", encoding="utf-8")
    config["sip"]["registrar_port"] = str(sip_port)
    config["server"].update({"http_port": str(http_port), "database_url": f"sqlite:///{tmp_path / 'tickets.sqlite3'}",
                             "recordings_dir": str(tmp_path / "recordings"),
                             "prompt_cache_dir": str(tmp_path / "prompts"), "admin_token": ADMIN_TOKEN})
    config["journal"]["path"] = str(tmp_path / "journal" / "node.sqlite3")
    config["tickets"]["holidays"] = "2027-01-01"
    config["callflows"]["flow"] = "demo"  # ivr's press-1/2 menu: no speech models needed
    path = tmp_path / "sip.conf"
    with path.open("w", encoding="utf-8") as file:
        config.write(file)
    return path


@contextmanager
def running_server(config: Path, log: Path, *, timeout: float = 180.0) -> Iterator[str]:
    """server.py on `config` for the block; yields the API's base URL once the IVR has registered (a loaded
    machine may take minutes to load speech models and synthesise prompts) and stops it with Ctrl-C after,
    asserting a clean exit. The log says what went wrong."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config, encoding="utf-8")
    api = f"http://127.0.0.1:{parser['server']['http_port']}/api"
    server = subprocess.Popen([sys.executable, str(ROOT / "server.py"), "--config", str(config)], cwd=ROOT,
                              stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        deadline, registered = time.monotonic() + timeout, False
        while time.monotonic() < deadline and server.poll() is None and not registered:
            try:
                registered = httpx.get(f"{api}/health", timeout=2).json()["registration"] == "registered"
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert registered, log.read_text()
        yield api
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=60) == 0, log.read_text()


@pytest.mark.sip
def test_run_answer_a_call_and_stop_cleanly(tmp_path):
    sip_port, http_port = free_udp_port(), free_tcp_port()
    config = write_config(tmp_path, sip_port, http_port)
    server = subprocess.Popen([sys.executable, str(ROOT / "server.py"), "--config", str(config)], cwd=ROOT,
                              stdout=open(tmp_path / "server.log", "wb"), stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{http_port}/api"
    try:
        health = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = httpx.get(f"{api}/health", timeout=2).json()
                if health["registration"] == "registered":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert health is not None and health["registration"] == "registered", (tmp_path / "server.log").read_text()
        assert (health["active_calls"], health["capacity"], health["status"]) == (0, 100, "ok")

        # The demo flow: greeting, then "press 1 ... press 2 ..."; the caller presses 2 during the menu.
        caller = subprocess.run(
            [sys.executable, "-m", "ivr.softphone", "call", "12345", "--dtmf", "2@9", "--json",
             "--record", str(tmp_path / "heard.wav")],
            cwd=ROOT, env={**os.environ, "HOTLINE_SIP_CONF": str(config)}, capture_output=True, text=True,
            timeout=90)
        summary = json.loads(caller.stdout)
        assert (summary["answered"], summary["sip_status"], summary["digits_sent"]) == (True, 200, "2"), caller.stderr

        calls = httpx.get(f"{api}/calls", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=5).json()
        record = next(r for r in calls["ended"] if r["sip_call_id"] == summary["call_id"])  # the caller knows SIP's
        assert (record["caller"], record["called"], record["digits"]) == ("1001", "12345", "2")
        assert re.fullmatch(r"[0-9a-f]{32}", record["call_id"]) and record["call_id"] in record["recording_path"]
        assert record["details"] == {"choice": "2", "choice_name": "complaint"}
        with wave.open(record["recording_path"]) as recording:
            assert (recording.getframerate(), recording.getsampwidth(), recording.getnchannels()) == (8000, 2, 1)
            assert recording.getnframes() > 8000 * 5  # the caller was on the line for about ten seconds
        assert httpx.get(f"{api}/calls", timeout=5).status_code == 401
        holidays = httpx.get(f"{api}/holidays", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=5).json()
        assert [(h["day"], h["is_working_day"]) for h in holidays] == [("2027-01-01", False)]  # from [tickets]
        assert httpx.get(f"{api}/calls?state=ringing", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                         timeout=5).status_code == 422
    finally:
        server.send_signal(signal.SIGINT)
        code = server.wait(timeout=30)
    assert code == 0, (tmp_path / "server.log").read_text()
    assert not sip_options_ping("127.0.0.1", sip_port, timeout=0.5)  # Kamailio went with it


@pytest.mark.parametrize("section, key, value, message", [
    ("server", "scheduler_interval_seconds", "soon", "[server] scheduler_interval_seconds must be a number, got 'soon'"),
    ("tickets", "holidays", "2027-13-01", "[tickets] holidays expects dates as YYYY-MM-DD, got '2027-13-01'"),
    ("sip", "max_calls", "many", "[sip] max_calls must be a whole number, got 'many'"),
    ("callflows", "operator_seat", "front desk", "[callflows] operator_seat must be a SIP number (digits), got 'front desk'"),
    ("callflows", "flow", "hotline", "[callflows] flow 'hotline': no flow file"),
    ("callflows", "flow_dir", "flows", "unknown setting(s) in [callflows]: flow_dir"),
])
def test_a_broken_setting_is_named(tmp_path, section, key, value, message):
    config = write_config(tmp_path, free_udp_port(), free_tcp_port())
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config, encoding="utf-8")
    parser[section][key] = value
    with config.open("w", encoding="utf-8") as file:
        parser.write(file)
    result = subprocess.run([sys.executable, str(ROOT / "server.py"), "--config", str(config)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_broken_flow_file_is_refused_with_its_line(tmp_path):
    """[callflows] flow names a file with a mistake: the server does not start, the error says where."""
    flows = tmp_path / "flows"
    flows.mkdir()
    for name in ("hotline12345.yaml", "status_check.yaml"):
        text = (ROOT / "callflows" / "flows" / name).read_text(encoding="utf-8")
        (flows / name).write_text(text.replace("next: welcome_korean", "next: welcome_chinese"), encoding="utf-8")
    line = next(n for n, text in enumerate((flows / "hotline12345.yaml").read_text().splitlines(), 1)
                if "welcome_chinese" in text)
    config = write_config(tmp_path, free_udp_port(), free_tcp_port())
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config, encoding="utf-8")
    parser["callflows"].update({"flow": "hotline12345", "flows_dir": str(flows)})
    with config.open("w", encoding="utf-8") as file:
        parser.write(file)
    result = subprocess.run([sys.executable, str(ROOT / "server.py"), "--config", str(config)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "configuration error: [callflows] flow 'hotline12345'" in result.stderr
    assert f"hotline12345.yaml:{line}" in result.stderr and "welcome_chinese" in result.stderr, result.stderr
