"""The shipped Kamailio config through real Kamailio: digest registration, refusals, routing, stop.

Raw SIP over UDP so the exact status codes are asserted (pyVoIP hides them behind retries).
"""

from __future__ import annotations

import hashlib
import re
import socket
import uuid

import pytest

from ivr.local_sip_server import LocalSipServer, SipServerError, sip_options_ping

pytestmark = pytest.mark.sip


class RawSipClient:
    """Just enough of a UAC to REGISTER/INVITE with a digest answer and read the final status line."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    def request(self, method: str, uri: str, user: str, to_user: str, call_id: str, cseq: int,
                extra: str = "") -> tuple[int, str]:
        host, port = self.server
        msg = (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@{host}>;tag={call_id[:6]}\r\n"
            f"To: <sip:{to_user}@{host}>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Contact: <sip:{user}@127.0.0.1:{self.port}>\r\n"
            f"{extra}Content-Length: 0\r\n\r\n"
        )
        self.sock.sendto(msg.encode(), self.server)
        while True:
            data = self.sock.recv(8192).decode()
            code = int(data.split(" ", 2)[1])
            if code >= 200:
                return code, data

    def authenticated(self, method: str, user: str, password: str, to_user: str) -> tuple[int, str]:
        """Send, answer the 401 challenge with an MD5 digest, return the final response."""
        host, port = self.server
        uri = f"sip:{host}:{port}" if method == "REGISTER" else f"sip:{to_user}@{host}:{port}"
        call_id = uuid.uuid4().hex
        code, response = self.request(method, uri, user, to_user, call_id, 1,
                                      "Expires: 60\r\n" if method == "REGISTER" else "")
        if code != 401:
            return code, response
        realm = re.search(r'realm="([^"]+)"', response).group(1)
        nonce = re.search(r'nonce="([^"]+)"', response).group(1)
        ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
        ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
        digest = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
        auth = (f'Authorization: Digest username="{user}", realm="{realm}", nonce="{nonce}", '
                f'uri="{uri}", response="{digest}", algorithm=MD5\r\n')
        extra = auth + ("Expires: 60\r\n" if method == "REGISTER" else "")
        return self.request(method, uri, user, to_user, call_id, 2, extra)


@pytest.fixture
def client(sip_server):
    raw = RawSipClient((sip_server.host, sip_server.port))
    yield raw
    raw.close()


def test_answers_options_ping(sip_server):
    assert sip_options_ping(sip_server.host, sip_server.port)


def test_register_with_right_password_is_accepted_after_a_401_challenge(sip_server, client):
    ext = sip_server.tester_extensions[0]
    code, response = client.authenticated("REGISTER", ext, sip_server.password(ext), ext)
    assert code == 200
    assert f"<sip:{ext}@127.0.0.1:{client.port}>" in response


def test_register_with_wrong_password_is_forbidden(sip_server, client):
    ext = sip_server.tester_extensions[1]
    code, response = client.authenticated("REGISTER", ext, "not-the-password", ext)
    assert (code, response.split("\r\n")[0]) == (403, "SIP/2.0 403 Wrong Password")


def test_register_of_unknown_extension_is_forbidden(sip_server, client):
    code, response = client.authenticated("REGISTER", "9999", "whatever", "9999")
    assert response.split("\r\n")[0] == "SIP/2.0 403 Unknown Extension"


def test_invite_from_wrong_password_is_forbidden(sip_server, client):
    ext = sip_server.tester_extensions[2]
    code, _ = client.authenticated("INVITE", ext, "bad", sip_server.ivr_extension)
    assert code == 403


def test_invite_to_unregistered_extension_is_404(sip_server, client):
    caller, callee = sip_server.tester_extensions[3], sip_server.tester_extensions[19]
    code, response = client.authenticated("INVITE", caller, sip_server.password(caller), callee)
    assert response.split("\r\n")[0] == "SIP/2.0 404 Not Registered"


def test_invite_reaches_the_registered_extension(sip_server, client):
    callee_ext, caller_ext = sip_server.tester_extensions[4], sip_server.tester_extensions[5]
    callee = RawSipClient((sip_server.host, sip_server.port))
    try:
        assert callee.authenticated("REGISTER", callee_ext, sip_server.password(callee_ext), callee_ext)[0] == 200
        host, port = sip_server.host, sip_server.port
        uri = f"sip:{callee_ext}@{host}:{port}"
        # The caller's INVITE is challenged; answer it, then the callee must receive it via the proxy.
        code, challenge = client.request("INVITE", uri, caller_ext, callee_ext, "c" + uuid.uuid4().hex, 1)
        assert code == 401
        client.sock.settimeout(0.2)
        received = []

        def forwarded() -> str:
            data = callee.sock.recv(8192).decode()
            received.append(data)
            return data

        realm = re.search(r'realm="([^"]+)"', challenge).group(1)
        nonce = re.search(r'nonce="([^"]+)"', challenge).group(1)
        pw = sip_server.password(caller_ext)
        ha1 = hashlib.md5(f"{caller_ext}:{realm}:{pw}".encode()).hexdigest()
        ha2 = hashlib.md5(f"INVITE:{uri}".encode()).hexdigest()
        digest = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
        auth = (f'Authorization: Digest username="{caller_ext}", realm="{realm}", nonce="{nonce}", '
                f'uri="{uri}", response="{digest}", algorithm=MD5\r\n')
        try:
            client.request("INVITE", uri, caller_ext, callee_ext, "d" + uuid.uuid4().hex, 2, auth)
        except socket.timeout:
            pass  # only 100 Trying comes back while the callee has not answered
        invite = forwarded()
        assert invite.startswith(f"INVITE sip:{callee_ext}@127.0.0.1:{callee.port} SIP/2.0")
        assert "Record-Route:" in invite
        assert "Authorization:" not in invite  # credentials are not leaked to the callee
    finally:
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
