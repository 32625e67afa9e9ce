"""RFC 4733 telephone events: exact payload bytes both ways, digit mapping, malformed input."""
import pytest

from ivr.dtmf import TelephoneEvent, digit_to_event, event_to_digit


def test_parse_end_packet_of_digit_5():
    # event 5, E bit set, volume 10, duration 800 samples (100 ms at 8 kHz)
    event = TelephoneEvent.parse(bytes.fromhex("058a0320"))
    assert event == TelephoneEvent(event=5, end=True, volume=10, duration=800)
    assert event.digit == "5"


def test_serialise_exact_bytes():
    assert bytes(TelephoneEvent(event=11, end=False, volume=10, duration=160)) == bytes.fromhex("0b0a00a0")
    assert bytes(TelephoneEvent(event=10, end=True, volume=0, duration=65535)) == bytes.fromhex("0a80ffff")


def test_digit_mapping_covers_keypad():
    assert [digit_to_event(d) for d in "0123456789*#ABCD"] == list(range(16))
    assert digit_to_event("a") == 12
    assert event_to_digit(11) == "#"


@pytest.mark.parametrize("bad", ["", "12", "E", " "])
def test_not_a_digit(bad):
    with pytest.raises(ValueError, match="not a DTMF digit"):
        digit_to_event(bad)


def test_non_dtmf_event_and_short_payload():
    with pytest.raises(ValueError, match="not a DTMF digit"):
        event_to_digit(16)  # flash-hook is not a digit
    with pytest.raises(ValueError, match="4 bytes"):
        TelephoneEvent.parse(b"\x05\x8a")
    with pytest.raises(ValueError, match="volume"):
        bytes(TelephoneEvent(event=1, volume=64))
