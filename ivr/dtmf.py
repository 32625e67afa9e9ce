"""RFC 4733 (formerly RFC 2833) telephone-event payloads: DTMF digits sent inside the RTP stream.

    0                   1                   2                   3
    |     event     |E|R| volume    |          duration             |

One key press is a series of packets with the same RTP timestamp and a growing duration; the last one has
the E bit set and is usually sent three times, so a receiver counts a digit once per (timestamp, event).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

DIGITS = "0123456789*#ABCD"  # event codes 0-15, RFC 4733 §3.2
PAYLOAD = struct.Struct("!BBH")


def digit_to_event(digit: str) -> int:
    """'0'-'9', '*', '#', 'A'-'D' → event code; ValueError for anything else."""
    if len(digit) != 1 or digit.upper() not in DIGITS:
        raise ValueError(f"not a DTMF digit: {digit!r} (expected one of {DIGITS})")
    return DIGITS.index(digit.upper())


def event_to_digit(event: int) -> str:
    """Event code → digit; ValueError for codes that are not DTMF (16 and up are other tones)."""
    if not 0 <= event < len(DIGITS):
        raise ValueError(f"telephone-event {event} is not a DTMF digit")
    return DIGITS[event]


@dataclass(frozen=True)
class TelephoneEvent:
    event: int
    end: bool = False
    volume: int = 10  # power level in -dBm0, 0-63
    duration: int = 0  # in timestamp units (samples at 8 kHz)

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < PAYLOAD.size:
            raise ValueError(f"telephone-event payload must be {PAYLOAD.size} bytes, got {len(payload)}")
        event, flags, duration = PAYLOAD.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    @property
    def digit(self) -> str:
        return event_to_digit(self.event)

    def __bytes__(self) -> bytes:
        if not 0 <= self.volume <= 63:
            raise ValueError(f"telephone-event volume must be 0-63, got {self.volume}")
        if not 0 <= self.duration <= 0xFFFF:
            raise ValueError(f"telephone-event duration must fit 16 bits, got {self.duration}")
        return PAYLOAD.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)
