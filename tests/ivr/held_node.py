"""An IVR node in a process of its own, for the dispatcher tests that kill a node (SIGKILL): it registers
the service number, answers every call and holds it until the caller hangs up.

    python -m tests.ivr.held_node REGISTRAR_PORT PASSWORD SIP_PORT RTP_LOW RTP_HIGH MAX_CALLS

Prints READY once registered.
"""
from __future__ import annotations

import signal
import sys

from ivr.node import IvrNode
from ivr.session import CallSession


def hold(session: CallSession) -> None:
    while not session.wait_ended(0.5):
        pass


def main(argv: list[str]) -> None:
    registrar_port, password, sip_port, rtp_low, rtp_high, max_calls = argv
    node = IvrNode("127.0.0.1", int(registrar_port), "12345", password, on_call=hold, sip_port=int(sip_port),
                   rtp_ports=(int(rtp_low), int(rtp_high)), max_calls=int(max_calls))
    node.start()
    print("READY", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        signal.pause()
    except KeyboardInterrupt:
        node.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
