"""Several IVR nodes behind Kamailio's dispatcher (deploy/kamailio/kamailio.cfg with WITH_DISPATCHER),
through the real Kamailio with real RTP: calls to 12345 spread over the nodes in turn, a node at its
capacity answers 486 and the call goes to the next node, a node killed with SIGKILL is skipped (its call
times out to the next node) and taken out by the OPTIONS probes, and comes back when it answers them again;
only the listed nodes may register the service number; with no node left the caller hears 503.

Which node took a call is read from the RTP address the caller was answered with: each node has its own
RTP port range.
"""
from __future__ import annotations

import configparser
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.local_sip_server import KAMCMD_BINARY, LocalSipServer, free_udp_port, sip_options_ping
from ivr.node import IvrNode
from ivr.session import CallSession
from ivr.softphone import Softphone
from tests.conftest import SipServerInfo
from tests.ivr.raw_sip import RawSipEndpoint

pytestmark = pytest.mark.sip

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "12345"
CALLERS = ("1001", "1002")
RTP = {"a": (24000, 24999), "b": (25000, 25999)}
PING_SECONDS = 1
FR_MS = 1500  # how long a node gets to answer an INVITE at all before the next is tried


@dataclass
class Cluster:
    kamailio: LocalSipServer
    sip_ports: dict[str, int]
    extensions: dict[str, str]

    def uri(self, name: str) -> str:
        return f"sip:127.0.0.1:{self.sip_ports[name]}"

    def wait_states(self, expected: dict[str, str], timeout: float = 15.0) -> None:
        """Until the dispatcher shows each named node in the expected state (AP active, IP inactive)."""
        self.kamailio.wait_dispatcher_states({self.uri(name): state for name, state in expected.items()}, timeout)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    extensions = {ext: secrets.token_hex(8) for ext in (SERVICE, *CALLERS, "1099")}
    sip_ports = {"a": free_udp_port(), "b": free_udp_port()}
    with LocalSipServer(extensions, port=0, dispatcher_nodes=[("127.0.0.1", port) for port in sip_ports.values()],
                        defines={"DS_PING_INTERVAL": PING_SECONDS, "DS_FR_TIMER": FR_MS}) as kamailio:
        yield Cluster(kamailio, sip_ports, extensions)


def hold(session: CallSession) -> None:
    while not session.wait_ended(0.5):
        pass


@pytest.fixture(scope="module")
def sip_server(cluster: Cluster) -> SipServerInfo:
    """This module's Kamailio for the shared fixtures (ivr_node_factory)."""
    return SipServerInfo(cluster.kamailio.host, cluster.kamailio.port, cluster.extensions, SERVICE, CALLERS, ())


@pytest.fixture
def start_node(cluster: Cluster, ivr_node_factory: Callable[..., IvrNode]) -> Callable[..., IvrNode]:
    """start_node(name, max_calls=5) -> an IvrNode of this process on the node's fixed SIP port, holding
    every call until the caller hangs up; stopped after the test."""

    def start(name: str, max_calls: int = 5) -> IvrNode:
        return ivr_node_factory(hold, sip_port=cluster.sip_ports[name], rtp_ports=RTP[name], max_calls=max_calls)

    return start


@pytest.fixture
def node_process(cluster: Cluster) -> Iterator[Callable[[str], subprocess.Popen]]:
    """node_process(name) -> an IVR node in its own process (tests/ivr/held_node.py), registered; killed after."""
    processes: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        low, high = RTP[name]
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.ivr.held_node", str(cluster.kamailio.port), cluster.extensions[SERVICE],
             str(cluster.sip_ports[name]), str(low), str(high), "5"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "READY", line + process.stdout.read()
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(10)


@pytest.fixture
def caller(cluster: Cluster) -> Iterator[Softphone]:
    phone = Softphone(cluster.kamailio.host, cluster.kamailio.port, CALLERS[0], cluster.extensions[CALLERS[0]])
    phone.start()
    yield phone
    phone.stop()


def node_of(call) -> str:
    """The node whose RTP range the caller was answered from."""
    port = call.remote_rtp[1]
    return next(name for name, (low, high) in RTP.items() if low <= port <= high)


def place(phone: Softphone, timeout: float = 15.0):
    call = phone.dial(SERVICE)
    call.wait_answered(timeout)
    return call


def test_each_node_answers_the_dispatchers_options_probes(cluster, start_node):
    start_node("a")
    start_node("b")
    cluster.wait_states({"a": "AP", "b": "AP"})
    assert sip_options_ping("127.0.0.1", cluster.sip_ports["a"])  # the IVR answers OPTIONS itself with 200


def test_calls_spread_over_the_nodes_in_turn(cluster, start_node, caller):
    nodes = {"a": start_node("a"), "b": start_node("b")}
    cluster.wait_states({"a": "AP", "b": "AP"})
    calls = [place(caller) for _ in range(4)]
    try:
        assert all(call.answered for call in calls)
        taken = [node_of(call) for call in calls]
        assert sorted(taken) == ["a", "a", "b", "b"]
        assert taken[0] != taken[1] and taken[1] != taken[2] and taken[2] != taken[3]  # round-robin
        assert (nodes["a"].health().active_calls, nodes["b"].health().active_calls) == (2, 2)
    finally:
        for call in calls:
            call.hangup()


