"""ivr.sdp: which audio stream an offer gives us, and why an offer is refused (488 before anything is taken)."""
from __future__ import annotations

import pytest

from ivr.sdp import AudioOffer, OfferNotAcceptable, answer_sdp, choose_audio


def offer(*media: str, session_c: str | None = "c=IN IP4 192.0.2.10") -> str:
    lines = ["v=0", "o=- 1 1 IN IP4 192.0.2.10", "s=-"] + ([session_c] if session_c else []) + ["t=0 0", *media]
    return "\r\n".join(lines) + "\r\n"


def test_takes_our_preferred_codec_among_those_offered_and_the_telephone_events():
    sdp = offer("m=audio 4000 RTP/AVP 8 0 101", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15")
    assert choose_audio(sdp, ("PCMU", "PCMA")) == AudioOffer("192.0.2.10", 4000, "PCMU", 0, 101)
    assert choose_audio(sdp, ("PCMA",)) == AudioOffer("192.0.2.10", 4000, "PCMA", 8, 101)


def test_dynamic_payload_types_are_read_from_rtpmap_and_media_level_connection_wins():
    sdp = offer("m=video 5000 RTP/AVP 96", "m=audio 4002 RTP/AVP 112 97", "c=IN IP4 198.51.100.7",
                "a=rtpmap:112 PCMA/8000", "a=rtpmap:97 telephone-event/8000")
    assert choose_audio(sdp, ("PCMU", "PCMA")) == AudioOffer("198.51.100.7", 4002, "PCMA", 112, 97)


def test_a_disabled_audio_line_is_skipped_for_the_next_one_and_lf_only_lines_are_read():
    sdp = offer("m=audio 0 RTP/AVP 0", "m=audio 4004 RTP/AVP 0").replace("\r\n", "\n")
    assert choose_audio(sdp, ("PCMU",)).port == 4004


@pytest.mark.parametrize("sdp,reason", [
    (offer("m=audio 4000 RTP/AVP 3 18", "a=rtpmap:18 G729/8000"), "no common codec: offered G729, GSM"),
    (offer("m=audio 4000 RTP/AVP 9", "a=rtpmap:9 G722/16000"), "no common codec"),
    (offer("m=audio 4000 RTP/AVP 96", "a=rtpmap:96 PCMU/16000"), "no common codec"),  # wrong rate
    (offer("m=audio 4000 RTP/AVP 0", session_c="c=IN IP4 media.example.org"), "not an IPv4 address"),
    (offer("m=audio 4000 RTP/AVP 0", session_c="c=IN IP6 2001:db8::1"), "only IPv4"),
    (offer("m=audio 4000 RTP/AVP 0", session_c="c=IN IP4 0.0.0.0"), "not a unicast address"),
    (offer("m=audio 4000 RTP/AVP 0", session_c="c=IN IP4 224.2.1.1/127"), "not a unicast address"),
    (offer("m=audio 4000 RTP/AVP 0", session_c=None), "names no connection address"),
    (offer("m=audio 4000 RTP/SAVP 0"), "no active RTP/AVP audio stream"),
    (offer("m=video 4000 RTP/AVP 0"), "no active RTP/AVP audio stream"),
    (offer("m=audio 70000 RTP/AVP 0"), "out of range"),
    (offer("m=audio four RTP/AVP 0"), "malformed media line"),
    ("", "no active RTP/AVP audio stream"),
    ("\x00\xff garbage = = =", "no active RTP/AVP audio stream"),
])
def test_offers_we_cannot_take_are_refused_with_the_reason(sdp, reason):
    with pytest.raises(OfferNotAcceptable, match=reason):
        choose_audio(sdp, ("PCMU", "PCMA"))


def test_the_answer_names_our_address_port_and_only_the_chosen_formats():
    chosen = AudioOffer("192.0.2.10", 4000, "PCMA", 8, 101)
    sdp = answer_sdp(77, "127.0.0.1", 30000, chosen)
    assert "c=IN IP4 127.0.0.1\r\n" in sdp and "m=audio 30000 RTP/AVP 8 101\r\n" in sdp
    assert "a=rtpmap:8 PCMA/8000\r\n" in sdp and "a=rtpmap:101 telephone-event/8000\r\n" in sdp
    assert choose_audio(sdp, ("PCMA",)) == AudioOffer("127.0.0.1", 30000, "PCMA", 8, 101)  # it reads back
    assert "101" not in answer_sdp(77, "127.0.0.1", 30000, AudioOffer("192.0.2.10", 4000, "PCMU", 0, None))
