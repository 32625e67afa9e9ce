"""Commands from one IVR node to another over Redis, so that an operator on any node can act on a call
another node holds (picking it up to their seat).

A command is a JSON message on the target node's channel (`<prefix>:node:<name>:commands`, Redis pub/sub);
the target runs its handler and pushes the answer onto a one-off list key named in the message, on which
the sender waits. Pub/sub tells the sender at once when nobody listens (the node is gone), and a node that
died mid-command simply never answers: the sender gives up after `reply_timeout`. Nothing is queued for a
node that is not there, so a restarted node never acts on a stale command.

Messages come from the shared Redis, so they are checked like any input from outside: a malformed message
is logged and dropped, and the handler gets only the arguments it declared.
"""
from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any

import redis

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], bool]
RECONNECT_SECONDS = 2.0
REPLY_KEY_SECONDS = 30  # an answer nobody collected (the sender gave up) goes away by itself
MAX_MESSAGE_BYTES = 4096


def commands_channel(prefix: str, node_name: str) -> str:
    return f"{prefix}:node:{node_name}:commands"


class NodeCommands:
    """Sends commands to other nodes and answers the ones sent to this node (`handlers`: command name ->
    function of its arguments returning True/False). `start` listens; `stop` stops listening."""

    def __init__(self, client: redis.Redis, node_name: str, *, prefix: str,
                 handlers: Mapping[str, Handler], reply_timeout: float = 3.0) -> None:
        self.client = client
        self.node_name = node_name
        self.prefix = prefix
        self.handlers = dict(handlers)
        self.reply_timeout = reply_timeout
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()

    # -- sending ---------------------------------------------------------------------------------

    def send(self, node_name: str, command: str, **arguments: Any) -> bool | None:
        """Run `command` on `node_name` and return its answer; None when no answer came (the node is not
        listening or died, or Redis cannot be reached)."""
        reply_key = f"{self.prefix}:reply:{secrets.token_hex(16)}"
        message = json.dumps({"command": command, "arguments": arguments, "reply_to": reply_key,
                              "from": self.node_name})
        try:
            if not self.client.publish(commands_channel(self.prefix, node_name), message):
                log.warning("command %s for node %s: the node is not listening", command, node_name)
                return None
            answer = self.client.blpop([reply_key], timeout=self.reply_timeout)
        except redis.exceptions.RedisError as error:
            log.warning("command %s for node %s not sent: Redis: %s", command, node_name, error)
            return None
        if answer is None:
            log.warning("command %s for node %s: no answer within %g s", command, node_name, self.reply_timeout)
            return None
        return answer[1] == b"1"

    # -- answering -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="node-commands", daemon=True)
        self._thread.start()

    def wait_listening(self, timeout: float) -> bool:
        """True once the node is subscribed to its channel (tests, start-up)."""
        return self._listening.wait(timeout)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)

    def _listen(self) -> None:
        channel = commands_channel(self.prefix, self.node_name)
        unreachable = False
        while not self._stopping.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(channel)
                self._listening.set()
                if unreachable:
                    log.info("node commands: Redis reachable again, listening on %s", channel)
                    unreachable = False
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None and message.get("type") == "message":
                        self._answer(message["data"])
            except redis.exceptions.RedisError as error:
                self._listening.clear()
                if not unreachable:
                    log.warning("node commands: Redis unreachable (%s): other nodes cannot reach this node's "
                                "calls until it is back", error)
                    unreachable = True
                self._stopping.wait(RECONNECT_SECONDS)
            finally:
                try:
                    pubsub.close()
                except redis.exceptions.RedisError:
                    pass

    def _answer(self, data: bytes) -> None:
        try:
            if len(data) > MAX_MESSAGE_BYTES:
                raise ValueError(f"{len(data)} bytes")
            message = json.loads(data)
            command, arguments, reply_to = message["command"], message["arguments"], message["reply_to"]
            if not (isinstance(arguments, dict) and isinstance(reply_to, str)
                    and reply_to.startswith(f"{self.prefix}:reply:")):
                raise ValueError("arguments must be an object, reply_to a reply key")
            handler = self.handlers[command]
        except (ValueError, KeyError, TypeError) as error:
            log.warning("node commands: malformed or unknown command dropped (%s: %s)", type(error).__name__, error)
            return
        try:
            result = bool(handler(arguments))
        except Exception:  # a handler's bug must not stop the listener; the sender hears "no"
            log.exception("node commands: %s failed", command)
            result = False
        try:
            with self.client.pipeline() as pipe:
                pipe.rpush(reply_to, b"1" if result else b"0")
                pipe.expire(reply_to, REPLY_KEY_SECONDS)
                pipe.execute()
        except redis.exceptions.RedisError as error:
            log.warning("node commands: the answer to %s was lost: %s", command, error)
