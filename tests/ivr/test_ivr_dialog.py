"""Media and signalling locked to the dialog (issue 8 findings 5, 6 and pyVoIP's tags of finding 10),
through the real Kamailio with raw SIP and RTP datagrams from the test:

- RTP is heard only from the caller: digits injected from another port or another host are not;
- BYE and re-INVITE count only from the dialog's peer: with its Call-ID and both tags, through the SIP
  server; a forged one is 481 or never read, and the call, its media and its far end stay as they were;
- the BYE's 200 keeps the dialog's To tag; a re-INVITE of the peer moves the media;
- an SDP host name is 488 (never resolved per packet); the IVR's Call-IDs, tags and branches are random;
- pyVoIP's tag bookkeeping stays bounded however many calls come.
"""
from __future__ import annotations

import hashlib
import re
import threading
import time

import pytest

from tests.ivr.leaks import Baseline
from tests.ivr.raw_sip import RawRtp, RawSipEndpoint, new_token, sdp_offer

pytestmark = pytest.mark.sip

CALLER = "1018"
CALLEE = "1019"


class DigitApp:
    """Collects the caller's key presses until the call ends."""

    def __init__(self) -> None:
        self.digits = ""
        self.sessions: list = []
        self.lock = threading.Lock()

    def on_call(self, session) -> None:
        self.sessions.append(session)
        while not session.ended:
            try:
                digit = session.next_digit(0.5)
            except Exception:  # CallEnded
                return
            if digit:
                with self.lock:
                    self.digits += digit


@pytest.fixture
def endpoints(sip_server):
    """(caller's SIP endpoint through Kamailio, the caller's RTP socket); closed after the test."""
    sip = RawSipEndpoint((sip_server.host, sip_server.port))
    rtp = RawRtp()
    yield sip, rtp
    sip.close()
    rtp.close()


def call_the_ivr(sip_server, sip: RawSipEndpoint, rtp: RawRtp, **sdp_options):
    final, dialog = sip.invite("12345", user=CALLER, password=sip_server.password(CALLER),
                               sdp=sdp_offer(*rtp.address, **sdp_options))
    assert final is not None and final.status == 200, final and final.first_line
    return final, dialog


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(predicate())


def test_rtp_from_anyone_but_the_caller_is_not_heard(sip_server, ivr_node_factory, endpoints):
    """An injected 9 (emergency guidance: 9 transfers to 110) from another socket of the caller's host,
    or from another host, is not a key press; the caller's own 1 is."""
    sip, rtp = endpoints
    app = DigitApp()
    ivr_node_factory(app.on_call)
    final, dialog = call_the_ivr(sip_server, sip, rtp)
    ivr_rtp = final.sdp_audio()
    rtp.send_silence(ivr_rtp, frames=10)  # the caller speaks first, as phones do
    neighbour, stranger = RawRtp("127.0.0.1"), RawRtp("127.0.0.77")
    try:
        for injector in (neighbour, stranger):
            injector.ssrc = rtp.ssrc  # even with the caller's SSRC and sequence numbers
            injector.sequence, injector.timestamp = rtp.sequence, rtp.timestamp
            injector.send_digit(ivr_rtp, "9")
    finally:
        neighbour.close()
        stranger.close()
    time.sleep(0.3)
    rtp.send_digit(ivr_rtp, "1")
    assert wait_for(lambda: app.digits, 5)
    time.sleep(0.3)
    assert app.digits == "1"
    sip.send_in_dialog(dialog, "BYE")


def test_bye_and_reinvite_from_anyone_but_the_dialogs_peer_change_nothing(sip_server, ivr_node_factory,
                                                                          endpoints):
    sip, rtp = endpoints
    app = DigitApp()
    node = ivr_node_factory(app.on_call)
    direct = RawSipEndpoint(("127.0.0.1", node.sip_port))  # from the SIP server's host, past the proxy
    outsider = RawSipEndpoint(("127.0.0.1", node.sip_port), local_ip="127.0.0.77")
    hijack = RawRtp()
    try:
        baseline = Baseline()
        final, dialog = call_the_ivr(sip_server, sip, rtp)
        session = app.sessions[0] if wait_for(lambda: app.sessions) else None
        assert session is not None

        # 1. The right Call-ID and tags, but from another host than the SIP server: never read.
        outsider.send(outsider.in_dialog_request(dialog, "BYE"))
        assert outsider.receive(timeout=1.0) is None
        # 2. From the server's host but with a wrong tag (guessing the IVR's): 481.
        cseq = direct.send_in_dialog(dialog, "BYE", to_tag=new_token())
        response = direct.final_response(dialog.call_id, cseq, "BYE", timeout=3)
        assert response is not None and response.status == 481
        # 3. A re-INVITE moving the media to someone else, with the caller's tag but not the IVR's: 481.
        cseq = direct.send_in_dialog(dialog, "INVITE", to_tag=new_token(), body=sdp_offer(*hijack.address))
        response = direct.final_response(dialog.call_id, cseq, "INVITE", timeout=3)
        assert response is not None and response.status == 481
        # 4. The same through the SIP server: refused there (or by the IVR), never reaching the call.
        cseq = sip.send_in_dialog(dialog, "BYE", from_tag=new_token())
        response = sip.final_response(dialog.call_id, cseq, "BYE", timeout=3)
        assert response is not None and response.status == 481

        assert not session.ended and node.health().active_calls == 1
        assert hijack.received(timeout=1.0) == 0  # the IVR's audio did not move
        assert rtp.received(timeout=0.5) > 5  # it still goes to the caller

        # The caller's own BYE ends the call, answered with the dialog's To tag (pyVoIP made a new one).
        cseq = sip.send_in_dialog(dialog, "BYE")
        response = sip.final_response(dialog.call_id, cseq, "BYE", timeout=3)
        assert response is not None and response.status == 200
        assert response.tag("to") == dialog.remote_tag
        assert wait_for(lambda: session.ended)
        baseline.assert_back(node)
    finally:
        for endpoint in (direct, outsider, hijack):
            endpoint.close()


