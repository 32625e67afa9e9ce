"""`make run` as an administrator meets it: server.py starts Kamailio, the IVR and the HTTP API from one INI
file; a simulated caller dials 12345 through the real SIP server; the API shows health and the call's
detail record; Ctrl-C stops everything cleanly. A broken configuration is refused with the key named."""
import configparser
import json
import os
import re
import signal
import socket
import stat
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
    config["callflows"]["speech_warm_up"] = "no"  # seconds of CPU per start: tests/asr test the warm-up
    path = tmp_path / "sip.conf"
    with path.open("w", encoding="utf-8") as file:
        config.write(file)
    return path


def set_keys(config: Path, values: dict[str, dict[str, str]]) -> Path:
    """Change `config` in place: values[section][key] = value."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config, encoding="utf-8")
    for section, keys in values.items():
        parser[section].update(keys)
    with config.open("w", encoding="utf-8") as file:
        parser.write(file)
    return config


def start_server(config: Path) -> subprocess.CompletedProcess:
    """server.py on `config` for a configuration it refuses (exit status and stderr to check)."""
    return subprocess.run([sys.executable, str(ROOT / "server.py"), "--config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@contextmanager
def running_server(config: Path, log: Path, *, timeout: float = 180.0, from_environment: bool = False
                   ) -> Iterator[str]:
    """server.py on `config` for the block; yields the API's base URL once the IVR has registered (a loaded
    machine may take minutes to load speech models and synthesise prompts) and stops it with Ctrl-C after,
    asserting a clean exit. The log says what went wrong. `from_environment`: the file is named by
    $HOTLINE_SIP_CONF instead of --config, as a user who exported it runs `make run`."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config, encoding="utf-8")
    api = f"http://127.0.0.1:{parser['server']['http_port']}/api"
    arguments = [] if from_environment else ["--config", str(config)]
    server = subprocess.Popen([sys.executable, str(ROOT / "server.py"), *arguments], cwd=ROOT,
                              env={**os.environ, "HOTLINE_SIP_CONF": str(config)},
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


@pytest.mark.sip
def test_first_start_on_loopback_makes_an_admin_token_and_the_readme_call_goes_through(tmp_path):
    """A new user's path: no admin_token configured. `make run` (here the file named by $HOTLINE_SIP_CONF,
    which the softphone finds the same way) makes a token, keeps it readable by its owner only, says where
    it is and where the console is; the README's call works with the softphone's defaults from that file;
    the token reads the call back; the next start reuses the token."""
    http_port = free_tcp_port()
    token_file = tmp_path / "var" / "admin_token"
    config = set_keys(write_config(tmp_path, free_udp_port(), http_port),
                      {"server": {"admin_token": "", "admin_token_file": str(token_file)}})
    console = f"http://127.0.0.1:{http_port}/"
    with running_server(config, tmp_path / "first.log", from_environment=True) as api:
        token = token_file.read_text(encoding="ascii").strip()
        assert len(token) >= 32 and stat.S_IMODE(token_file.stat().st_mode) == 0o600
        notice = f"generated an admin token (first start) in {token_file} (readable by you only): sign in to " \
                 f"the operator console at {console}"
        assert wait_for_text(tmp_path / "first.log", notice), (tmp_path / "first.log").read_text()

        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")} | {"HOTLINE_SIP_CONF": str(config)}
        caller = subprocess.run([sys.executable, "-m", "ivr.softphone", "call", "12345", "--dtmf", "2", "--record",
                                 "heard.wav", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=90)
        assert caller.returncode == 0, caller.stderr
        summary = json.loads(caller.stdout)
        assert summary["answered"] and (tmp_path / "heard.wav").is_file()

        calls = httpx.get(f"{api}/calls", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert calls.status_code == 200
        record = next(r for r in calls.json()["ended"] if r["sip_call_id"] == summary["call_id"])
        assert (record["caller"], record["digits"], record["details"]["choice"]) == ("1001", "2", "2")
        assert httpx.get(f"{api}/calls", headers={"Authorization": "Bearer " + "x" * 43}, timeout=5).status_code == 401

    with running_server(config, tmp_path / "again.log", from_environment=True) as api:
        assert token_file.read_text(encoding="ascii").strip() == token
        assert wait_for_text(tmp_path / "again.log", f"the admin token is in {token_file}")
        assert httpx.get(f"{api}/calls", headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200


def wait_for_text(log: Path, text: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.mark.parametrize("section, key, value, message", [
    ("server", "scheduler_interval_seconds", "soon", "[server] scheduler_interval_seconds must be a number, got 'soon'"),
    ("tickets", "holidays", "2027-13-01", "[tickets] holidays expects dates as YYYY-MM-DD, got '2027-13-01'"),
    ("sip", "max_calls", "many", "[sip] max_calls must be a whole number, got 'many'"),
    ("callflows", "operator_seat", "front desk", "[callflows] operator_seat must be a SIP number (digits), got 'front desk'"),
    ("callflows", "flow", "hotline", "[callflows] flow 'hotline': no flow file"),
    ("callflows", "flow_dir", "flows", "unknown setting(s) in [callflows]: flow_dir"),
])
def test_a_broken_setting_is_named(tmp_path, section, key, value, message):
    config = set_keys(write_config(tmp_path, free_udp_port(), free_tcp_port()), {section: {key: value}})
    result = start_server(config)
    assert result.returncode == 2
    assert message in result.stderr


STRONG = "n7Vq-2rXbW8s_LmT4kPz9yHc1DfGhJ0a"  # 32 characters


@pytest.mark.parametrize("values, exposed, problems", [
    ({"sip": {"local_ip": "192.0.2.10"}}, "[sip] local_ip = 192.0.2.10",
     ["[sip] password is the shipped default 'change-me'",
      *(f"[test_extensions] {n} has the shipped default password 'test{n}'" for n in ("1001", "1002", "1003")),
      "[server] admin_token must be at least 32 characters (it is 16)",
      "[callflows] operator_seat 1003 is a test extension"]),
    ({"server": {"http_host": "0.0.0.0", "admin_token": ""}, "sip": {"password": STRONG},
      "test_extensions": {"1001": STRONG, "1002": STRONG, "1003": STRONG}, "callflows": {"operator_seat": "8000"}},
     "[server] http_host = 0.0.0.0", ["[server] admin_token must be at least 32 characters (it is 0)"]),
])
def test_a_node_beyond_loopback_refuses_the_shipped_credentials_naming_each_key(tmp_path, values, exposed, problems):
    result = start_server(set_keys(write_config(tmp_path, free_udp_port(), free_tcp_port()), values))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("configuration error: ") and f"beyond loopback ({exposed})" in result.stderr
    refused = [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]
    assert [next((p for p in problems if line.startswith(p)), line) for line in refused] == problems, result.stderr


def test_a_broken_flow_file_is_refused_with_its_line(tmp_path):
    """[callflows] flow names a file with a mistake: the server does not start, the error says where."""
    flows = tmp_path / "flows"
    flows.mkdir()
    for name in ("hotline12345.yaml", "status_check.yaml", "callback.yaml"):  # the flow and its sub-flows
        text = (ROOT / "callflows" / "flows" / name).read_text(encoding="utf-8")
        (flows / name).write_text(text.replace("next: welcome_korean", "next: welcome_chinese"), encoding="utf-8")
    line = next(n for n, text in enumerate((flows / "hotline12345.yaml").read_text().splitlines(), 1)
                if "welcome_chinese" in text)
    config = set_keys(write_config(tmp_path, free_udp_port(), free_tcp_port()),
                      {"callflows": {"flow": "hotline12345", "flows_dir": str(flows)}})
    result = start_server(config)
    assert result.returncode == 2, result.stderr
    assert "configuration error: [callflows] flow 'hotline12345'" in result.stderr
    assert f"hotline12345.yaml:{line}" in result.stderr and "welcome_chinese" in result.stderr, result.stderr
