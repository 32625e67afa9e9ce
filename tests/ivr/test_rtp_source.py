"""ivr.rtp_source and the stream's receive path: only the far end's datagrams are heard."""
from __future__ import annotations

import socket
import time

from ivr.dtmf import TelephoneEvent
from ivr.media import MediaEngine, MediaStream, open_rtp_socket
from ivr.rtp import RtpPacket
from ivr.rtp_source import RtpSourceLock


def test_the_sdp_address_is_required_and_the_first_port_from_it_is_latched():
    lock = RtpSourceLock("192.0.2.10")
    assert not lock.accept(("198.51.100.1", 4000))  # another host first: refused, latches nothing
    assert lock.accept(("192.0.2.10", 4002))  # the caller (any port: phones send from another socket)
    assert lock.latched_port == 4002
    assert lock.accept(("192.0.2.10", 4002))
    assert not lock.accept(("192.0.2.10", 4004))  # same host, other sender
    lock.expect("192.0.2.20")  # re-INVITE moved the stream
    assert not lock.accept(("192.0.2.10", 4002))
    assert lock.accept(("192.0.2.20", 5000)) and lock.latched_port == 5000


def dtmf(sequence: int, event: int) -> bytes:
    payload = bytes(TelephoneEvent(event=event, end=True, volume=10, duration=800))
    return bytes(RtpPacket(payload_type=101, sequence_number=sequence, timestamp=1000 * sequence, ssrc=7,
                           payload=payload))


def test_a_stream_hears_digits_only_from_its_far_end():
    engine = MediaEngine()
    engine.start()
    caller, neighbour, stranger = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3))
    caller.bind(("127.0.0.1", 0))
    neighbour.bind(("127.0.0.1", 0))
    stranger.bind(("127.0.0.2", 0))
    digits: list[str] = []
    stream = MediaStream(open_rtp_socket("127.0.0.1", 30000, 40000), ("127.0.0.1", 9), "PCMU", 101,
                         on_frame=lambda frame: None, on_digit=digits.append)
    engine.add(stream)
    try:
        target = ("127.0.0.1", stream.local_port)
        stranger.sendto(dtmf(1, 9), target)  # another address: never heard, and latches nothing
        time.sleep(0.1)
        caller.sendto(dtmf(2, 1), target)  # the far end's address: heard, its port latched
        time.sleep(0.1)
        neighbour.sendto(dtmf(3, 9), target)  # same address, other port: not the caller
        time.sleep(0.1)
        caller.sendto(dtmf(4, 2), target)
        deadline = time.monotonic() + 3
        while len(digits) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert digits == ["1", "2"]
        assert stream.stats.foreign == 2
    finally:
        engine.stop()
        for sock in (caller, neighbour, stranger):
            sock.close()


def test_a_host_name_is_never_a_stream_address():
    sock = open_rtp_socket("127.0.0.1", 30000, 40000)
    try:
        MediaStream(sock, ("media.example.org", 4000), "PCMU", None, on_frame=lambda f: None,
                    on_digit=lambda d: None)
    except ValueError:
        pass
    else:
        raise AssertionError("a host name was taken as the far end's address")
    finally:
        sock.close()