def test_a_reinvite_of_the_peer_moves_the_media(sip_server, ivr_node_factory, endpoints):
    sip, rtp = endpoints
    ivr_node_factory(DigitApp().on_call)
    moved = RawRtp()
    try:
        _, dialog = call_the_ivr(sip_server, sip, rtp)
        assert rtp.received(timeout=0.5) > 5
        cseq = sip.send_in_dialog(dialog, "INVITE", body=sdp_offer(*moved.address))
        response = sip.final_response(dialog.call_id, cseq, "INVITE", timeout=3)
        assert response is not None and response.status == 200
        assert response.tag("to") == dialog.remote_tag
        sip.send_in_dialog(dialog, "ACK", cseq=cseq)
        time.sleep(0.2)
        rtp.received(timeout=0.2)  # what was on the way
        assert moved.received(timeout=1.0) > 20 and rtp.received(timeout=0.5) == 0
        sip.send_in_dialog(dialog, "BYE")
    finally:
        moved.close()


def test_a_host_name_as_media_address_is_488_and_takes_nothing(sip_server, ivr_node_factory, endpoints):
    sip, rtp = endpoints
    node = ivr_node_factory(DigitApp().on_call)
    baseline = Baseline()
    final, _ = sip.invite("12345", user=CALLER, password=sip_server.password(CALLER),
                          sdp=sdp_offer(*rtp.address, connection="media.example.invalid"))
    assert final is not None and (final.status, final.reason) == (488, "Not Acceptable Here")
    assert "not an IPv4 address" in (final.header("warning") or "")
    baseline.assert_back(node)


def test_the_ivrs_call_ids_tags_and_branches_are_unguessable(sip_server, ivr_node_factory):
    """pyVoIP's Call-ID is sha256(counter) (the same in every process) and its tags md5(random())[:8]."""
    node = ivr_node_factory(lambda session: None)
    callee = RawSipEndpoint((sip_server.host, sip_server.port))
    counter_hashes = {hashlib.sha256(str(n).encode()).hexdigest()[:32] for n in range(10000)}
    seen: list[tuple[str, str, str]] = []
    try:
        registered = callee.register(CALLEE, sip_server.password(CALLEE))
        assert registered is not None and registered.status == 200, registered and registered.first_line
        for _ in range(2):
            result: list = []
            dialling = threading.Thread(target=lambda: result.append(node.dial(CALLEE, timeout=10)))
            dialling.start()
            invite = callee.request_received("INVITE", timeout=10)
            assert invite is not None
            callee.reply(invite, 486, "Busy Here", to_tag=new_token())
            dialling.join(15)
            assert result and result[0].status == "busy"
            branch = re.search(r"branch=([^;\s,]+)", invite.all("via")[-1]).group(1)
            seen.append((invite.call_id, invite.tag("from"), branch))
    finally:
        callee.unregister(CALLEE, sip_server.password(CALLEE))
        callee.close()
    for call_id, tag, branch in seen:
        local_part = call_id.split("@")[0]
        assert re.fullmatch(r"[0-9a-f]{32}", local_part) and local_part not in counter_hashes
        assert len(tag) >= 16 and len(branch) >= 7 + 24
    assert len({value for triple in seen for value in triple}) == 6  # nothing repeats


def test_tag_bookkeeping_stays_bounded_however_many_calls(sip_server, ivr_node_factory, endpoints):
    """pyVoIP keeps every tag it ever made in a list it scans on each new one, and each call's tag in a
    dictionary for ever; here neither grows with the calls."""
    sip, rtp = endpoints
    node = ivr_node_factory(lambda session: session.wait_ended(30))
    bookkeeping = node._phone.sip  # what is under test is pyVoIP's own state
    kept_before = len(bookkeeping.tags), len(bookkeeping.tagLibrary)
    for _ in range(30):
        _, dialog = call_the_ivr(sip_server, sip, rtp)
        cseq = sip.send_in_dialog(dialog, "BYE")
        response = sip.final_response(dialog.call_id, cseq, "BYE", timeout=3)
        assert response is not None and response.status == 200
    assert wait_for(lambda: node.health().active_calls == 0)
    assert (len(bookkeeping.tags), len(bookkeeping.tagLibrary)) == kept_before, bookkeeping.tagLibrary
