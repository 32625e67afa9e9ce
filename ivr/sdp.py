"""SDP offer/answer for one audio stream (RFC 3264, RFC 4566), as the IVR negotiates it.

An offer is read from the SDP text itself (not pyVoIP's parse, which binds a port per audio line before
anyone looked at the codecs): the first active `m=audio` line over RTP/AVP, its connection address (media
level, else session level) and the codec we prefer among those offered, plus RFC 4733 telephone-events.
`OfferNotAcceptable` says why an offer cannot be taken; the SIP layer answers it with 488 Not Acceptable
Here, before any port or call slot is taken.

The connection address must be an IPv4 literal: a host name would have to be resolved, and resolving it on
the media thread for every packet (what sendto() with a name does) stalls every call; resolving it once on
the SIP thread would let any caller make the node wait on a DNS server of their choosing. No phone we know
puts a name there, so a name is refused.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

STATIC_PAYLOAD_TYPES = {0: "PCMU", 3: "GSM", 4: "G723", 8: "PCMA", 9: "G722", 18: "G729"}  # RFC 3551
TELEPHONE_EVENT = "telephone-event"


class OfferNotAcceptable(ValueError):
    """The offer has no audio stream we can take; the message is the reason (sent in a Warning header)."""


@dataclass(frozen=True)
class AudioOffer:
    """The far end's audio stream as negotiated: where to send RTP, and with which payload types."""

    address: str  # IPv4 literal
    port: int
    codec: str  # one of the codecs we support
    payload_type: int
    dtmf_payload_type: int | None


def _connection_address(line: str) -> str:
    """The address of a `c=` line's value ("IN IP4 192.0.2.1"), checked to be a usable unicast IPv4 literal."""
    parts = line.split()
    if len(parts) != 3 or parts[0] != "IN":
        raise OfferNotAcceptable(f"malformed connection line c={line}")
    if parts[1] != "IP4":
        raise OfferNotAcceptable(f"only IPv4 media is supported (c={line})")
    text = parts[2].split("/", 1)[0]
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise OfferNotAcceptable(f"the connection address {text!r} is not an IPv4 address (host names are "
                                 "not resolved)") from None
    if address.is_multicast or address.is_unspecified or address == ipaddress.IPv4Address("255.255.255.255"):
        raise OfferNotAcceptable(f"the connection address {text} is not a unicast address")
    return str(address)


@dataclass
class _Media:
    port: int
    protocol: str
    formats: list[str]
    connection: str | None = None
    rtpmap: dict[int, str] | None = None


def choose_audio(sdp: str, codecs: tuple[str, ...] | list[str]) -> AudioOffer:
    """The audio stream to use from an SDP offer (or answer), taking the first of `codecs` the far end offers."""
    session_connection: str | None = None
    audio: list[_Media] = []
    current: _Media | None = None
    for raw in sdp.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:].strip()
        if kind == "m":
            fields = value.split()
            current = None
            if len(fields) >= 4 and fields[0] == "audio":
                try:
                    port = int(fields[1].split("/", 1)[0])
                except ValueError:
                    raise OfferNotAcceptable(f"malformed media line m={value}") from None
                current = _Media(port, fields[2], fields[3:], rtpmap={})
                audio.append(current)
        elif kind == "c":
            if current is None and not audio:
                session_connection = value
            elif current is not None:
                current.connection = value
        elif kind == "a" and current is not None and value.startswith("rtpmap:"):
            number, _, encoding = value[len("rtpmap:"):].partition(" ")
            try:
                current.rtpmap[int(number)] = encoding.strip()  # type: ignore[index]
            except ValueError:
                continue
    usable = [media for media in audio if media.port != 0 and media.protocol.upper() == "RTP/AVP"]
    if not usable:
        raise OfferNotAcceptable("the offer has no active RTP/AVP audio stream")
    media = usable[0]
    if not 1 <= media.port <= 65535:
        raise OfferNotAcceptable(f"audio port {media.port} is out of range")
    connection = media.connection or session_connection
    if connection is None:
        raise OfferNotAcceptable("the offer names no connection address")
    address = _connection_address(connection)
    offered: dict[int, str] = {}
    for text in media.formats:
        try:
            number = int(text)
        except ValueError:
            continue
        encoding = (media.rtpmap or {}).get(number)
        if encoding is not None:
            name, _, rate = encoding.partition("/")
            if rate.split("/", 1)[0] == "8000":
                offered[number] = name
        elif number in STATIC_PAYLOAD_TYPES:
            offered[number] = STATIC_PAYLOAD_TYPES[number]
    chosen = next(((number, wanted) for wanted in codecs for number, name in offered.items()
                   if name.upper() == wanted.upper()), None)
    if chosen is None:
        names = sorted({name for name in offered.values() if name.lower() != TELEPHONE_EVENT}) or ["none"]
        raise OfferNotAcceptable(f"no common codec: offered {', '.join(names)}; we take {', '.join(codecs)}")
    dtmf = next((number for number, name in offered.items() if name.lower() == TELEPHONE_EVENT), None)
    return AudioOffer(address, media.port, chosen[1], chosen[0], dtmf)


def answer_sdp(session_id: int, address: str, port: int, offer: AudioOffer) -> str:
    """Our answer to `offer`: the chosen codec (and telephone-events if offered) on our `address`:`port`."""
    formats = [offer.payload_type] + ([offer.dtmf_payload_type] if offer.dtmf_payload_type is not None else [])
    lines = [
        "v=0",
        f"o=hotline12345 {session_id} {session_id} IN IP4 {address}",
        "s=hotline12345",
        f"c=IN IP4 {address}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(map(str, formats))}",
        f"a=rtpmap:{offer.payload_type} {offer.codec}/8000",
    ]
    if offer.dtmf_payload_type is not None:
        lines += [f"a=rtpmap:{offer.dtmf_payload_type} {TELEPHONE_EVENT}/8000",
                  f"a=fmtp:{offer.dtmf_payload_type} 0-15"]
    lines += ["a=ptime:20", "a=sendrecv"]
    return "\r\n".join(lines) + "\r\n"
