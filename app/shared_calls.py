"""Every IVR node's calls in progress, seen from any node: the console's live view and `GET /api/calls
?state=active` show the calls of all nodes behind the dispatcher, and an operator picks up a call wherever
it is held.

Each node publishes its own calls to Redis as one JSON document under `<prefix>:calls:<node name>` (its
active call records, and the live-view entries: flow node, partial and final transcripts), whenever they
change and at least every third of `expiry` seconds as a heartbeat; the key expires after `expiry` seconds,
so the calls of a node that died (SIGKILL, power) vanish from every view within that time. The names of
nodes that published are kept in the sorted set `<prefix>:nodes`. Each node reads the others' documents
every `tick` seconds; its own calls always come from its own memory, never from Redis.

Redis is optional and may fail: without it (or while it is away, which is logged once, and its return
once) each node shows and serves exactly its own calls, as a single node does, and nothing else stops.

A pick-up of a call held by another node goes to that node as a command (app.node_commands); the node
holding the call presses the operator digit for the caller and transfers it to the seat itself.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Protocol

import redis

from app.live_calls import LiveCallStore
from app.node_commands import NodeCommands
from ivr.node import CallRecord
from tickets.periodic import Periodic

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "hotline12345"
NODES_FORGOTTEN_AFTER = 86400.0  # a node name that has not published for a day leaves the set
CALL_ID_RE = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")
SEAT_RE = re.compile(r"^[0-9]{1,20}$")


class ActiveCallSource(Protocol):
    """What this node's calls come from (ivr.node.IvrNode fits)."""

    def active_calls(self) -> list[CallRecord]: ...


