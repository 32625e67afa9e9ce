"""What a call may leave behind in the test process: the node's slots, open sockets, call threads."""
from __future__ import annotations

import os
import threading
import time


def open_sockets() -> int:
    """Sockets this process holds open (RTP and SIP sockets are the ones a leak would add)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # closed meanwhile
            pass
    return count


def call_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("ivr-call-") and t.is_alive())


class Baseline:
    """Taken while the node is idle; `assert_back(node)` waits until the node is idle again and the process
    holds exactly as many sockets and no call thread."""

    def __init__(self) -> None:
        self.sockets = open_sockets()
        self.threads = call_threads()

    def state(self, node) -> tuple[int, int, list[str]]:
        return node.health().active_calls, open_sockets(), call_threads()

    def assert_back(self, node, timeout: float = 10.0) -> None:
        expected = (0, self.sockets, self.threads)
        deadline = time.monotonic() + timeout
        while self.state(node) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.state(node) == expected, "(active calls, open sockets, call threads) did not return to " \
                                             f"the baseline {expected}: {self.state(node)}"
