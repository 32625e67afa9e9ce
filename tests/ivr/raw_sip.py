"""SIP by hand over UDP, for tests that must send exactly the datagram an attacker or a broken phone would:
requests with chosen tags, Call-IDs, Contacts and SDP, digest answers to challenges, and every datagram that
comes back (responses and requests alike) kept for assertions.

Not a SIP stack: no retransmissions, no transactions beyond "wait for the final response to this CSeq".
"""
from __future__ import annotations

import hashlib
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

COMPACT_HEADERS = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
                   "c": "content-type"}


def new_token(nbytes: int = 8) -> str:
    return secrets.token_hex(nbytes)


def sdp_offer(ip: str, port: int, payload_types: Iterable[int] = (0, 8, 101), connection: str | None = None) -> str:
    """An audio offer; `connection` replaces the c= address (e.g. a hostname) while o= keeps `ip`."""
    names = {0: "PCMU/8000", 8: "PCMA/8000", 3: "GSM/8000", 9: "G722/8000", 18: "G729/8000",
             101: "telephone-event/8000"}
    payload_types = list(payload_types)
    lines = ["v=0", f"o=- 1 1 IN IP4 {ip}", "s=-", f"c=IN IP4 {connection or ip}", "t=0 0",
             f"m=audio {port} RTP/AVP {' '.join(map(str, payload_types))}"]
    lines += [f"a=rtpmap:{pt} {names[pt]}" for pt in payload_types if pt in names]
    lines += ["a=sendrecv"]
    return "\r\n".join(lines) + "\r\n"


