"""ivr.sip_canonical: folded, compact, oddly cased headers become what pyVoIP reads; the body is untouched."""
from __future__ import annotations

from ivr.sip import SIP  # pyVoIP.SIP, imported the way that avoids pyVoIP's circular import
from ivr.sip_canonical import canonical
from tests.ivr.rfc4475 import TORTURE


def test_compact_folded_and_cased_headers_are_rewritten_and_the_body_kept():
    raw = (b"INVITE sip:12345@example.org SIP/2.0\r\n"
           b"v:SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n"
           b"f  :  <sip:1001@example.org>\r\n  ;tag=abc\r\n"
           b"t: <sip:12345@example.org>\r\ni: c1\r\ncseq: 1 INVITE\r\nm: <sip:1001@192.0.2.1>\r\n"
           b"X-Custom :  kept as named\r\nc: application/sdp\r\nl: 12\r\n\r\n"
           b"v=0\r\nx : y\r\n")
    assert canonical(raw) == (b"INVITE sip:12345@example.org SIP/2.0\r\n"
                              b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n"
                              b"From: <sip:1001@example.org> ;tag=abc\r\n"
                              b"To: <sip:12345@example.org>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n"
                              b"Contact: <sip:1001@192.0.2.1>\r\nX-Custom: kept as named\r\n"
                              b"Content-Type: application/sdp\r\nContent-Length: 12\r\n\r\n"
                              b"v=0\r\nx : y\r\n")


def test_rfc4475_esc01_becomes_readable_by_pyvoip():
    head = canonical(TORTURE["esc01"]).split(b"\r\n\r\n")[0]
    message = SIP.SIPMessage(head + b"\r\n\r\n")  # the headers: what IvrSipClient gives pyVoIP
    assert message.headers["Call-ID"] == "esc01.239409asdfakjkn23onasd0-3234"
    assert message.headers["From"]["tag"] == "938"
    assert message.headers["Contact"] == "<sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>"
