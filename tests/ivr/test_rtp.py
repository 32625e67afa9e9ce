"""RTP packets: a captured PCMU packet, round trips, and malformed datagrams raising ValueError."""
import pytest

from ivr.rtp import RtpPacket

# Header of a PCMU packet as sent by a desk phone: V=2, M=1, PT=0, seq 0x1234, ts 0x000000A0, SSRC 0xDEADBEEF.
CAPTURED = bytes.fromhex("80801234000000a0deadbeef") + b"\xff" * 160


def test_parse_captured_packet():
    packet = RtpPacket.parse(CAPTURED)
    assert (packet.payload_type, packet.marker, packet.sequence_number, packet.timestamp, packet.ssrc) == (
        0, True, 0x1234, 0xA0, 0xDEADBEEF)
    assert packet.payload == b"\xff" * 160
    assert bytes(packet) == CAPTURED


def test_serialise_exact_bytes():
    packet = RtpPacket(payload_type=8, sequence_number=65535, timestamp=2**32 - 1, ssrc=1, payload=b"\xd5\xd5")
    assert bytes(packet) == bytes.fromhex("8008ffffffffffff00000001d5d5")


def test_csrc_extension_and_padding():
    data = (bytes.fromhex("b1650001000000020000000300000009") +  # V=2 P=1 X=1 CC=1, PT=101, CSRC 9
            bytes.fromhex("bede000112345678") +  # one-word header extension
            b"\x0a\x80\x03\x20" + b"\x00\x00\x00\x04")  # payload + 4 bytes of padding
    packet = RtpPacket.parse(data)
    assert packet.csrc == [9]
    assert (packet.extension_profile, packet.extension) == (0xBEDE, bytes.fromhex("12345678"))
    assert packet.payload == b"\x0a\x80\x03\x20"
    assert packet.payload_type == 101


@pytest.mark.parametrize("data, message", [
    (b"\x80\x00\x00", "too short"),
    (bytes.fromhex("400000010000000000000001"), "version must be 2"),  # version 1
    (bytes.fromhex("820000010000000000000001"), "CSRC"),  # CC=2 without the CSRC words
    (bytes.fromhex("900000010000000000000001bede0002"), "extension"),  # extension longer than the packet
    (bytes.fromhex("a00000010000000000000001") + b"\x00\x00", "padding"),  # padding length 0
    (bytes.fromhex("a00000010000000000000001") + b"\x09", "padding"),  # more padding than packet
])
def test_malformed_packets_raise(data, message):
    with pytest.raises(ValueError, match=message):
        RtpPacket.parse(data)
