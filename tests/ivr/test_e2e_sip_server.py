"""The shipped Kamailio config through real Kamailio: digest registration, refusals, routing, stop.

Raw SIP over UDP (tests/ivr/raw_sip.py) so the exact status codes are asserted (pyVoIP hides them behind
retries). The edge's security rules have their own module, test_kamailio_edge.py.
"""

from __future__ import annotations

import pytest

from ivr.local_sip_server import LocalSipServer, SipServerError, define_arguments, sip_options_ping
from tests.ivr.raw_sip import RawSipEndpoint, new_token, sdp_offer

pytestmark = pytest.mark.sip


@pytest.fixture
def client(sip_server):
    raw = RawSipEndpoint((sip_server.host, sip_server.port))
    yield raw
    raw.close()


def test_answers_options_ping(sip_server):
    assert sip_options_ping(sip_server.host, sip_server.port)


def test_register_with_right_password_is_accepted_after_a_401_challenge(sip_server, client):
    ext = sip_server.tester_extensions[0]
    try:
        response = client.register(ext, sip_server.password(ext))
        assert response.status == 200
        assert f"<sip:{ext}@127.0.0.1:{client.port}>" in response.header("contact")
    finally:
        client.unregister(ext, sip_server.password(ext))


def test_register_with_wrong_password_is_forbidden(sip_server, client):
    ext = sip_server.tester_extensions[1]
    response = client.register(ext, "not-the-password")
    assert response.first_line == "SIP/2.0 403 Wrong Password"


def test_register_of_unknown_extension_is_forbidden(sip_server, client):
    response = client.register("9999", "whatever")
    assert response.first_line == "SIP/2.0 403 Unknown Extension"


def test_invite_from_wrong_password_is_forbidden(sip_server, client):
    ext = sip_server.tester_extensions[2]
    response = client.authenticated("INVITE", f"sip:12345@{sip_server.host}:{sip_server.port}", user=ext,
                                    password="bad", to_user="12345", body=sdp_offer("127.0.0.1", 4000))
    assert response.status == 403


def test_invite_to_unregistered_extension_is_404(sip_server, client):
    caller, callee = sip_server.tester_extensions[3], sip_server.tester_extensions[19]
    response = client.authenticated("INVITE", f"sip:{callee}@{sip_server.host}:{sip_server.port}", user=caller,
                                    password=sip_server.password(caller), to_user=callee,
                                    body=sdp_offer("127.0.0.1", 4000))
    assert response.first_line == "SIP/2.0 404 Not Registered"


def test_invite_reaches_the_registered_extension(sip_server, client):
    callee_ext, caller_ext = sip_server.tester_extensions[4], sip_server.tester_extensions[5]
    callee = RawSipEndpoint((sip_server.host, sip_server.port))
    try:
        assert callee.register(callee_ext, sip_server.password(callee_ext)).status == 200
        uri = f"sip:{callee_ext}@{sip_server.host}:{sip_server.port}"
        sent, refused = client.send_authenticated("INVITE", uri, user=caller_ext,
                                                  password=sip_server.password(caller_ext), to_user=callee_ext,
                                                  call_id="d" + new_token(), body=sdp_offer("127.0.0.1", 4000))
        assert refused is None  # challenged, then answered with the digest
        invite = callee.request_received("INVITE")
        assert invite.first_line == f"INVITE sip:{callee_ext}@127.0.0.1:{callee.port} SIP/2.0"
        assert invite.header("record-route")
        assert invite.header("authorization") is None  # credentials are not leaked to the callee
    finally:
        callee.unregister(callee_ext, sip_server.password(callee_ext))
        callee.close()


def test_start_fails_clearly_when_the_port_is_taken(sip_server):
    with pytest.raises(SipServerError, match="already in use"):
        LocalSipServer({"1": "x"}, sip_server.host, sip_server.port, startup_timeout=10).start()


def test_stop_terminates_kamailio_and_frees_the_port():
    server = LocalSipServer({"1001": "pw"}, port=0)
    server.start()
    runtime_dir = server.runtime_dir
    assert sip_options_ping(server.host, server.port)
    server.stop()
    assert not server.is_running()
    assert not runtime_dir.exists()
    assert not sip_options_ping(server.host, server.port, timeout=0.5)


def test_rejects_passwords_that_would_break_the_generated_config():
    with pytest.raises(ValueError, match="password of extension 1001"):
        LocalSipServer({"1001": 'a"b'})


def test_settings_become_kamailio_defines_and_bad_ones_are_refused():
    assert define_arguments({"BAN_SECONDS": 30, "TRUSTED_NETWORK": "10.0.0.0/8, 127.0.0.1/32"}) == \
        ["-A", "BAN_SECONDS=30", "-A", 'TRUSTED_NETWORK="10.0.0.0/8, 127.0.0.1/32"']
    for bad in ({"ban": 1}, {"BAN_SECONDS": 1.5}, {"TRUSTED_NETWORK": '1.2.3.4"; exit; "'}, {"X": True}):
        with pytest.raises(ValueError, match="Kamailio setting"):
            define_arguments(bad)
