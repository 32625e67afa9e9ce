"""Live calls shared across nodes through the machine's real Redis (a key prefix per test): every node
shows every node's calls, a dead node's calls vanish after the expiry, a pick-up reaches the node holding
the call, and with Redis away each node still shows and serves its own calls."""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import pytest
import redis

from app.live_calls import LiveCallStore
from app.node_commands import NodeCommands, commands_channel
from app.shared_calls import SharedCalls
from ivr.local_sip_server import free_udp_port
from ivr.node import CallRecord
from tests.app.test_live_calls import START, FakeSession

pytestmark = pytest.mark.redis
NOW = START + timedelta(seconds=42)


class FakeNode:
    """The node's calls in progress as the IVR node reports them."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def active_calls(self) -> list[CallRecord]:
        return list(self.records)


def client() -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1, socket_timeout=5, retry=None)


def unreachable_redis() -> redis.Redis:
    """A client of a Redis that is not there (nothing listens on the port): every command fails at once."""
    return redis.Redis(host="127.0.0.1", port=free_udp_port(), socket_connect_timeout=0.5, socket_timeout=0.5,
                       retry=None)


@pytest.fixture
def prefix() -> Iterator[str]:
    probe = client()
    try:
        probe.ping()
    except redis.exceptions.ConnectionError as error:
        pytest.skip(f"Redis not reachable at 127.0.0.1:6379: {error}")
    prefix = f"test-shared-{uuid.uuid4().hex}"
    yield prefix
    for key in probe.scan_iter(prefix + ":*"):
        probe.delete(key)
    probe.close()


@pytest.fixture
def make_node(prefix: str) -> Iterator[Callable[..., tuple[SharedCalls, FakeNode, LiveCallStore]]]:
    """make(name, expiry=10, commands=True, redis_client=None) -> a started SharedCalls over a fake node and a
    real LiveCallStore, stopped after the test."""
    started: list[SharedCalls] = []

    def make(name: str, *, expiry: float = 10.0, commands: bool = True,
             redis_client: redis.Redis | None = None) -> tuple[SharedCalls, FakeNode, LiveCallStore]:
        node, live = FakeNode(), LiveCallStore()
        redis_client = redis_client or client()
        channel = NodeCommands(redis_client, name, prefix=prefix, handlers={}, reply_timeout=2.0) if commands else None
        shared = SharedCalls(name, node, live, redis_client, commands=channel, prefix=prefix, expiry=expiry,
                             tick=0.05, clock=lambda: NOW)
        shared.start()
        if channel is not None:
            assert channel.wait_listening(5)
        started.append(shared)
        return shared, node, live

    yield make
    for shared in started:
        shared.stop()


def answer(node: FakeNode, live: LiveCallStore, call_id: str, caller: str) -> FakeSession:
    session = FakeSession(call_id, caller)
    node.records.append(CallRecord(call_id, "inbound", caller, "12345", "PCMU", START))
    live.watch(session)
    return session


def hang_up(node: FakeNode, session: FakeSession) -> None:
    node.records = [r for r in node.records if r.call_id != session.call_id]
    session.end()


def eventually(condition: Callable[[], object], timeout: float = 10.0, message: str = "") -> object:
    """Until `condition()` is true (returned); AssertionError naming `message` (or the last value) after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {message or condition()!r}")


