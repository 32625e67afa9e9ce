"""G.711 against values from the ITU-T tables, and a round trip keeping 16-bit resolution."""
import struct

import pytest

from ivr import g711


def pcm(*samples: int) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


def test_pcmu_known_code_words():
    # μ-law: 0xFF and 0x7F are the two zeros, 0x00 is the most negative step (-32124), 0x80 the most positive.
    assert g711.decode_pcmu(bytes([0xFF, 0x7F, 0x00, 0x80])) == pcm(0, 0, -32124, 32124)
    assert g711.encode_pcmu(pcm(0, -32124, 32124)) == bytes([0xFF, 0x00, 0x80])


def test_pcma_known_code_words():
    # A-law: 0xD5 and 0x55 are the smallest steps (+8 / -8), 0xAA and 0x2A the largest (+32256 / -32256).
    assert g711.decode_pcma(bytes([0xD5, 0x55, 0xAA, 0x2A])) == pcm(8, -8, 32256, -32256)
    assert g711.encode_pcma(pcm(0, 32256, -32256)) == bytes([0xD5, 0xAA, 0x2A])


@pytest.mark.parametrize("encode, decode", [(g711.encode_pcmu, g711.decode_pcmu),
                                            (g711.encode_pcma, g711.decode_pcma)])
def test_round_trip_is_close_and_16_bit(encode, decode):
    samples = [0, 100, -100, 1000, -1000, 12000, -12000, 30000, -30000]
    decoded = struct.unpack(f"<{len(samples)}h", decode(encode(pcm(*samples))))
    for original, back in zip(samples, decoded):
        assert abs(original - back) <= max(16, abs(original) // 16)  # G.711 keeps ~4 % relative error
    assert len(encode(bytes(320))) == 160  # one 20 ms frame: 160 samples → 160 code words


def test_odd_length_pcm_is_refused():
    with pytest.raises(ValueError, match="even number of bytes"):
        g711.encode_pcmu(b"\x00\x00\x00")
