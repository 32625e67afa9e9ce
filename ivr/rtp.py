"""RTP packets (RFC 3550 §5.1) as a typed dataclass: `RtpPacket.parse(datagram)` and `bytes(packet)`.

Only what a G.711 phone needs: version 2, CSRC list and header extension are parsed and kept so a packet
round-trips, padding is stripped. Anything malformed raises ValueError so the receiver can drop it.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")


@dataclass
class RtpPacket:
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    extension_profile: int | None = None
    extension: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < HEADER.size:
            raise ValueError(f"RTP packet too short: {len(data)} bytes, the fixed header has {HEADER.size}")
        first, second, sequence_number, timestamp, ssrc = HEADER.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise ValueError(f"RTP version must be {RTP_VERSION}, got {version}")
        has_padding = bool(first & 0x20)
        has_extension = bool(first & 0x10)
        csrc_count = first & 0x0F
        offset = HEADER.size
        if len(data) < offset + 4 * csrc_count:
            raise ValueError(f"RTP packet announces {csrc_count} CSRC but has only {len(data)} bytes")
        csrc = list(struct.unpack_from(f"!{csrc_count}I", data, offset))
        offset += 4 * csrc_count
        extension_profile = None
        extension = b""
        if has_extension:
            if len(data) < offset + 4:
                raise ValueError("RTP header extension truncated")
            extension_profile, words = struct.unpack_from("!HH", data, offset)
            offset += 4
            if len(data) < offset + 4 * words:
                raise ValueError(f"RTP header extension announces {words} words but the packet ends first")
            extension = data[offset:offset + 4 * words]
            offset += 4 * words
        end = len(data)
        if has_padding:
            padding = data[-1]
            if padding == 0 or offset + padding > end:
                raise ValueError(f"RTP padding length {padding} is invalid for a {end}-byte packet")
            end -= padding
        return cls(payload_type=second & 0x7F, sequence_number=sequence_number, timestamp=timestamp, ssrc=ssrc,
                   payload=data[offset:end], marker=bool(second & 0x80), csrc=csrc,
                   extension_profile=extension_profile, extension=extension)

    def __bytes__(self) -> bytes:
        if len(self.extension) % 4:
            raise ValueError("RTP header extension must be a whole number of 32-bit words")
        first = (RTP_VERSION << 6) | (0x10 if self.extension_profile is not None else 0) | len(self.csrc)
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        header = HEADER.pack(first, second, self.sequence_number & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                             self.ssrc & 0xFFFFFFFF)
        header += struct.pack(f"!{len(self.csrc)}I", *self.csrc)
        if self.extension_profile is not None:
            header += struct.pack("!HH", self.extension_profile, len(self.extension) // 4) + self.extension
        return header + self.payload
