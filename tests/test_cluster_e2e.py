"""Several nodes, as an administrator runs them (README "Several nodes"): Kamailio with the dispatcher in
front of two server.py processes (the 12345 flow), one PostgreSQL database created here for the tickets of
both, Redis (a key prefix of this test) for the calls they share. Callers go through Kamailio with real RTP;
callers on the Mandarin path use keys and leave spoken messages (no Mandarin model is installed), so no
speech recognition is needed.

What it shows:
- calls to 12345 are spread over the two nodes; each node's API lists the calls of both;
- an operator signed in to one node's console picks up a call held by the other node, and the node holding
  it transfers the caller to the operator's seat (the command travels through Redis);
- the node holding a caller who has left a message and chosen a type is killed with SIGKILL mid-call: new
  calls are answered by the other node, the killed node's call disappears from the shared view, and what
  the caller said (their recorded message, the type they keyed, their language) is in the database, saved
  as a draft at each step before the node died;
- the killed node started again with the same file (its own journal) ends that call as an incomplete draft.
"""
from __future__ import annotations

import configparser
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import create_engine, select

from callflows.bundle import load_bundle
from callflows.prompts import PromptLibrary
from ivr.local_sip_server import LocalSipServer, free_udp_port
from ivr.softphone.audio import similarity
from ivr.softphone.phone import ActiveCall, Softphone
from tests.app.test_shared_calls import eventually
from tests.test_server import ADMIN_TOKEN, free_tcp_port
from tests.tickets.conftest import POSTGRES_URL, PostgresDatabases
from tickets.models import Ticket
from tts import PromptSynthesizer

pytestmark = [pytest.mark.sip, pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parent.parent
RATE = 8000
MATCH = 0.8
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SERVICE, CALLERS, SEAT = "12345", ("1001", "1002", "1004", "1005"), "1003"  # the seat of deploy/cluster
EXAMPLES = {name: ROOT / "deploy" / "cluster" / f"node-{name}.conf" for name in ("a", "b")}
EXPIRY = 2  # [server] live_calls_expiry: a dead node's calls leave the shared view this soon
FLOW = load_bundle(ROOT / "callflows" / "flows" / "hotline12345.yaml").flows["hotline12345"]


@dataclass
class Node:
    name: str
    config: Path
    api: str
    log: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(ROOT / "server.py"), "--config", str(self.config)],
                                        cwd=ROOT, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()[-4000:]
            try:
                health = httpx.get(f"{self.api}/health", timeout=2).json()
                if health["registration"] == "registered" and health["cluster"]["redis"] == "ok":
                    return health
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"node {self.name} not ready:\n{self.log.read_text()[-4000:]}")

    def active(self) -> list[dict]:
        return httpx.get(f"{self.api}/calls", params={"state": "active"}, headers=AUTH, timeout=10).json()["active"]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class Cluster:
    kamailio: LocalSipServer
    nodes: dict[str, Node]
    extensions: dict[str, str]
    database_url: str
    prompts: PromptLibrary

    def phone(self, extension: str, **options) -> Softphone:
        phone = Softphone(self.kamailio.host, self.kamailio.port, extension, self.extensions[extension], **options)
        phone.start()
        return phone

    def prompt(self, node: str, *, key: str = "prompt") -> bytes:
        """The Mandarin audio the nodes play for a node of the 12345 flow (their own prompt cache)."""
        text = getattr(FLOW.nodes[node], key).texts["zh"]
        with wave.open(str(self.prompts.text(text, "zh"))) as wav:
            return wav.readframes(wav.getnframes())


def read_ini(path: Path) -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(path, encoding="utf-8")
    return config


# Each node's RTP port range as the shipped files give it: which node answered a call shows in the port.
RTP = {name: (int(read_ini(path)["sip"]["rtp_port_low"]), int(read_ini(path)["sip"]["rtp_port_high"]))
       for name, path in EXAMPLES.items()}