def test_a_node_at_capacity_answers_486_and_the_call_goes_to_the_next(cluster, start_node, caller):
    full = start_node("a", max_calls=1)
    other = start_node("b", max_calls=3)
    cluster.wait_states({"a": "AP", "b": "AP"})
    calls = [place(caller) for _ in range(4)]
    try:
        # Round-robin offered node a two of the four calls; it took one and refused the other (486), which
        # node b answered: every caller got through.
        assert [call.answered for call in calls] == [True] * 4
        assert sorted(node_of(call) for call in calls) == ["a", "b", "b", "b"]
        assert (full.health().active_calls, other.health().active_calls) == (1, 3)
        assert "trying the next IVR node" in cluster.kamailio.log_path.read_text()
        # Both full: the caller hears the last node's 486, not a silent failure.
        refused = caller.dial(SERVICE)
        assert not refused.wait_answered(15)
        assert refused.summary().sip_status == 486
        cluster.wait_states({"a": "AP", "b": "AP"})  # full is not dead: both stay in the dispatcher
    finally:
        for call in calls:
            call.hangup()
    # The callers' BYEs reached the nodes that answered, also for the calls that failed over.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (full.health().active_calls or other.health().active_calls):
        time.sleep(0.1)
    assert (full.health().active_calls, other.health().active_calls) == (0, 0)


def test_a_killed_node_is_skipped_taken_out_by_the_probes_and_back_when_it_answers_again(
        cluster, start_node, node_process, caller):
    victim = node_process("a")
    survivor = start_node("b")
    cluster.wait_states({"a": "AP", "b": "AP"})
    held = [place(caller) for _ in range(2)]
    assert sorted(node_of(call) for call in held) == ["a", "b"]

    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    # New calls are answered by the survivor: one offered to the dead node first waits FR_MS for it.
    after = []
    for _ in range(2):
        started = time.monotonic()
        after.append(place(caller))
        assert after[-1].answered and node_of(after[-1]) == "b"
        assert time.monotonic() - started < FR_MS / 1000 + 5
    cluster.wait_states({"a": "IP", "b": "AP"})  # the probes took the dead node out
    straight = place(caller)
    assert straight.answered and node_of(straight) == "b"
    log = cluster.kamailio.log_path.read_text()
    assert f"did not answer INVITE (Call-ID {after[0].call_id}" in log or \
        f"did not answer INVITE (Call-ID {after[1].call_id}" in log  # round-robin offered it the dead node once
    assert straight.call_id not in log  # now out of the dispatcher: not tried first, no failover needed
    assert survivor.health().active_calls == 4  # its call from before the kill, plus three new ones

    for call in [*held, *after, straight]:
        call.hangup()
    node_process("a")  # restarted on the same port
    cluster.wait_states({"a": "AP", "b": "AP"})
    again = [place(caller) for _ in range(2)]
    try:
        assert sorted(node_of(call) for call in again) == ["a", "b"]
    finally:
        for call in again:
            call.hangup()


def test_only_the_listed_nodes_may_register_the_service_number(cluster, start_node):
    start_node("a")
    start_node("b")  # both listed nodes registered 12345 (IvrNode.start raises otherwise)
    with RawSipEndpoint(cluster.kamailio.address) as intruder:  # right password, not a listed node
        answer = intruder.register(SERVICE, cluster.extensions[SERVICE])
    assert answer is not None and (answer.status, answer.reason) == (403, "Service Number Served By The IVR Nodes")


def test_with_no_node_answering_the_caller_hears_503(cluster, caller):
    cluster.wait_states({"a": "IP", "b": "IP"}, timeout=20)  # no node runs: the probes took both out
    call = caller.dial(SERVICE)
    assert not call.wait_answered(15)
    assert call.summary().sip_status == 503


def test_the_command_line_runs_the_clusters_kamailio_from_a_node_configuration(tmp_path):
    """README "Several nodes": `python -m ivr.local_sip_server --config deploy/cluster/node-a.conf --node ...`
    (the shipped file, on free ports)."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "deploy" / "cluster" / "node-a.conf", encoding="utf-8")
    port = free_udp_port()
    config["sip"]["registrar_port"] = str(port)
    path = tmp_path / "node-a.conf"
    with path.open("w", encoding="utf-8") as file:
        config.write(file)
    nodes = [f"127.0.0.1:{free_udp_port()}", f"127.0.0.1:{free_udp_port()}"]
    process = subprocess.Popen([sys.executable, "-m", "ivr.local_sip_server", "--config", str(path),
                                "--node", nodes[0], "--node", nodes[1], "--define", "DS_PING_INTERVAL=1"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith(f"Kamailio on udp:127.0.0.1:{port} dispatching {nodes[0]}, {nodes[1]};"), \
            line + process.stdout.read()
        runtime = Path(re.search(r"\(log (.+)\)", line).group(1)).parent
        listed = subprocess.run([KAMCMD_BINARY, "-s", f"unix:{runtime / 'kamailio_ctl'}", "dispatcher.list"],
                                capture_output=True, text=True, timeout=10).stdout
        assert f"sip:{nodes[0]}" in listed and f"sip:{nodes[1]}" in listed
        with Softphone("127.0.0.1", port, "1001", config["test_extensions"]["1001"]):
            pass  # the test extensions of the node's file are the server's
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    assert not sip_options_ping("127.0.0.1", port, timeout=0.5) and not runtime.exists()