@dataclass
class SipMessage:
    """One received datagram, parsed leniently."""

    first_line: str
    headers: list[tuple[str, str]]
    body: str
    source: tuple[str, int]
    raw: bytes

    @classmethod
    def parse(cls, data: bytes, source: tuple[str, int]) -> SipMessage:
        text = data.decode("utf-8", "replace")
        head, _, body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            headers.append((COMPACT_HEADERS.get(name, name), value.strip()))
        return cls(lines[0], headers, body, source, data)

    @property
    def is_response(self) -> bool:
        return self.first_line.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.first_line.split(" ", 2)[1]) if self.is_response else 0

    @property
    def reason(self) -> str:
        return self.first_line.split(" ", 2)[2] if self.is_response else ""

    @property
    def method(self) -> str:
        if self.is_response:
            return self.cseq[1]
        return self.first_line.split(" ", 1)[0]

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    @property
    def call_id(self) -> str:
        return self.header("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = (self.header("cseq") or "0 ?").partition(" ")
        return int(number), method.strip()

    def tag(self, header: str) -> str | None:
        match = re.search(r";\s*tag=([^;>\s]+)", self.header(header) or "")
        return match.group(1) if match else None

    @property
    def contact_uri(self) -> str | None:
        match = re.search(r"<([^>]+)>", self.header("contact") or "")
        return match.group(1) if match else None

    def sdp_audio(self) -> tuple[str, int]:
        """(connection address, audio port) of an SDP body."""
        address = re.search(r"^c=IN IP4 (\S+)", self.body, re.M).group(1)
        port = int(re.search(r"^m=audio (\d+)", self.body, re.M).group(1))
        return address, port


@dataclass
class Dialog:
    """What a UAC needs to send requests inside the dialog an INVITE set up."""

    call_id: str
    local_user: str
    remote_user: str
    local_tag: str
    remote_tag: str
    remote_target: str
    route_set: list[str]
    cseq: int


class RawSipEndpoint:
    """A UDP socket on `local_ip` (any free port) that sends hand-made SIP to `server` and keeps what arrives."""

    def __init__(self, server: tuple[str, int], local_ip: str = "127.0.0.1") -> None:
        self.server = server
        self.local_ip = local_ip
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((local_ip, 0))
        self.port = self.sock.getsockname()[1]
        self.backlog: list[SipMessage] = []

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawSipEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- sending

    def send(self, message: str | bytes, to: tuple[str, int] | None = None) -> None:
        self.sock.sendto(message.encode() if isinstance(message, str) else message, to or self.server)

    def request(self, method: str, uri: str, *, from_user: str, to_user: str, call_id: str, cseq: int,
                from_tag: str, to_tag: str | None = None, branch: str | None = None, contact: bool = True,
                extra: Iterable[str] = (), body: str = "", to_host: str | None = None) -> str:
        """The text of a request (not sent); `extra` are whole header lines."""
        host = to_host or f"{self.server[0]}:{self.server[1]}"
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.local_ip}:{self.port};branch={branch or 'z9hG4bK' + new_token()};rport",
            "Max-Forwards: 70",
            f"From: <sip:{from_user}@{host}>;tag={from_tag}",
            f"To: <sip:{to_user}@{host}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
        ]
        if contact:
            lines.append(f"Contact: <sip:{from_user}@{self.local_ip}:{self.port}>")
        lines += list(extra)
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    # ---- receiving

    def receive(self, match: Callable[[SipMessage], bool] = lambda m: True, timeout: float = 5.0) -> SipMessage | None:
        """The first message (kept or newly arriving) that `match`es, removed from the backlog; None on timeout."""
        for message in self.backlog:
            if match(message):
                self.backlog.remove(message)
                return message
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data, source = self.sock.recvfrom(65535)
            except (socket.timeout, ConnectionRefusedError):
                continue
            message = SipMessage.parse(data, source)
            if match(message):
                return message
            self.backlog.append(message)

    def final_response(self, call_id: str, cseq: int, method: str, timeout: float = 5.0) -> SipMessage | None:
        """The final (>= 200) response to the request with this Call-ID and CSeq; provisional ones are skipped."""
        return self.receive(lambda m: m.is_response and m.status >= 200 and m.call_id == call_id
                            and m.cseq == (cseq, method), timeout)

    def request_received(self, method: str, call_id: str | None = None, timeout: float = 5.0) -> SipMessage | None:
        return self.receive(lambda m: not m.is_response and m.method == method
                            and (call_id is None or m.call_id == call_id), timeout)

    def drain(self) -> None:
        """Forget everything received so far."""
        self.backlog.clear()
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(65535)
        except (BlockingIOError, ConnectionRefusedError):
            pass
        finally:
            self.sock.setblocking(True)

    def reply(self, request: SipMessage, status: int, reason: str, *, to_tag: str | None = None,
              body: str = "", contact_user: str = "x") -> None:
        """Answer a request that arrived here (through the proxy: the Via set goes back as it came)."""
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {via}" for via in request.all("via")]
        lines += [f"Record-Route: {rr}" for rr in request.all("record-route")]
        lines += [f"From: {request.header('from')}"]
        to = request.header("to") or ""
        lines += [f"To: {to};tag={to_tag}" if to_tag and "tag=" not in to else f"To: {to}"]
        lines += [f"Call-ID: {request.call_id}", f"CSeq: {request.header('cseq')}",
                  f"Contact: <sip:{contact_user}@{self.local_ip}:{self.port}>"]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        self.send("\r\n".join(lines) + "\r\n\r\n" + body, to=request.source)

    # ---- digest authentication

    @staticmethod
    def authorization(challenge: SipMessage, user: str, password: str, method: str, uri: str) -> str:
        header = challenge.header("www-authenticate") or challenge.header("proxy-authenticate") or ""
        realm = re.search(r'realm="([^"]+)"', header).group(1)
        nonce = re.search(r'nonce="([^"]+)"', header).group(1)
        ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
        ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
        response = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
        return (f'Authorization: Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
                f'response="{response}", algorithm=MD5')

    def send_authenticated(self, method: str, uri: str, *, user: str, password: str, to_user: str,
                           call_id: str | None = None, extra: Iterable[str] = (), body: str = "",
                           contact: bool = True, timeout: float = 5.0) -> tuple[str, SipMessage | None]:
        """Send a request and answer its 401 with a digest (same Call-ID, CSeq 2) without waiting for the
        outcome: (text of the authorized request, None); ("", the final response) when there was no 401."""
        call_id = call_id or new_token(12)
        from_tag = new_token()
        extra = list(extra)
        self.send(self.request(method, uri, from_user=user, to_user=to_user, call_id=call_id, cseq=1,
                               from_tag=from_tag, extra=extra, body=body, contact=contact))
        first = self.final_response(call_id, 1, method, timeout)
        if first is None or first.status != 401:
            return "", first
        auth = self.authorization(first, user, password, method, uri)
        text = self.request(method, uri, from_user=user, to_user=to_user, call_id=call_id, cseq=2,
                            from_tag=from_tag, extra=[auth, *extra], body=body, contact=contact)
        self.send(text)
        return text, None

    def authenticated(self, method: str, uri: str, *, user: str, password: str, to_user: str,
                      timeout: float = 5.0, **options) -> SipMessage | None:
        """Send a request, answer a 401 with a digest, return the final response (None when none came, e.g.
        from a banned source)."""
        text, final = self.send_authenticated(method, uri, user=user, password=password, to_user=to_user,
                                              timeout=timeout, **options)
        if not text:
            return final
        sent = SipMessage.parse(text.encode(), ("", 0))
        return self.final_response(sent.call_id, 2, method, timeout)

    def register(self, user: str, password: str, expires: int = 60, timeout: float = 5.0) -> SipMessage | None:
        uri = f"sip:{self.server[0]}:{self.server[1]}"
        return self.authenticated("REGISTER", uri, user=user, password=password, to_user=user,
                                  extra=[f"Expires: {expires}"], timeout=timeout)

    def unregister(self, user: str, password: str) -> SipMessage | None:
        return self.register(user, password, expires=0)

    # ---- calls

    def invite(self, to_user: str, *, user: str, password: str, sdp: str, timeout: float = 10.0,
               extra: Iterable[str] = ()) -> tuple[SipMessage | None, Dialog | None]:
        """An authenticated INVITE through the proxy; on 2xx the ACK is sent and the dialog returned."""
        uri = f"sip:{to_user}@{self.server[0]}:{self.server[1]}"
        call_id = new_token(12)
        final = self.authenticated("INVITE", uri, user=user, password=password, to_user=to_user,
                                   call_id=call_id, body=sdp, timeout=timeout, extra=extra)
        if final is None or final.status >= 300:
            return final, None
        dialog = Dialog(call_id=call_id, local_user=user, remote_user=to_user,
                        local_tag=re.search(r"tag=([^;>\s]+)", final.header("from")).group(1),
                        remote_tag=final.tag("to"), remote_target=final.contact_uri,
                        route_set=list(reversed(final.all("record-route"))), cseq=final.cseq[0])
        self.send_in_dialog(dialog, "ACK", cseq=dialog.cseq)
        return final, dialog

    @staticmethod
    def cancel_for(invite_text: str) -> str:
        """The CANCEL of a request sent as `invite_text`: same Request-URI, Via, From, To, Call-ID, CSeq number."""
        sent = SipMessage.parse(invite_text.encode(), ("", 0))
        lines = [f"CANCEL {invite_text.split(' ', 2)[1]} SIP/2.0", f"Via: {sent.header('via')}", "Max-Forwards: 70",
                 f"From: {sent.header('from')}", f"To: {sent.header('to')}", f"Call-ID: {sent.call_id}",
                 f"CSeq: {sent.cseq[0]} CANCEL", "Content-Length: 0"]
        return "\r\n".join(lines) + "\r\n\r\n"

    def in_dialog_request(self, dialog: Dialog, method: str, *, cseq: int | None = None, body: str = "",
                          from_tag: str | None = None, to_tag: str | None = None,
                          call_id: str | None = None) -> str:
        """A request inside `dialog` (tags and Call-ID may be overridden to forge one)."""
        if cseq is None:
            dialog.cseq += 1
            cseq = dialog.cseq
        routes = [f"Route: {route}" for route in dialog.route_set]
        return self.request(method, dialog.remote_target, from_user=dialog.local_user, to_user=dialog.remote_user,
                            call_id=call_id or dialog.call_id, cseq=cseq, from_tag=from_tag or dialog.local_tag,
                            to_tag=to_tag or dialog.remote_tag, extra=routes, body=body)

    def send_in_dialog(self, dialog: Dialog, method: str, **options) -> int:
        """Send an in-dialog request; returns its CSeq number."""
        text = self.in_dialog_request(dialog, method, **options)
        self.send(text)
        return int(re.search(r"CSeq: (\d+)", text).group(1))