def node_config(tmp: Path, name: str, *, kamailio_port: int, sip_port: int, password: str, database_url: str,
                prefix: str) -> Path:
    """The shipped deploy/cluster/node-<name>.conf with free ports, this test's database, Redis prefix,
    passwords and folders, and a short expiry of the shared calls."""
    config = read_ini(EXAMPLES[name])
    assert config["server"]["node_name"] == f"node-{name}" and config["callflows"]["operator_seat"] == SEAT
    config["sip"].update({"registrar_port": str(kamailio_port), "password": password, "sip_port": str(sip_port)})
    config.remove_section("test_extensions")  # this test's Kamailio has its own
    config["server"].update({
        "http_port": str(free_tcp_port()), "database_url": database_url, "redis_prefix": prefix,
        "live_calls_expiry": str(EXPIRY), "recordings_dir": str(tmp / name / "recordings"),
        "prompt_cache_dir": str(tmp / "prompts"), "admin_token": ADMIN_TOKEN})
    config["journal"].update({"path": str(tmp / name / "journal.sqlite3"), "replay_interval_seconds": "1"})
    config["callflows"]["speech_warm_up"] = "no"  # two nodes' warm-up is seconds of CPU: tests/asr test it
    path = tmp / f"node-{name}.conf"
    with path.open("w", encoding="utf-8") as file:
        config.write(file)
    return path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    probe = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    try:
        probe.ping()
    except redis.exceptions.ConnectionError as error:
        pytest.skip(f"Redis not reachable: {error}")
    databases = PostgresDatabases(POSTGRES_URL)
    database_url = databases.create()
    prefix = f"test-cluster-{uuid.uuid4().hex[:12]}"
    extensions = {ext: secrets.token_hex(8) for ext in (SERVICE, *CALLERS, SEAT)}
    sip_ports = {"a": free_udp_port(), "b": free_udp_port()}
    kamailio = LocalSipServer(extensions, port=0, dispatcher_nodes=[("127.0.0.1", p) for p in sip_ports.values()],
                              defines={"DS_PING_INTERVAL": 1, "DS_FR_TIMER": 1500})
    kamailio.start()
    nodes = {}
    for name, sip_port in sip_ports.items():
        config = node_config(tmp, name, kamailio_port=kamailio.port, sip_port=sip_port,
                             password=extensions[SERVICE], database_url=database_url, prefix=prefix)
        nodes[name] = Node(name, config, f"http://127.0.0.1:{read_ini(config)['server']['http_port']}/api",
                           tmp / f"node-{name}.log")
    try:
        for node in nodes.values():  # together: the prompt cache they share is written atomically
            node.start()
        for node in nodes.values():
            node.wait_ready()
        # The dispatcher's probes failed while the nodes started: the first caller must not meet that 503.
        kamailio.wait_dispatcher_states({f"sip:127.0.0.1:{port}": "AP" for port in sip_ports.values()})
        yield Cluster(kamailio, nodes, extensions, database_url, PromptLibrary(PromptSynthesizer(tmp / "prompts")))
    finally:
        for node in nodes.values():
            node.stop()
        kamailio.stop()
        for key in probe.scan_iter(prefix + ":*"):
            probe.delete(key)
        probe.close()
        databases.drop(database_url)
        databases.admin.dispose()


def heard_seconds(call: ActiveCall) -> float:
    return len(call.heard()) / 2 / RATE


def wait_heard(call: ActiveCall, reference: bytes, *, since: float = 0.0, timeout: float = 60.0) -> float:
    """Until `reference` was heard in full after `since` s of the call's audio; returns where it ended."""
    deadline = time.monotonic() + timeout
    best = 0.0
    while time.monotonic() < deadline and not call.ended:
        match = similarity(call.heard(since, keep_gaps=False), reference)
        best = max(best, match.similarity)
        if match.similarity >= MATCH:
            return since + match.offset_seconds + len(reference) / 2 / RATE
        time.sleep(0.2)
    raise AssertionError(f"prompt not heard (best similarity {best:.2f}) within {timeout} s")


def leave_a_message_and_choose_complaint(cluster: Cluster, call: ActiveCall) -> None:
    """Mandarin (1), past the emergency guidance (any other key), a spoken message after the keypad prompt
    (no Mandarin model: recorded for an operator), complaint (1) in the type menu, until the name question."""
    assert call.wait_for_audio(0.3, timeout=30)
    call.send_dtmf("1")
    mark = wait_heard(call, cluster.prompt("emergency")[: RATE * 2 * 2])
    call.send_dtmf("1")  # not 9 or 8: on to the request at once
    mark = wait_heard(call, cluster.prompt("ask_request", key="keypad_prompt"), since=mark - 2)
    call.say_text("我家楼下的路灯坏了三天了，晚上很黑，请尽快派人修理。", voice="cmn")
    mark = wait_heard(call, cluster.prompt("type_menu")[: RATE * 2 * 2], since=mark)
    call.send_dtmf("1")
    wait_heard(call, cluster.prompt("ask_name"), since=mark)


class Background:
    """A function run on a thread whose exception reaches the test (`result`)."""

    def __init__(self, function: Callable[..., None], *args: object) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(function, *args), daemon=True)
        self.thread.start()

    def _run(self, function: Callable[..., None], *args: object) -> None:
        try:
            function(*args)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            self.error = error

    def result(self, timeout: float) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"still running after {timeout} s"
        if self.error is not None:
            raise self.error


def node_of(call: ActiveCall) -> str:
    port = call.remote_rtp[1]
    return next(name for name, (low, high) in RTP.items() if low <= port <= high)


