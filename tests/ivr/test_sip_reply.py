"""ivr.sip_reply: responses copy the request's Via/From/To/Call-ID/CSeq verbatim and keep a dialog's To tag."""
from __future__ import annotations

from ivr.sip_reply import build_response, dialog_headers, request_headers

BYE = (b"BYE sip:12345@127.0.0.1:5070 SIP/2.0\r\n"
       b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy;rport=5060;received=127.0.0.1\r\n"
       b"v: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKphone, SIP/2.0/UDP 10.0.0.6;branch=z9hG4bKx\r\n"
       b'f: "Caller" <sip:1001@example.org>;tag=abc;x=1\r\n'
       b"To: <sip:12345@example.org>;tag=ours\r\n"
       b"i: call-1@host\r\n"
       b"CSeq: 7 BYE\r\n"
       b"Content-Length: 0\r\n\r\n")


def test_an_in_dialog_request_keeps_its_to_tag_and_every_via_in_order():
    text = build_response(BYE, 200, "OK", to_tag="fresh", headers=["Server: test"])
    lines = text.split("\r\n")
    assert lines[0] == "SIP/2.0 200 OK"
    assert lines[1:3] == ["Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy;rport=5060;received=127.0.0.1",
                          "Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKphone, SIP/2.0/UDP 10.0.0.6;branch=z9hG4bKx"]
    assert 'From: "Caller" <sip:1001@example.org>;tag=abc;x=1' in lines
    assert "To: <sip:12345@example.org>;tag=ours" in lines  # not ;tag=fresh
    assert "Call-ID: call-1@host" in lines and "CSeq: 7 BYE" in lines and "Server: test" in lines
    assert text.endswith("Content-Length: 0\r\n\r\n")


def test_an_initial_request_gets_the_tag_and_a_body_its_type_and_length():
    invite = BYE.replace(b"BYE sip", b"INVITE sip").replace(b";tag=ours", b"").replace(b"7 BYE", b"1 INVITE")
    text = build_response(invite, 200, "OK", to_tag="t1", body="v=0\r\n")
    assert "To: <sip:12345@example.org>;tag=t1\r\n" in text
    assert "Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n" in text


def test_what_cannot_be_answered_gives_none():
    assert build_response(BYE.replace(b"i: call-1@host\r\n", b""), 400, "Bad Request") is None  # no Call-ID
    assert build_response(b"SIP/2.0 200 OK\r\n" + BYE.split(b"\r\n", 1)[1], 200, "OK") is None  # a response
    assert build_response(b"\x00\x01garbage", 400, "Bad Request") is None
    assert request_headers(b"") is None


def test_dialog_headers_read_responses_too():
    response = b"SIP/2.0 180 Ringing\r\n" + BYE.split(b"\r\n", 1)[1]
    assert dialog_headers(response)["to"] == ["<sip:12345@example.org>;tag=ours"]
