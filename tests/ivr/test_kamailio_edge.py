"""The SIP edge an operator can expose (issue 8 finding 1 and the SIP side of 7), against the shipped
deploy/kamailio/kamailio.cfg run by the real Kamailio, with raw SIP datagrams from the test:

- an in-dialog request (To tag) is relayed only inside a dialog the proxy saw set up, only to its peer:
  a forged To tag reaches nobody (no free calls to 12345, a seat or an outside URI);
- initial requests reach only the server's own extensions, never an outside URI;
- one device per extension: a second one is refused while the first is registered, the first may refresh
  and leave, a phone back on a new port gets in once its old binding expired;
- failed authentications ban the source address for a while; a flood from one address is dropped;
  a captured Authorization cannot be replayed from elsewhere.

Sources outside the trusted network are played by other loopback addresses (127.0.0.x, x != 1): the
shipped config trusts only 127.0.0.1 (the IVR's own address here).
"""
from __future__ import annotations

import threading
import time
from contextlib import ExitStack

import pytest

from ivr.local_sip_server import LocalSipServer
from tests.ivr.raw_sip import RawSipEndpoint, new_token, sdp_offer

pytestmark = pytest.mark.sip

CALLEE, CALLER, OTHER = "1009", "1010", "1011"


@pytest.fixture
def endpoint_factory(sip_server):
    """make(local_ip='127.0.0.1') -> a RawSipEndpoint talking to the shared Kamailio; closed after the test."""
    with ExitStack() as opened:
        yield lambda local_ip="127.0.0.1": opened.enter_context(
            RawSipEndpoint((sip_server.host, sip_server.port), local_ip=local_ip))


@pytest.fixture
def registered_callee(sip_server, endpoint_factory):
    """A raw phone registered as CALLEE (de-registered after the test)."""
    callee = endpoint_factory()
    response = callee.register(CALLEE, sip_server.password(CALLEE))
    assert response is not None and response.status == 200, response and response.first_line
    yield callee
    callee.unregister(CALLEE, sip_server.password(CALLEE))


def server_uri(sip_server, user: str) -> str:
    return f"sip:{user}@{sip_server.host}:{sip_server.port}"


def test_a_forged_to_tag_reaches_nobody(sip_server, endpoint_factory, registered_callee):
    """Unauthenticated INVITEs with a To tag: to a registered extension, to 12345, to an outside URI."""
    attacker, outside = endpoint_factory(), endpoint_factory()
    targets = [server_uri(sip_server, CALLEE), server_uri(sip_server, "12345"),
               f"sip:+8613800000000@127.0.0.1:{outside.port}"]
    for uri in targets:
        call_id = new_token()
        attacker.send(attacker.request("INVITE", uri, from_user=CALLER, to_user=CALLEE, call_id=call_id, cseq=1,
                                       from_tag=new_token(), to_tag=new_token(), body=sdp_offer("127.0.0.1", 4000)))
        response = attacker.final_response(call_id, 1, "INVITE", timeout=3)
        assert response is not None and response.status == 481, (uri, response and response.first_line)
    assert registered_callee.receive(timeout=0.5) is None
    assert outside.receive(timeout=0.1) is None