def pick_up_on(node: Node, call_id: str, seat: str) -> httpx.Response:
    """An operator signs in to `node`'s console and picks the call up to `seat`, as live.js does."""
    with httpx.Client(base_url=node.api.removesuffix("/api"), timeout=15) as browser:
        browser.post("/sign-in", data={"token": ADMIN_TOKEN, "next": "/live"})
        page = browser.get("/live").text
        assert f'data-call="{call_id}"' in page  # the other node's call is on this node's live page
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        return browser.post(f"/live/{call_id}/pick-up", data={"seat": seat}, headers={"X-CSRF-Token": csrf})


def test_calls_spread_a_pick_up_crosses_nodes_and_a_killed_nodes_caller_is_in_the_database(cluster: Cluster):
    nodes = cluster.nodes
    callers = [cluster.phone(CALLERS[0]), cluster.phone(CALLERS[1])]
    seat = cluster.phone(SEAT, answer=True)
    try:
        # Two callers at once: the dispatcher gives each node one.
        first, second = (phone.dial(SERVICE) for phone in callers)
        assert first.wait_answered(30) and second.wait_answered(30)
        assert {node_of(first), node_of(second)} == {"a", "b"}
        victim, survivor = nodes[node_of(first)], nodes[node_of(second)]

        # Every node lists both calls, each with the node holding it.
        def both_listed(node: Node) -> bool:
            return sorted((c["caller"], c["ivr_node"]) for c in node.active() if c["direction"] == "inbound") == \
                [(CALLERS[0], f"node-{node_of(first)}"), (CALLERS[1], f"node-{node_of(second)}")]
        eventually(lambda: both_listed(victim) and both_listed(survivor), 10, "both calls on both nodes")

        # The first caller leaves a message and keys a complaint while the second waits in the flow.
        talking = Background(leave_a_message_and_choose_complaint, cluster, first)
        # An operator on the victim's console picks up the survivor's caller to the seat: the survivor holds
        # the call, so the command goes through Redis and the survivor transfers the caller.
        second_id = next(c["call_id"] for c in victim.active() if c["caller"] == CALLERS[1])
        picked = pick_up_on(victim, second_id, SEAT)
        assert picked.status_code == 200 and picked.json() == {"call_id": second_id, "seat": SEAT}
        ringing = seat.wait_incoming(60)
        assert ringing is not None, survivor.log.read_text()[-3000:]
        assert ringing.number == SERVICE  # the seat is called by the IVR node holding the caller
        talking.result(120)
        assert not first.ended

        # SIGKILL the node holding the first caller, mid-call (the IVR is asking for the caller's name).
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(10)

        # New calls are answered by the other node.
        new_calls = [cluster.phone(extension) for extension in CALLERS[2:]]
        callers += new_calls
        for phone in new_calls:
            call = phone.dial(SERVICE)
            assert call.wait_answered(30), f"a new call was not answered after the kill: {call.summary()}"
            assert node_of(call) == {"a": "b", "b": "a"}[victim.name]
            call.hangup()
        # The dead node's call leaves the shared view once its heartbeat expired.
        eventually(lambda: all(c["ivr_node"] == f"node-{survivor.name}" for c in survivor.active()), EXPIRY + 10)
        health = httpx.get(f"{survivor.api}/health", timeout=5).json()
        assert health["cluster"]["nodes"] == [f"node-{survivor.name}"]
    finally:
        for phone in [*callers, seat]:
            phone.stop()

    # What the first caller said is in the database (read while the node is still dead): the draft saved at
    # each step before the node died.
    draft = the_draft_of(cluster, CALLERS[0])
    assert (draft.is_draft, draft.language, draft.request_type, draft.incomplete_reason) == (True, "zh", "投诉", None)
    with wave.open(draft.recording_ref) as wav:
        message = wav.readframes(wav.getnframes())
    assert len(message) > RATE * 2 * 2  # seconds of the caller's voice
    assert similarity(first.sent(), message[: RATE * 2 * 2]).similarity >= MATCH  # the caller's own words

    # Started again with the same file, hence its own journal (README "Several nodes"), the node ends the call
    # it was cut off in: an incomplete draft, nothing lost.
    victim.start()
    victim.wait_ready()
    before = draft
    draft = eventually(lambda: (d := the_draft_of(cluster, CALLERS[0])).incomplete_reason and d, 60)
    assert draft.incomplete_reason == "the node stopped during the call"
    assert (draft.id, draft.is_draft, draft.language, draft.request_type, draft.recording_ref) == \
        (before.id, True, "zh", "投诉", before.recording_ref)


def the_draft_of(cluster: Cluster, caller: str):
    """The one ticket of `caller` in the cluster's database (read directly: nothing of a node in between)."""
    engine = create_engine(cluster.database_url)
    try:
        with engine.connect() as connection:
            tickets = connection.execute(select(Ticket).where(Ticket.phone == caller)).all()
    finally:
        engine.dispose()
    assert len(tickets) == 1, tickets
    return tickets[0]