class RawRtp:
    """A caller's RTP socket: the port its SDP names, sending PCMU silence and RFC 4733 digits by hand."""

    def __init__(self, local_ip: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((local_ip, 0))
        self.address = self.sock.getsockname()
        self.sequence = 1
        self.timestamp = 160
        self.ssrc = secrets.randbits(32)

    def close(self) -> None:
        self.sock.close()

    def _packet(self, payload_type: int, payload: bytes, timestamp: int) -> bytes:
        from ivr.rtp import RtpPacket

        packet = RtpPacket(payload_type=payload_type, sequence_number=self.sequence & 0xFFFF,
                           timestamp=timestamp & 0xFFFFFFFF, ssrc=self.ssrc, payload=payload)
        self.sequence += 1
        return bytes(packet)

    def send_silence(self, to: tuple[str, int], frames: int = 5, gap: float = 0.02) -> None:
        for _ in range(frames):
            self.sock.sendto(self._packet(0, b"\xff" * 160, self.timestamp), to)
            self.timestamp += 160
            time.sleep(gap)

    def digit_packets(self, digit: str) -> list[bytes]:
        """One key press: three packets of the event, the last one marked as its end (sent three times)."""
        from ivr.dtmf import TelephoneEvent, digit_to_event

        start = self.timestamp
        packets = [self._packet(101, bytes(TelephoneEvent(event=digit_to_event(digit), end=end, volume=10,
                                                           duration=duration)), start)
                   for end, duration in ((False, 160), (False, 320), (True, 480), (True, 480), (True, 480))]
        self.timestamp += 640
        return packets

    def send_digit(self, to: tuple[str, int], digit: str) -> None:
        for packet in self.digit_packets(digit):
            self.sock.sendto(packet, to)
            time.sleep(0.02)

    def received(self, timeout: float = 2.0) -> int:
        """How many datagrams arrive within `timeout` (the socket is drained)."""
        count, deadline = 0, time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                self.sock.recv(4096)
                count += 1
            except (socket.timeout, ConnectionRefusedError):
                break
        return count
