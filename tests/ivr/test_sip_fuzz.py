"""Fuzzing the SIP port: RFC 4475's torture messages and 10,000 random or mutated datagrams straight to the
IVR's SIP port, and the torture messages plus 1,000 mutated datagrams through Kamailio. Afterwards the
node and Kamailio still serve a normal call, and no call slot, socket or call thread is left over.

The fuzz comes from 127.0.0.1, the SIP server's own address, which the IVR reads (from anywhere else it
drops datagrams unread: test_ivr_dialog.py). Mutations are seeded, so a failure repeats; valid INVITEs
among them are answered and then hung up for want of an ACK (ack_timeout), which is part of what is tested.
"""
from __future__ import annotations

import random
import threading
import time

import pytest

from ivr.local_sip_server import sip_options_ping
from tests.ivr.leaks import Baseline
from tests.ivr.raw_sip import RawSipEndpoint, SipMessage, new_token, sdp_offer
from tests.ivr.rfc4475 import TORTURE

pytestmark = pytest.mark.sip

SEED = 4475
DIRECT_DATAGRAMS = 10_000
THROUGH_KAMAILIO = 1_000
CALL_IDS = [f"fuzz-{n}@127.0.0.1" for n in range(12)]  # reused, so mutations hit calls that exist
JUNK = [b"\r\n", b"\r\n\r\n", b":", b";", b",", b"<", b">", b'"', b"\\", b"\x00", b"%00", b"\xff\xfe", b" ",
        b"\t", b"9" * 40, b"-1", b"tag=", b";tag=", b"branch=z9hG4bK", "\u5927\u505c\u96fb".encode(),
        b"SIP/2.0", b"INVITE", b"BYE", b"CANCEL", b"ACK", b"Content-Length: 99999\r\n", b"Via: \r\n"]


def templates(ivr_port: int, sdp_port: int) -> list[bytes]:
    """Well-formed requests to the IVR to start mutating from."""
    out = []
    for method in ("INVITE", "BYE", "CANCEL", "ACK", "OPTIONS", "REGISTER", "INFO"):
        body = sdp_offer("127.0.0.1", sdp_port) if method == "INVITE" else ""
        lines = [f"{method} sip:12345@127.0.0.1:{ivr_port} SIP/2.0",
                 "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{branch};rport", "Max-Forwards: 70",
                 "From: <sip:1001@127.0.0.1>;tag={tag}", "To: <sip:12345@127.0.0.1>{to_tag}", "Call-ID: {call_id}",
                 f"CSeq: 1 {method}", "Contact: <sip:1001@127.0.0.1:5999>"]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        out.append(("\r\n".join(lines) + "\r\n\r\n" + body).encode())
    return out


def fill(template: bytes, rng: random.Random) -> bytes:
    return template.replace(b"{branch}", new_token().encode()).replace(b"{tag}", new_token().encode()) \
        .replace(b"{to_tag}", rng.choice([b"", b";tag=" + new_token().encode()])) \
        .replace(b"{call_id}", rng.choice(CALL_IDS + [new_token()] * 4).encode())


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        position = rng.randint(0, len(data)) if data else 0
        if choice < 0.25 and data:  # overwrite a few octets
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice < 0.40:  # cut a piece out
            del data[position:position + rng.randint(1, 40)]
        elif choice < 0.65:  # put something nasty in
            data[position:position] = rng.choice(JUNK)
        elif choice < 0.75:  # truncate
            del data[position:]
        elif choice < 0.90:  # duplicate or drop a header line
            lines = bytes(data).split(b"\r\n")
            if len(lines) > 2:
                index = rng.randrange(1, len(lines))
                if rng.random() < 0.5:
                    lines.insert(index, lines[index])
                else:
                    del lines[index]
            data = bytearray(b"\r\n".join(lines))
        else:  # a header's value becomes junk
            lines = bytes(data).split(b"\r\n")
            index = rng.randrange(len(lines))
            name = lines[index].split(b":", 1)[0]
            lines[index] = name + b": " + bytes(rng.randrange(256) for _ in range(rng.randint(0, 60)))
            data = bytearray(b"\r\n".join(lines))
    return bytes(data)