class SharedCalls:
    """The calls of every node: console.live.LiveCalls for the live view, `active_records` for the calls
    API, `state` for the health check. Without a Redis client: this node's calls only."""

    def __init__(self, node_name: str, calls: ActiveCallSource, live: LiveCallStore | None = None,
                 client: redis.Redis | None = None, *, commands: NodeCommands | None = None,
                 prefix: str = DEFAULT_PREFIX, expiry: float = 10.0, tick: float = 0.25,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.node_name = node_name
        self.calls = calls
        self.live = live
        self.client = client
        self.commands = commands
        if commands is not None:
            commands.handlers["pick_up"] = self._pick_up_here
        self.prefix = prefix
        self.expiry = expiry
        self.tick = tick
        self.clock = clock
        self.instance = secrets.token_hex(8)  # tells this process from another node using the same name
        self._lock = threading.Lock()
        self._others: dict[str, dict[str, Any]] = {}  # node name -> its last document
        self._others_raw: list[bytes | None] = []
        self._others_version = 0
        self._last_published = ""
        self._next_heartbeat = 0.0
        self._reachable: bool | None = None  # None until the first attempt
        self._retry_at = 0.0
        self._name_clash_reported = False
        self._unreadable: set[str] = set()  # nodes whose document was reported unreadable (once each)
        self._rounds = Periodic("shared-calls", self.sync, tick)

    @property
    def key(self) -> str:
        return f"{self.prefix}:calls:{self.node_name}"

    @property
    def nodes_key(self) -> str:
        return f"{self.prefix}:nodes"

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Publish and read every `tick` seconds (a no-op without Redis), and answer other nodes' commands."""
        if self.client is None:
            return
        if self.commands is not None:
            self.commands.start()
        self.sync()
        self._rounds.start()

    def stop(self) -> None:
        """Stop publishing and withdraw this node's document, so the others drop its calls at once."""
        self._rounds.stop(5)
        if self.commands is not None:
            self.commands.stop()
        if self.client is not None and self._reachable:
            try:
                with self.client.pipeline() as pipe:
                    pipe.delete(self.key)
                    pipe.zrem(self.nodes_key, self.node_name)
                    pipe.execute()
            except redis.exceptions.RedisError as error:
                log.warning("shared calls: could not withdraw this node's calls (they expire in %g s): %s",
                            self.expiry, error)

    def sync(self) -> None:
        """One round: publish this node's calls if they changed (or a heartbeat is due), read the others'."""
        if self.client is None:
            return
        now = time.monotonic()
        if self._reachable is False and now < self._retry_at:
            return
        try:
            self._publish(now)
            self._read_others()
        except redis.exceptions.RedisError as error:
            self._retry_at = now + max(self.tick, 1.0)
            self._went_away(error)
        else:
            if self._reachable is False:
                log.info("shared calls: Redis reachable again: every node's calls are shown")
            self._reachable = True

    # -- publishing ------------------------------------------------------------------------------

    def _document(self) -> str:
        records = [record.to_dict() for record in self.calls.active_calls()]
        live = self.live.snapshot() if self.live is not None else []
        return json.dumps({"node": self.node_name, "instance": self.instance, "records": records, "live": live},
                          ensure_ascii=False, sort_keys=True)

    def _publish(self, now: float) -> None:
        document = self._document()
        if document == self._last_published and now < self._next_heartbeat:
            return
        assert self.client is not None
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self.key, document.encode(), px=int(self.expiry * 1000))
            pipe.zadd(self.nodes_key, {self.node_name: time.time()})
            pipe.zremrangebyscore(self.nodes_key, "-inf", time.time() - NODES_FORGOTTEN_AFTER)
            pipe.execute()
        self._last_published = document
        self._next_heartbeat = now + self.expiry / 3

    # -- reading the others ----------------------------------------------------------------------

    def _read_others(self) -> None:
        assert self.client is not None
        names = sorted(name.decode() for name in self.client.zrange(self.nodes_key, 0, -1))
        raw = self.client.mget([f"{self.prefix}:calls:{name}" for name in names]) if names else []
        others: dict[str, dict[str, Any]] = {}
        for name, body in zip(names, raw):
            if body is None:
                continue  # expired: the node stopped publishing (dead or stopped)
            document = self._parse(name, body)
            if document is None:
                continue
            if name == self.node_name:
                self._check_name(document)
            else:
                others[name] = document
        with self._lock:
            changed = raw != self._others_raw or others.keys() != self._others.keys()
            self._others, self._others_raw = others, raw
            if changed:
                self._others_version += 1

    def _parse(self, name: str, body: bytes) -> dict[str, Any] | None:
        try:
            document = json.loads(body)
            if not (isinstance(document, dict) and document.get("node") == name
                    and isinstance(document.get("records"), list) and isinstance(document.get("live"), list)):
                raise ValueError("not a node's call document")
        except ValueError as error:
            if name not in self._unreadable:
                self._unreadable.add(name)
                log.warning("shared calls: the document of node %r is unreadable and ignored: %s", name, error)
            return None
        self._unreadable.discard(name)
        return document

    def _check_name(self, document: dict[str, Any]) -> None:
        if document.get("instance") != self.instance and not self._name_clash_reported:
            self._name_clash_reported = True
            log.error("shared calls: another running node publishes as %r: give each node its own "
                      "[server] node_name, or their calls overwrite each other", self.node_name)

    def _went_away(self, error: Exception) -> None:
        if self._reachable is not False:
            log.warning("shared calls: Redis unreachable (%s): showing and serving this node's calls only "
                        "until it is back", error)
        self._reachable = False
        self._last_published = ""  # the key may expire meanwhile: publish again as soon as Redis answers
        with self._lock:
            if self._others:
                self._others, self._others_raw = {}, []
                self._others_version += 1

    # -- console.live.LiveCalls ------------------------------------------------------------------

    @property
    def version(self) -> int:
        own = self.live.version if self.live is not None else 0
        return own + self._others_version  # both only grow, so the sum changes whenever either does

    def snapshot(self) -> list[dict[str, Any]]:
        own = [{**call, "ivr_node": self.node_name} for call in (self.live.snapshot() if self.live else [])]
        with self._lock:
            others = [{**call, "ivr_node": name} for name, document in self._others.items()
                      for call in document["live"] if isinstance(call, dict)]
        return sorted(own + others, key=lambda call: (str(call.get("started_at", "")), call["ivr_node"],
                                                     str(call.get("call_id", ""))))

    def pick_up(self, call_id: str, seat: str, by: str) -> bool:
        """Pick the call up on whichever node holds it; False when no node has it in progress (or the node
        holding it cannot be reached)."""
        if self.live is not None and self.live.pick_up(call_id, seat, by):
            return True
        owner = self._owner_of(call_id)
        if owner is None or self.commands is None:
            return False
        log.info("pick-up of call %s by %s: sent to node %s, which holds it", call_id, by, owner)
        return self.commands.send(owner, "pick_up", call_id=call_id, seat=seat, by=by) is True

    def _owner_of(self, call_id: str) -> str | None:
        with self._lock:
            for name, document in self._others.items():
                if any(isinstance(call, dict) and call.get("call_id") == call_id for call in document["live"]):
                    return name
        return None

    def _pick_up_here(self, arguments: dict[str, Any]) -> bool:
        """Another node's operator picks up a call of this node (a command from app.node_commands)."""
        call_id, seat, by = arguments.get("call_id"), arguments.get("seat"), arguments.get("by")
        if not (isinstance(call_id, str) and CALL_ID_RE.match(call_id) and isinstance(seat, str)
                and SEAT_RE.match(seat) and isinstance(by, str) and 0 < len(by) <= 200):
            log.warning("shared calls: a pick-up command with bad arguments was refused: %r", arguments)
            return False
        return self.live is not None and self.live.pick_up(call_id, seat, by)

    # -- the calls API and health ----------------------------------------------------------------

    def active_records(self) -> list[dict[str, Any]]:
        """Call detail records of the calls in progress on every node, each with `ivr_node` and
        `elapsed_seconds` (since it started, now)."""
        records = [{**record.to_dict(), "ivr_node": self.node_name} for record in self.calls.active_calls()]
        with self._lock:
            records += [{**record, "ivr_node": name} for name, document in self._others.items()
                        for record in document["records"] if isinstance(record, dict)]
        now = self.clock()
        for record in records:
            record["elapsed_seconds"] = _seconds_since(record.get("started_at"), now)
        return records

    def state(self) -> dict[str, Any]:
        """For /api/health: this node's name, whether Redis is shared ('ok'), away ('unreachable') or not
        configured ('off'), and the nodes whose calls are shown."""
        redis_state = "off" if self.client is None else ("unreachable" if self._reachable is False else "ok")
        with self._lock:
            nodes = sorted({self.node_name, *self._others})
        return {"node_name": self.node_name, "redis": redis_state, "nodes": nodes}


def _seconds_since(started_at: Any, now: datetime) -> float | None:
    try:
        return round((now - datetime.fromisoformat(started_at)).total_seconds(), 1)
    except (TypeError, ValueError):
        return None