def test_in_dialog_requests_go_only_to_the_dialogs_peer_and_only_with_its_tags(sip_server, endpoint_factory,
                                                                            registered_callee):
    caller, stranger = endpoint_factory(), endpoint_factory()
    answered = threading.Event()

    def answer() -> None:
        invite = registered_callee.request_received("INVITE", timeout=10)
        registered_callee.reply(invite, 200, "OK", to_tag="callee-tag", body=sdp_offer("127.0.0.1", 4002),
                                contact_user=CALLEE)
        answered.set()

    threading.Thread(target=answer, daemon=True).start()
    final, dialog = caller.invite(CALLEE, user=CALLER, password=sip_server.password(CALLER),
                                  sdp=sdp_offer("127.0.0.1", 4000))
    assert final is not None and final.status == 200 and answered.wait(5)
    assert registered_callee.request_received("ACK", dialog.call_id, timeout=3) is not None

    # A stranger who learnt the Call-ID but not both tags: 481, the callee sees nothing.
    for forged in ({"to_tag": new_token()}, {"from_tag": new_token()}):
        cseq = stranger.send_in_dialog(dialog, "BYE", **forged)
        response = stranger.final_response(dialog.call_id, cseq, "BYE", timeout=3)
        assert response is not None and response.status == 481
    assert registered_callee.request_received("BYE", timeout=0.5) is None

    # The caller's BYE aimed at another Request-URI (an outside host) still goes to the callee only; sent
    # without our Route header, as pyVoIP sends it.
    outside = endpoint_factory()
    dialog.remote_target = f"sip:+8613800000000@127.0.0.1:{outside.port}"
    dialog.route_set = []
    caller.send_in_dialog(dialog, "BYE")
    bye = registered_callee.request_received("BYE", dialog.call_id, timeout=3)
    assert bye is not None and bye.first_line.startswith(f"BYE sip:{CALLEE}@127.0.0.1:{registered_callee.port}")
    assert outside.receive(timeout=0.3) is None


def test_initial_requests_reach_only_this_servers_extensions(sip_server, endpoint_factory, registered_callee):
    caller, outside = endpoint_factory(), endpoint_factory()
    password = sip_server.password(CALLER)
    relayed = caller.authenticated("INVITE", f"sip:{CALLEE}@127.0.0.1:{outside.port}", user=CALLER,
                                   password=password, to_user=CALLEE, body=sdp_offer("127.0.0.1", 4000))
    assert relayed is not None and (relayed.status, relayed.reason) == (403, "Relaying Forbidden")
    unknown = caller.authenticated("INVITE", server_uri(sip_server, "110"), user=CALLER, password=password,
                                   to_user="110", body=sdp_offer("127.0.0.1", 4000))
    assert unknown is not None and (unknown.status, unknown.reason) == (404, "Not A Directory Number")
    no_contact = caller.authenticated("INVITE", server_uri(sip_server, CALLEE), user=CALLER, password=password,
                                      to_user=CALLEE, body=sdp_offer("127.0.0.1", 4000), contact=False)
    assert no_contact is not None and (no_contact.status, no_contact.reason) == (400, "Missing Contact")
    assert outside.receive(timeout=0.3) is None and registered_callee.receive(timeout=0.1) is None


def test_an_extension_is_held_by_one_device(sip_server, endpoint_factory):
    first, second = endpoint_factory(), endpoint_factory()
    password = sip_server.password(OTHER)
    try:
        assert first.register(OTHER, password).status == 200
        refused = second.register(OTHER, password)
        assert refused is not None and (refused.status, refused.reason) == \
            (403, "Extension Registered From Another Device")
        assert first.register(OTHER, password).status == 200  # the holder refreshes (the IVR re-registers)
        assert first.unregister(OTHER, password).status == 200
        assert second.register(OTHER, password).status == 200  # free again
    finally:
        second.unregister(OTHER, password)


def test_failed_authentications_ban_the_source_address(sip_server, endpoint_factory, registered_callee):
    """Five wrong passwords from one address (the shipped limit): from then on that address gets no answer
    at all, even with the right password, while everyone else is served."""
    guesser = endpoint_factory(local_ip="127.0.0.71")
    password = sip_server.password(CALLER)
    for attempt in range(5):
        response = guesser.register(CALLER, f"guess-{attempt}")
        assert response is not None and (response.status, response.reason) == (403, "Wrong Password")
    assert guesser.register(CALLER, password, expires=0, timeout=1) is None
    assert guesser.authenticated("INVITE", server_uri(sip_server, CALLEE), user=CALLER, password=password,
                                 to_user=CALLEE, body=sdp_offer("127.0.0.71", 4000), timeout=1) is None
    bystander = endpoint_factory(local_ip="127.0.0.72")
    assert bystander.register(OTHER, sip_server.password(OTHER), expires=0).status == 200