def datagrams(count: int, ivr_port: int, sdp_port: int, rng: random.Random):
    bases = templates(ivr_port, sdp_port)
    torture = list(TORTURE.values())
    for _ in range(count):
        kind = rng.random()
        if kind < 0.05:
            yield bytes(rng.randrange(256) for _ in range(rng.randint(0, 1500)))  # noise
        elif kind < 0.10:
            yield fill(rng.choice(bases), rng)  # a well-formed request
        elif kind < 0.35:
            yield mutate(rng.choice(torture), rng)
        else:
            yield mutate(fill(rng.choice(bases), rng), rng)


def blast(endpoint: RawSipEndpoint, target: tuple[str, int], packets) -> int:
    """Send at a pace the receiver can read (bursts of 50), discarding whatever comes back."""
    sent = 0
    for datagram in packets:
        endpoint.sock.sendto(datagram[:8000], target)
        sent += 1
        if sent % 50 == 0:
            time.sleep(0.005)
            endpoint.drain()
    return sent


def test_torture_and_random_datagrams_leave_the_node_serving_and_nothing_behind(sip_server, ivr_node_factory):
    node = ivr_node_factory(lambda session: session.wait_ended(60), max_calls=20, ack_timeout=1.0,
                            media_timeout=5.0)
    fuzzer = RawSipEndpoint(("127.0.0.1", node.sip_port))
    via_proxy = RawSipEndpoint((sip_server.host, sip_server.port))
    caller = RawSipEndpoint((sip_server.host, sip_server.port))
    rng = random.Random(SEED)
    try:
        baseline = Baseline()
        receiver = next(t for t in threading.enumerate() if t.name == "ivr-sip-receive" and t.is_alive())

        # RFC 4475 straight to the IVR: it answers what it can answer, drops the rest, keeps going.
        answers: dict[str, list[SipMessage]] = {}
        for name, datagram in TORTURE.items():
            fuzzer.drain()
            fuzzer.send(datagram)
            answers[name] = []
            while (response := fuzzer.receive(lambda m: m.is_response, timeout=0.3)) is not None:
                answers[name].append(response)
        assert [m.status for m in answers["lwsdisp"]] == [200]  # OPTIONS: pyVoIP parses no OPTIONS, we do
        assert [m.status for m in answers["mismatch02"]] == [501]  # an unknown method
        assert answers["insuf"] == []  # no From/To/Call-ID: nothing to answer with
        assert answers["bigcode"] == [] and answers["unreason"] == []  # responses to nothing of ours
        assert 200 in [m.status for m in answers["esc01"]]  # a valid INVITE (escaped URIs) is a call

        # and through Kamailio, which must stay up as well
        for datagram in TORTURE.values():
            via_proxy.send(datagram)
        sent = blast(fuzzer, ("127.0.0.1", node.sip_port),
                     datagrams(DIRECT_DATAGRAMS, node.sip_port, fuzzer.port, rng))
        sent += blast(via_proxy, (sip_server.host, sip_server.port),
                      datagrams(THROUGH_KAMAILIO, node.sip_port, fuzzer.port, rng))
        assert sent == DIRECT_DATAGRAMS + THROUGH_KAMAILIO
        health = node.health()
        assert health.malformed_sip_datagrams > 1000, health  # the garbage was read, not lost
        assert receiver.is_alive()
        assert sip_options_ping(sip_server.host, sip_server.port)

        baseline.assert_back(node, timeout=20)  # every fuzz call ended (no ACK came), nothing kept
        final, dialog = caller.invite("12345", user="1016", password=sip_server.password("1016"),
                                      sdp=sdp_offer("127.0.0.1", fuzzer.port))
        assert final is not None and final.status == 200, final and final.first_line
        cseq = caller.send_in_dialog(dialog, "BYE")
        bye = caller.final_response(dialog.call_id, cseq, "BYE")
        assert bye is not None and bye.status == 200
        baseline.assert_back(node)
    finally:
        for endpoint in (fuzzer, via_proxy, caller):
            endpoint.close()