def test_every_node_shows_every_nodes_calls_with_flow_node_transcript_and_elapsed(make_node):
    a, a_node, a_live = make_node("node-a")
    b, b_node, b_live = make_node("node-b")
    first = answer(a_node, a_live, "a" * 32, "1001")
    a_live.node_entered(first.call_id, "hotline12345", "ask_request")
    a_live.partial_transcript(first.call_id, "수도")
    answer(b_node, b_live, "b" * 32, "1002")

    def seen_by_b() -> list:
        return [(c["call_id"], c["ivr_node"], c["node"], c["partial"]) for c in b.snapshot()]

    eventually(lambda: len(seen_by_b()) == 2 and ("a" * 32, "node-a", "ask_request", "수도") in seen_by_b())
    assert seen_by_b() == [("a" * 32, "node-a", "ask_request", "수도"), ("b" * 32, "node-b", "", "")]
    records = {r["call_id"]: r for r in b.active_records()}
    assert (records["a" * 32]["caller"], records["a" * 32]["ivr_node"], records["a" * 32]["elapsed_seconds"]) == \
        ("1001", "node-a", 42.0)
    assert records["b" * 32]["ivr_node"] == "node-b"
    assert b.state() == {"node_name": "node-b", "redis": "ok", "nodes": ["node-a", "node-b"]}

    # a change on one node reaches the other, with a new version for the console's event stream
    version = b.version
    a_live.final_transcript(first.call_id, "수도 단수 민원입니다")
    eventually(lambda: any(c["heard"] == ["수도 단수 민원입니다"] for c in b.snapshot()))
    assert b.version > version
    hang_up(a_node, first)
    eventually(lambda: [c["call_id"] for c in b.snapshot()] == ["b" * 32])
    assert [r["call_id"] for r in b.active_records()] == ["b" * 32]


def test_a_dead_nodes_calls_vanish_after_the_expiry_and_a_stopped_nodes_at_once(make_node, prefix):
    a, a_node, a_live = make_node("node-a", expiry=1.0)
    b, _, _ = make_node("node-b")
    answer(a_node, a_live, "a" * 32, "1001")
    eventually(lambda: b.snapshot())
    a._rounds.stop(5)  # dies: no more heartbeats, nothing withdrawn (the rounds stop as a SIGKILL would)
    assert b.snapshot()  # still within the expiry
    eventually(lambda: b.snapshot() == [] and b.active_records() == [], timeout=5)
    assert b.state()["nodes"] == ["node-b"]

    c, c_node, c_live = make_node("node-c")
    answer(c_node, c_live, "c" * 32, "1003")
    eventually(lambda: b.snapshot())
    c.stop()  # a clean stop withdraws its calls without waiting for the expiry
    eventually(lambda: b.snapshot() == [], timeout=1.0)


def test_a_pick_up_on_any_node_reaches_the_node_holding_the_call(make_node):
    a, a_node, a_live = make_node("node-a")
    b, _, _ = make_node("node-b")
    session = answer(a_node, a_live, "a" * 32, "1001")
    eventually(lambda: b.snapshot())
    assert b.pick_up(session.call_id, "1004", "operator Li") is True
    assert session.digits == ["0"]  # the node holding it pressed the operator digit for the caller...
    assert a_live.seat_for(session.call_id) == "1004"  # ...and sends the transfer to the operator's seat
    assert session.details["picked_up_by"] == "operator Li to 1004"
    assert b.pick_up("f" * 32, "1004", "operator Li") is False  # no node holds it
    hang_up(a_node, session)
    time.sleep(0.3)
    assert a.pick_up(session.call_id, "1004", "operator Li") is False


def test_a_pick_up_for_a_node_that_no_longer_listens_is_refused_at_once(make_node, prefix):
    a, a_node, a_live = make_node("node-a")
    b, _, _ = make_node("node-b")
    answer(a_node, a_live, "a" * 32, "1001")
    eventually(lambda: b.snapshot())
    a.commands.stop()  # the node stopped listening (dies); its document has not expired yet
    time.sleep(0.2)
    started = time.monotonic()
    assert b.pick_up("a" * 32, "1004", "operator Li") is False
    assert time.monotonic() - started < 1.0  # nobody subscribed: no wait for an answer