def test_a_flood_from_one_address_is_cut_off(sip_server, endpoint_factory):
    flooder = endpoint_factory(local_ip="127.0.0.73")
    for _ in range(300):
        flooder.send(flooder.request("OPTIONS", f"sip:{sip_server.host}:{sip_server.port}", from_user="scan",
                                     to_user="scan", call_id=new_token(), cseq=1, from_tag=new_token()))
    time.sleep(0.5)
    answered = 0
    while flooder.receive(timeout=0.3) is not None:
        answered += 1
    assert answered < 150  # pike's density is 40 per 2 s: blocked between 40 and 120
    assert flooder.authenticated("OPTIONS", server_uri(sip_server, CALLEE), user=CALLER,
                                 password=sip_server.password(CALLER), to_user=CALLEE, timeout=1) is None


def test_a_captured_authorization_is_useless_from_another_address(sip_server, endpoint_factory,
                                                                  registered_callee):
    honest, thief = endpoint_factory(local_ip="127.0.0.74"), endpoint_factory(local_ip="127.0.0.75")
    uri, call_id = server_uri(sip_server, CALLEE), new_token()
    request = honest.request("INVITE", uri, from_user=CALLER, to_user=CALLEE, call_id=call_id, cseq=1,
                             from_tag=new_token(), body=sdp_offer("127.0.0.74", 4000))
    honest.send(request)
    challenge = honest.final_response(call_id, 1, "INVITE")
    assert challenge is not None and challenge.status == 401
    authorization = honest.authorization(challenge, CALLER, sip_server.password(CALLER), "INVITE", uri)
    # The thief replays the honest caller's Authorization (say, sniffed) in its own INVITE.
    stolen = thief.request("INVITE", uri, from_user=CALLER, to_user=CALLEE, call_id=call_id, cseq=2,
                           from_tag=new_token(), extra=[authorization], body=sdp_offer("127.0.0.75", 4000))
    thief.send(stolen)
    response = thief.final_response(call_id, 2, "INVITE", timeout=3)
    assert response is not None and response.status in (401, 403), response and response.first_line
    assert registered_callee.request_received("INVITE", timeout=0.5) is None


@pytest.fixture(scope="module")
def quick_server():
    """A Kamailio of its own with short limits (the shared one keeps the shipped defaults)."""
    extensions = {"2001": "pw-2001", "2002": "pw-2002"}
    with LocalSipServer(extensions, port=0, trusted_hosts=("127.0.0.82",),
                        defines={"BAN_SECONDS": 2, "AUTH_FAIL_LIMIT": 2, "MIN_EXPIRES": 1}) as server:
        yield server


def test_a_ban_expires(quick_server):
    guesser = RawSipEndpoint(quick_server.address, local_ip="127.0.0.81")
    try:
        for _ in range(2):
            assert guesser.register("2001", "wrong").status == 403
        assert guesser.register("2001", "pw-2001", expires=0, timeout=0.5) is None
        time.sleep(2.5)
        assert guesser.register("2001", "pw-2001", expires=0).status == 200
    finally:
        guesser.close()


def test_the_ivr_nodes_addresses_are_never_banned(quick_server):
    """The IVR's own address (trusted_hosts) may fail as often as it likes (a wrong password in sip.conf)
    without locking the node out for the ban's length."""
    node = RawSipEndpoint(quick_server.address, local_ip="127.0.0.82")
    try:
        for _ in range(4):
            assert node.register("2001", "wrong").status == 403
        assert node.register("2001", "pw-2001", expires=0).status == 200
    finally:
        node.close()


def test_a_phone_back_on_a_new_port_gets_its_extension_once_the_old_binding_expired(quick_server):
    before, after = RawSipEndpoint(quick_server.address), RawSipEndpoint(quick_server.address)
    try:
        assert before.register("2002", "pw-2002", expires=2).status == 200
        before.close()  # the phone restarts: its old socket is gone, its binding is not
        assert after.register("2002", "pw-2002").status == 403
        time.sleep(2.5)
        assert after.register("2002", "pw-2002").status == 200
    finally:
        after.unregister("2002", "pw-2002")
        after.close()
