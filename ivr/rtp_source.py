"""Which datagrams a call's RTP socket takes: only the far end's, so nobody else can speak or key digits
into a call (a DTMF 9 injected from anywhere would otherwise send a caller to the police line).

The rule: the source IP must be the connection address the SDP named, and the first packet from that
address fixes the source port; from then on only that exact (address, port) is heard. A re-INVITE of the
dialog's peer that moves the stream starts the rule afresh (`expect`).

Why not "the SDP's address and port": many phones, pyVoIP among them, send RTP from another socket than
the one they receive on (asymmetric RTP), so the source port is not the SDP port. Why not "latch whatever
comes first": then an injector that is faster than the caller (a flood of packets at every port of the
range) takes the call over. The address check keeps everyone else out; the latch keeps other senders on the
caller's own host out once the caller has spoken. Phones behind NAT, whose packets come from another address
than their SDP names, are not supported by this edge (see README "Security": put an SBC in front).
"""
from __future__ import annotations

import threading


class RtpSourceLock:
    """Decides, per datagram, whether it comes from the call's far end (media thread); the SIP thread may
    move the expectation at any time (`expect`)."""

    def __init__(self, host: str) -> None:
        self._expected: tuple[str, int | None] = (host, None)
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        return self._expected[0]

    @property
    def latched_port(self) -> int | None:
        return self._expected[1]

    def expect(self, host: str) -> None:
        """The far end moved (re-INVITE): accept its new address, latch its port afresh."""
        with self._lock:
            self._expected = (host, None)

    def accept(self, source: tuple[str, int]) -> bool:
        with self._lock:
            host, port = self._expected
            if source[0] != host or (port is not None and source[1] != port):
                return False
            if port is None:
                self._expected = (host, source[1])
            return True