def test_hostile_messages_on_the_command_channel_and_garbage_documents_are_dropped(make_node, prefix, caplog):
    a, a_node, a_live = make_node("node-a")
    b, _, _ = make_node("node-b")
    session = answer(a_node, a_live, "a" * 32, "1001")
    eventually(lambda: b.snapshot())
    raw = client()
    channel = commands_channel(prefix, "node-a")
    with caplog.at_level(logging.WARNING):
        for message in (b"not json", b"[]", b'{"command": "pick_up"}', b"x" * 10000,
                        b'{"command": "format_disk", "arguments": {}, "reply_to": "' + prefix.encode() + b':reply:1"}',
                        b'{"command": "pick_up", "arguments": {"call_id": "' + b"a" * 32 +
                        b'", "seat": "1004; rm", "by": "x"}, "reply_to": "' + prefix.encode() + b':reply:2"}',
                        b'{"command": "pick_up", "arguments": {"call_id": "' + b"a" * 32 +
                        b'", "seat": "1004", "by": "x"}, "reply_to": "elsewhere:key"}'):
            raw.publish(channel, message)
        raw.set(f"{prefix}:calls:node-x", b"{broken")
        raw.zadd(f"{prefix}:nodes", {"node-x": time.time()})
        time.sleep(0.5)
    assert session.digits == []  # nothing was picked up by the hostile messages
    assert raw.lrange(f"{prefix}:reply:2", 0, -1) == [b"0"]  # a bad seat is answered "no"
    assert not raw.exists("elsewhere:key")  # answers go only to this cluster's reply keys
    assert "malformed or unknown command dropped" in caplog.text
    assert "node-x" in caplog.text and [c["ivr_node"] for c in b.snapshot()] == ["node-a"]
    assert b.pick_up(session.call_id, "1004", "operator Li") is True  # the listener still answers
    raw.close()


def test_with_redis_away_each_node_shows_and_serves_its_own_calls(make_node, caplog):
    with caplog.at_level(logging.WARNING):
        a, a_node, a_live = make_node("node-a", redis_client=unreachable_redis(), commands=False)
        session = answer(a_node, a_live, "a" * 32, "1001")
        time.sleep(0.3)
    assert [(c["call_id"], c["ivr_node"]) for c in a.snapshot()] == [("a" * 32, "node-a")]
    assert [r["call_id"] for r in a.active_records()] == ["a" * 32]
    assert a.state() == {"node_name": "node-a", "redis": "unreachable", "nodes": ["node-a"]}
    assert a.pick_up(session.call_id, "1004", "operator Li") is True and session.digits == ["0"]
    assert caplog.text.count("Redis unreachable") == 1  # logged once, not every round


def test_redis_going_away_drops_the_other_nodes_calls_and_its_return_brings_them_back(make_node, caplog):
    a, a_node, a_live = make_node("node-a")
    b, _, _ = make_node("node-b")
    answer(a_node, a_live, "a" * 32, "1001")
    eventually(lambda: b.snapshot())
    real, b.client = b.client, unreachable_redis()
    with caplog.at_level(logging.INFO):
        eventually(lambda: b.state()["redis"] == "unreachable" and b.snapshot() == [])
        b.client = real
        eventually(lambda: b.state()["redis"] == "ok" and b.snapshot(), timeout=5)
    assert "Redis reachable again" in caplog.text


def test_a_node_back_from_a_redis_outage_publishes_at_once(make_node, prefix):
    """Its document may have expired while Redis was away: the first round after publishes it again,
    without waiting for the next heartbeat."""
    a, a_node, a_live = make_node("node-a", expiry=30.0)
    b, _, _ = make_node("node-b")
    answer(a_node, a_live, "a" * 32, "1001")
    eventually(lambda: b.snapshot())
    real, a.client = a.client, unreachable_redis()
    eventually(lambda: a.state()["redis"] == "unreachable")
    real.delete(f"{prefix}:calls:node-a")  # expired meanwhile
    eventually(lambda: b.snapshot() == [])
    a.client = real
    eventually(lambda: b.snapshot(), timeout=3)  # long before the next heartbeat (expiry / 3 = 10 s)


def test_two_nodes_with_one_name_are_reported(make_node, caplog):
    with caplog.at_level(logging.ERROR):
        make_node("node-a", commands=False)
        make_node("node-a", commands=False)
        eventually(lambda: "another running node publishes as 'node-a'" in caplog.text)


def test_without_redis_a_node_shows_its_own_calls():
    node, live = FakeNode(), LiveCallStore()
    shared = SharedCalls("solo", node, live, clock=lambda: NOW)
    shared.start()
    answer(node, live, "a" * 32, "1001")
    assert [(c["call_id"], c["ivr_node"]) for c in shared.snapshot()] == [("a" * 32, "solo")]
    assert shared.active_records()[0]["elapsed_seconds"] == 42.0
    assert shared.state() == {"node_name": "solo", "redis": "off", "nodes": ["solo"]}
    shared.stop()
