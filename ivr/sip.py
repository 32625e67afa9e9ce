"""pyVoIP 1.6.8 as the IVR's SIP stack, subclassed where it falls short for a server-side node.

What changes against pyVoIP (and why):
- registration: the first REGISTER is synchronous and failures raise RegistrationError naming host:port and
  the SIP status (pyVoIP swallows them in a timer thread); re-registration retries forever instead of
  stopping the phone after three failures, and keeps the state for health reports;
- receiving: one select()-based loop instead of a 10 ms polling loop; only datagrams from the SIP server's
  address are read at all (everything legitimate comes through it); folded, compact and oddly cased
  headers are rewritten into the form pyVoIP reads (ivr.sip_canonical); a datagram pyVoIP cannot parse is
  counted and answered 400/501 when it can be, never taken for a reply; answers go back where the request
  came from, with the request's own Via/From/To/Call-ID/CSeq (ivr.sip_reply);
- dialogs: BYE, re-INVITE, CANCEL and ACK count only with the dialog's Call-ID AND both tags (pyVoIP
  looks at the Call-ID alone, so anyone knowing it could end or redirect a call), else 481; a BYE is
  answered with the dialog's To tag (pyVoIP made a new one); CANCEL of an unanswered INVITE gets 487;
- incoming INVITE: the offer is negotiated first (ivr.sdp): no common codec or an unusable address is
  488 Not Acceptable Here with nothing taken; then 486 Busy Here when the node is full; then answered at
  once (pyVoIP waits one second on a Timer) with media on ivr.media (one thread for all calls, 16-bit G.711
  both laws, RFC 4733 digits). Every step after the slot is taken gives the slot, the socket and the tag
  back if it fails (500). The 200 is repeated until the ACK (or the caller's media) arrives, and the call
  is hung up when neither comes within `ack_timeout`, or when the far end sends no media for
  `media_timeout` seconds (a caller gone without BYE must not hold a slot for ever);
- outgoing INVITE: every final status reaches the caller of dial() (pyVoIP only reports 200/404/503), with
  an ACK that carries the callee's To tag (pyVoIP invents one) for every final;
- identities: Call-IDs, tags and branches come from `secrets` (pyVoIP hashes a counter, so its Call-IDs
  repeat across processes and can be guessed), and no list of every tag ever made is kept (pyVoIP scans
  one linearly on each new tag); a call's entry in pyVoIP's tag library goes when the call ends.
"""
from __future__ import annotations

import logging
import re
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from pyVoIP.VoIP import CallState, InvalidStateError, VoIPCall, VoIPPhone  # first: pyVoIP.SIP imports it back
from pyVoIP import RTP, SIP  # isort: skip
from pyVoIP.VoIP.status import PhoneStatus

from .media import CODECS, MediaEngine, MediaStream, open_rtp_socket
from .sdp import AudioOffer, OfferNotAcceptable, answer_sdp, choose_audio
from .session import CallSession
from .sip_canonical import canonical
from .sip_reply import build_response, dialog_headers

log = logging.getLogger(__name__)

USER_AGENT = "hotline12345-ivr"
ALLOW = "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS"
T1, T2 = 0.5, 4.0  # RFC 3261 timers: first 200 retransmission after T1, doubling up to T2


class RegistrationError(RuntimeError):
    """The SIP server could not be reached or refused the registration."""


def uri_of(name_addr: str) -> str:
    """The URI of a From/To/Contact value: `"Name" <sip:u@h;p>;tag=x` → `sip:u@h;p`."""
    match = re.search(r"<([^>]*)>", name_addr)
    return match.group(1).strip() if match else name_addr.split(";", 1)[0].strip()


def sdp_body(message: SIP.SIPMessage) -> str:
    """The message body when it is SDP, else ''."""
    if str(message.headers.get("Content-Type", "")).split(";", 1)[0].strip().lower() != "application/sdp":
        return ""
    parts = message.raw.split(b"\r\n\r\n", 1)
    return parts[1].decode("utf-8", "replace") if len(parts) == 2 else ""


class TrustedSourceSocket:
    """The SIP socket, handing out only datagrams from the trusted hosts (the SIP server): phones reach the
    IVR through the proxy, so anything else (a forged BYE, a scan) is dropped before it is parsed. Every
    other socket method passes through, so pyVoIP's own reads (REGISTER, INVITE) are filtered the same way."""

    def __init__(self, sock: socket.socket, trusted_hosts: frozenset[str]) -> None:
        self._sock = sock
        self.trusted_hosts = trusted_hosts
        self.foreign = 0  # datagrams dropped because of their source

    def recvfrom(self, size: int) -> tuple[bytes, tuple[str, int]]:
        while True:
            data, source = self._sock.recvfrom(size)
            if source[0] in self.trusted_hosts:
                return data, source
            self.foreign += 1
            log.debug("dropped a SIP datagram from %s:%d (not the SIP server)", *source)

    def recv(self, size: int) -> bytes:
        return self.recvfrom(size)[0]

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


class CallMedia:
    """What pyVoIP's call keeps in `RTPClients` (it calls start()/stop()): our stream on the shared engine."""

    def __init__(self, engine: MediaEngine, stream: MediaStream) -> None:
        self.engine = engine
        self.stream = stream
        self.inPort = stream.local_port
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.engine.add(self.stream)

    def stop(self) -> None:
        self.engine.remove(self.stream)


class IvrCall(VoIPCall):
    """A pyVoIP call whose media is an ivr.media.MediaStream, with its dialog identity (both tags) and a
    lock that makes hang-up, BYE and CANCEL end the call exactly once whichever comes first.

    `media_factory(call, codec, dtmf_pt, sock, remote)` (set by the phone) builds the stream with the
    session's callbacks."""

    def __init__(self, *args, **kwargs) -> None:
        self.media: CallMedia | None = None
        self.session: CallSession | None = None  # set by the media factory
        self.codec: str | None = None
        self.direction: Literal["inbound", "outbound"] = "outbound"
        self.local_tag = ""
        self.remote_tag = ""
        self.remote_target = ""  # the far end's Contact URI: where our in-dialog requests go
        self.local_cseq = 1
        self.confirmed = False  # inbound: the ACK for our 200 (or the caller's media) has arrived
        self.answer_text = ""  # inbound: our 200, repeated until confirmed
        self.final_status: int | None = None
        self.final_event = threading.Event()  # outgoing: answered or failed
        self._state_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    @classmethod
    def incoming(cls, phone: IvrPhone, request: SIP.SIPMessage, offer: AudioOffer, port: int,
                 local_tag: str) -> IvrCall:
        """The call for an INVITE whose offer was negotiated already, media on the reserved `port`.

        pyVoIP's constructor would parse the offer again and bind a port per audio line; its outgoing-call
        branch only records the port, so that one is taken and the state set to RINGING after."""
        call = cls(phone, CallState.DIALING, request, phone.sip.sessID.next(), phone.myIP, ms={port: {}},
                   sendmode=phone.recvmode)
        call.state = CallState.RINGING
        call.direction = "inbound"
        call.codec = offer.codec
        call.local_tag = local_tag
        call.remote_tag = request.headers["From"]["tag"]
        call.remote_target = uri_of(request.headers["Contact"])
        call.attach_media(offer, port)
        return call

    def attach_media(self, offer: AudioOffer, port: int) -> None:
        phone: IvrPhone = self.phone  # type: ignore[assignment]
        sock = phone.take_rtp_socket(port)
        try:
            stream = phone.media_factory(self, offer.codec, offer.dtmf_payload_type, sock,
                                         (offer.address, offer.port))
        except BaseException:
            sock.close()
            raise
        self.media = CallMedia(phone.engine, stream)
        self.RTPClients.append(self.media)

    # ---- state changes (any thread)

    def answer(self) -> None:
        """Inbound: start the media and send our 200 with the SDP answer."""
        with self._state_lock:
            if self.state != CallState.RINGING or self.media is None:
                raise InvalidStateError("Call is not ringing")
            self.media.start()
            self.phone.send_answer(self)  # type: ignore[attr-defined]
            self.state = CallState.ANSWERED

    def answered(self, response: SIP.SIPMessage) -> None:
        """Outbound: the callee's 2xx. A usable answer starts the media; otherwise the call fails (488)."""
        with self._state_lock:
            if self.state != CallState.DIALING:
                return
            self.remote_tag = response.headers["To"]["tag"]
            self.remote_target = uri_of(str(response.headers.get("Contact", ""))) or \
                uri_of(response.headers["To"]["raw"])
            try:
                offer = choose_audio(sdp_body(response), (self.codec or "PCMU",))
                self.attach_media(offer, self.port)
            except (OfferNotAcceptable, ValueError) as exc:
                log.warning("call %s: the callee's answer is not usable: %s", self.call_id, exc)
                self.state = CallState.ENDED
                self.final_status = 488
                self.final_event.set()
                return
            self.codec = offer.codec
            self.media.start()  # type: ignore[union-attr]
            self.state = CallState.ANSWERED
            self.confirmed = True
        self.final_status = 200
        self.final_event.set()

    def failed(self, status: int) -> None:
        self.final_status = status
        self.state = CallState.ENDED
        self.final_event.set()

    def _end(self) -> bool:
        """Move to ENDED; True for the one caller that did it."""
        with self._state_lock:
            if self.state == CallState.ENDED:
                return False
            self.state = CallState.ENDED
            return True

    def _stop_media(self) -> None:
        for client in self.RTPClients:
            client.stop()

    def hangup(self) -> None:
        """End the call from our side (BYE). Harmless when it ended already: a BYE from the far end that
        crossed ours, a CANCEL, a time-out."""
        with self._state_lock:
            answered = self.state == CallState.ANSWERED
        if not answered or not self._end():
            return
        self.phone.forget(self)  # type: ignore[attr-defined]  # before the media stops: that ends the session
        self._stop_media()
        self.phone.send_bye(self)  # type: ignore[attr-defined]

    def bye(self) -> None:
        """The far end ended the call (its BYE was checked against the dialog), or it was cancelled."""
        self._end()
        self.phone.forget(self)  # type: ignore[attr-defined]
        self._stop_media()

    def abandon(self) -> None:
        """Setting the call up failed: drop it without telling the far end (the caller of this does)."""
        self.bye()


@dataclass
class _AwaitingAck:
    call: IvrCall
    destination: tuple[str, int]
    give_up_at: float
    next_at: float
    interval: float = T1


class IvrSipClient(SIP.SIPClient):
    """pyVoIP's SIP client with strict first registration, lasting re-registration, a receiver that reads
    only the SIP server's datagrams and dialogs checked by Call-ID and both tags."""

    def __init__(self, *args, register_timeout: float, expires: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register_timeout = register_timeout
        self.default_expires = expires
        self.last_register_status: int | None = None
        self.registered = False
        self.registration_error: str | None = None
        self.malformed_datagrams = 0
        self.registrations = 0  # successful REGISTER transactions (first one and renewals)
        self._receiver: threading.Thread | None = None

    # ---- identities: unguessable, and nothing kept per tag

    def gen_call_id(self) -> str:
        return f"{secrets.token_hex(16)}@{self.myIP}"

    def gen_tag(self) -> str:
        return secrets.token_hex(8)

    def gen_branch(self, length: int = 32) -> str:
        return "z9hG4bK" + secrets.token_hex(16)

    @property
    def foreign_datagrams(self) -> int:
        sock = getattr(self, "s", None)
        return sock.foreign if isinstance(sock, TrustedSourceSocket) else 0

    # ---- registration

    def start(self) -> None:
        if self.NSD:
            raise RuntimeError("SIP client already started")
        self.NSD = True
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            trusted = frozenset({socket.gethostbyname(self.server)})
            raw.bind((self.myIP, self.myPort))
        except OSError:
            raw.close()
            self.NSD = False
            raise
        self.s = TrustedSourceSocket(raw, trusted)
        self.myPort = raw.getsockname()[1]  # port 0 = any free port: Contact/Via must carry the real one
        self.out = self.s
        try:
            self.register_now()
        except RegistrationError:
            self.NSD = False
            self._close_sockets()
            raise
        self._receiver = threading.Thread(target=self.recv_loop, name="ivr-sip-receive", daemon=True)
        self._receiver.start()

    def trying_timeout_check(self, response: SIP.SIPMessage) -> SIP.SIPMessage:
        """pyVoIP passes every REGISTER reply through here. A request (say an INVITE) that arrives while we
        wait for the registrar is handled, not taken for the reply; the final status is kept for errors."""
        while not self._is_register_reply(response):
            self._dispatch(response)
            if not select.select([self.s], [], [], self.register_timeout)[0]:
                raise TimeoutError("no REGISTER reply")
            response = SIP.SIPMessage(self.s.recv(8192))
        response = super().trying_timeout_check(response)
        self.last_register_status = int(response.status)
        return response

    @staticmethod
    def _is_register_reply(message: SIP.SIPMessage) -> bool:
        return message.type == SIP.SIPMessageType.RESPONSE and \
            message.headers.get("CSeq", {}).get("method") == "REGISTER"

    def register_now(self) -> None:
        """One REGISTER transaction (with digest auth); RegistrationError on failure. Schedules the next."""
        where = f"SIP server {self.server}:{self.port}"
        self.last_register_status = None
        try:
            with self.recvLock:
                try:
                    self._SIPClient__register()  # type: ignore[attr-defined]  # pyVoIP's transaction
                finally:
                    self.s.settimeout(self.register_timeout)
        except SIP.InvalidAccountInfoError:
            status = self.last_register_status
            reason = f"{status} {SIP.SIPStatus(status).phrase}" if status else "no final status"
            self._fail(f"{where} rejected the registration of extension {self.username}: {reason}")
        except (TimeoutError, socket.timeout):
            self._fail(f"{where} did not answer REGISTER within {self.register_timeout:g} s")
        except ConnectionRefusedError:
            self._fail(f"{where} is unreachable (ICMP port unreachable: nothing listens there)")
        except (OSError, SIP.SIPParseError, KeyError, ValueError) as exc:
            self._fail(f"{where}: registration failed: {type(exc).__name__}: {exc}")
        else:
            self.registered = True
            self.registrations += 1
            self.registration_error = None
            self.phone._status = PhoneStatus.REGISTERED
            self._schedule_register(self.default_expires - 5)

    def _fail(self, message: str) -> None:
        self.registered = False
        self.registration_error = message
        self.phone._status = PhoneStatus.FAILED
        raise RegistrationError(message)

    def register(self) -> bool:
        """The re-registration timer: on failure keep serving calls in progress and retry in 5 s."""
        if not self.NSD:
            return False
        try:
            self.register_now()
            return True
        except RegistrationError as exc:
            log.warning("re-registration failed, retrying in 5 s: %s", exc)
            self._schedule_register(5)
            return False

    def _schedule_register(self, delay: float) -> None:
        if self.NSD:
            timer = threading.Timer(delay, self.register)
            timer.name = "ivr-sip-register"
            timer.daemon = True
            self.registerThread = timer
            timer.start()

    def stop(self) -> None:
        super().stop()
        if self._receiver is not None and self._receiver is not threading.current_thread():
            self._receiver.join(2)

    # ---- receiving

    def recv_loop(self) -> None:
        while self.NSD:
            try:
                wait = self.phone.next_timer_in()  # type: ignore[attr-defined]
                readable, _, _ = select.select([self.s], [], [], wait)
            except (OSError, ValueError):  # socket closed by stop()
                return
            if readable:
                received = self._receive()
                if received is not None:
                    self.handle_datagram(*received)
            if self.NSD:
                self._run_timers()

    def _receive(self) -> tuple[bytes, tuple[str, int]] | None:
        with self.recvLock:  # a REGISTER/INVITE transaction in progress reads its own replies
            try:
                self.s.setblocking(False)
                return self.s.recvfrom(8192)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError:  # ICMP error from an earlier send, or closed socket
                return None
            finally:
                if self.NSD:
                    try:
                        self.s.settimeout(self.register_timeout)
                    except OSError:
                        pass

    def _run_timers(self) -> None:
        try:
            self.phone.run_timers(time.monotonic())  # type: ignore[attr-defined]
        except Exception:  # a timer must never stop the receiver
            log.exception("SIP timer failed")

    def handle_datagram(self, raw: bytes, source: tuple[str, int] | None = None) -> None:
        if not raw.strip(b"\r\n\x00 "):
            return  # keep-alive
        raw = canonical(raw)
        head, separator, _ = raw.partition(b"\r\n\r\n")
        try:
            # pyVoIP reads the headers only: the SDP is negotiated from the text (ivr.sdp), and pyVoIP's SDP
            # parser breaks on valid offers (an rtpmap without a rate) and on bodies with a blank line.
            message = SIP.SIPMessage(head + (separator or b"\r\n\r\n"))
        except Exception as exc:  # pyVoIP's parser raises all sorts on garbage
            self._unparsed(raw, source, exc)
            return
        message.raw = raw
        message.source = source  # type: ignore[attr-defined]  # where answers go
        self._dispatch(message)

    def _unparsed(self, raw: bytes, source: tuple[str, int] | None, exc: Exception) -> None:
        """A datagram pyVoIP cannot parse: OPTIONS gets its 200 (pyVoIP knows only four methods), any other
        request its 400 or 501 when it carries what an answer needs; the rest is counted and dropped."""
        method = raw.split(b" ", 1)[0].decode("ascii", "replace")
        if method == "OPTIONS":
            self.respond_raw(raw, source, 200, "OK", to_tag=self.gen_tag(), headers=[ALLOW])
            return
        self.malformed_datagrams += 1
        log.warning("dropped a malformed SIP datagram (%d bytes): %s: %s", len(raw), type(exc).__name__, exc)
        if method in ("INVITE", "BYE", "CANCEL"):
            self.respond_raw(raw, source, 400, "Bad Request", to_tag=self.gen_tag())
        elif method != "ACK" and re.fullmatch(r"[A-Za-z]{2,20}", method):
            self.respond_raw(raw, source, 501, "Not Implemented", to_tag=self.gen_tag(), headers=[ALLOW])

    def _dispatch(self, message: SIP.SIPMessage) -> None:
        try:
            self.parse_message(message)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
            # pyVoIP parsed it, but a header a dialog needs is missing or mangled
            self.malformed_datagrams += 1
            log.warning("dropped SIP message %r: %s: %s", message.heading[:80], type(exc).__name__, exc)
        except Exception:  # one bad dialog must not stop the receiver
            log.exception("failed to handle SIP message %r", message.heading[:80])

    def parse_message(self, message: SIP.SIPMessage) -> None:
        phone: IvrPhone = self.phone  # type: ignore[assignment]
        if message.type == SIP.SIPMessageType.MESSAGE:
            handlers = {"INVITE": phone.on_invite, "BYE": phone.on_bye, "CANCEL": phone.on_cancel,
                        "ACK": phone.on_ack}
            handlers[message.method](message)  # pyVoIP parses no other method
            return
        status = int(message.status)
        if message.headers.get("CSeq", {}).get("method") != "INVITE" or status < 200:
            return  # provisional answers; answers to our BYE/CANCEL/REGISTER (read by their transactions)
        if status >= 300:
            phone.invite_failed(message)
        else:
            phone.invite_answered(message)

    # ---- sending

    def respond_raw(self, raw: bytes, source: tuple[str, int] | None, status: int, reason: str, *,
                    to_tag: str | None = None, headers: Iterable[str] = (), body: str = "") -> None:
        """Answer the request `raw` (see ivr.sip_reply), back to where it came from."""
        text = build_response(raw, status, reason, to_tag=to_tag, headers=[*headers, f"Server: {USER_AGENT}"],
                              body=body)
        if text is None:
            return
        try:
            self.out.sendto(text.encode("utf8"), source or (self.server, self.port))
        except OSError as exc:
            log.warning("could not send %d %s: %s", status, reason, exc)

    def respond(self, request: SIP.SIPMessage, status: int, reason: str, **options) -> None:
        self.respond_raw(request.raw, getattr(request, "source", None), status, reason, **options)

    def gen_ok(self, request: SIP.SIPMessage) -> str:
        """pyVoIP's 200 with a new To tag even inside a dialog; here the request's tag is kept."""
        return build_response(request.raw, 200, "OK", to_tag=self.gen_tag()) or ""

    def gen_ack(self, request: SIP.SIPMessage) -> str:
        """ACK of a final response to our INVITE, with the callee's To tag (pyVoIP invents a new one). A 2xx
        is ACKed end to end (new branch, to the callee's Contact); any other final hop by hop, in the
        INVITE's transaction (its Via and Request-URI)."""
        headers = dialog_headers(request.raw)
        if headers is None:
            raise SIP.SIPParseError("a response without Via/From/To/Call-ID/CSeq cannot be ACKed")
        to_uri = uri_of(headers["to"][0])
        if 200 <= int(request.status) < 300:
            target = uri_of(str(request.headers.get("Contact", ""))) or to_uri
            via = f"SIP/2.0/UDP {self.myIP}:{self.myPort};branch={self.gen_branch()};rport"
        else:
            target, via = to_uri, headers["via"][0]
        number = headers["cseq"][0].split()[0]
        return "\r\n".join([f"ACK {target} SIP/2.0", f"Via: {via}", "Max-Forwards: 70",
                            f"From: {headers['from'][0]}", f"To: {headers['to'][0]}",
                            f"Call-ID: {headers['call-id'][0]}", f"CSeq: {number} ACK",
                            f"User-Agent: {USER_AGENT}", "Content-Length: 0", "", ""])

    def gen_dialog_bye(self, call: IvrCall) -> str:
        """Our BYE: our Via and branch, the dialog's tags both ways round, to the far end's Contact."""
        headers = call.request.headers
        local, remote = (headers["To"], headers["From"]) if call.direction == "inbound" else \
            (headers["From"], headers["To"])
        call.local_cseq += 1
        return "\r\n".join([
            f"BYE {call.remote_target} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.myIP}:{self.myPort};branch={self.gen_branch()};rport",
            "Max-Forwards: 70",
            f"From: {local['raw'].strip()};tag={call.local_tag}",
            f"To: {remote['raw'].strip()};tag={call.remote_tag}",
            f"Call-ID: {call.call_id}",
            f"CSeq: {call.local_cseq} BYE",
            f"Contact: <sip:{self.username}@{self.myIP}:{self.myPort}>",
            f"User-Agent: {USER_AGENT}",
            "Content-Length: 0", "", ""])


MediaFactory = Callable[[IvrCall, str, "int | None", socket.socket, tuple[str, int]], MediaStream]
IncomingHandler = Callable[[IvrCall], None]


class IvrPhone(VoIPPhone):
    """VoIPPhone whose calls are IvrCalls on a shared MediaEngine.

    `admit()` is asked for every new INVITE with an acceptable offer (False → 486 Busy Here);
    `on_incoming(call)` gets the answered call on the SIP thread and must return quickly; `on_refused(call)`
    is told when an admitted INVITE could not be set up after all (so the slot admit() took is given back;
    `call` is None when it failed before the call existed). `ack_timeout`: an answered call whose caller
    neither ACKs nor sends media for this long is hung up (RFC 3261: 64*T1). `media_timeout`: an answered
    call whose far end sends no RTP for this long is hung up (0 = never).
    """

    def __init__(self, server: str, port: int, username: str, password: str, *, my_ip: str, sip_port: int,
                 rtp_ports: tuple[int, int], codecs: tuple[str, ...], engine: MediaEngine,
                 media_factory: MediaFactory, admit: Callable[[], bool], on_incoming: IncomingHandler,
                 on_refused: Callable[[IvrCall | None], None], register_timeout: float, expires: int,
                 ack_timeout: float = 64 * T1, media_timeout: float = 0.0) -> None:
        super().__init__(server, port, username, password, myIP=my_ip, sipPort=sip_port,
                         rtpPortLow=rtp_ports[0], rtpPortHigh=rtp_ports[1])
        self.codecs = codecs
        self.engine = engine
        self.media_factory = media_factory
        self.admit = admit
        self.on_incoming = on_incoming
        self.on_refused = on_refused
        self.ack_timeout = ack_timeout
        self.media_timeout = media_timeout
        self._rtp_sockets: dict[int, socket.socket] = {}
        self._sockets_lock = threading.Lock()
        # An outgoing INVITE's answer waits until its call is registered. Re-entrant: pyVoIP's invite() reads the
        # socket itself while dialling and hands every other message (an earlier call's 200, say) to
        # parse_message on this same thread, which takes the lock again (a plain Lock deadlocked there for good).
        self._dialling = threading.RLock()
        self._awaiting_ack: dict[str, _AwaitingAck] = {}
        self._next_media_check = 0.0
        self.sip = IvrSipClient(server, port, username, password, phone=self, myIP=my_ip, myPort=sip_port,
                                callCallback=self.callback, fatalCallback=self.fatal,
                                register_timeout=register_timeout, expires=expires)

    def stop(self, failed: bool = False) -> None:
        """Hang up every call (BYE), de-register, close the SIP socket."""
        self._status = PhoneStatus.DEREGISTERING
        for call in list(self.calls.values()):
            if isinstance(call, IvrCall):
                call.hangup()
        self.sip.stop()
        self._status = PhoneStatus.FAILED if failed else PhoneStatus.INACTIVE

    # ---- ports: kernel-checked binds in the configured range, no pyVoIP bookkeeping

    def request_port(self, blocking: bool = True) -> int:
        sock = open_rtp_socket(self.myIP, self.rtpPortLow, self.rtpPortHigh)
        port = sock.getsockname()[1]
        with self._sockets_lock:
            self._rtp_sockets[port] = sock
        return port

    def take_rtp_socket(self, port: int) -> socket.socket:
        with self._sockets_lock:
            return self._rtp_sockets.pop(port)

    def release_ports(self, call: VoIPCall | None = None) -> None:
        """Close the socket a call reserved but never used (used ones close with their stream)."""
        self._close_reserved(getattr(call, "port", None) if call is not None else None)

    def _close_reserved(self, port: int | None) -> None:
        with self._sockets_lock:
            sock = self._rtp_sockets.pop(port, None)  # type: ignore[arg-type]
        if sock is not None:
            sock.close()

    def forget(self, call: IvrCall) -> None:
        """A call ended: drop everything kept for it (its entry in calls, its tag, its ACK wait, its port)."""
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]
            self.sip.tagLibrary.pop(call.call_id, None)
        wait = self._awaiting_ack.get(call.call_id)
        if wait is not None and wait.call is call:
            del self._awaiting_ack[call.call_id]
        self.release_ports(call)

    @staticmethod
    def _in_dialog(call: IvrCall, request: SIP.SIPMessage) -> bool:
        """The request carries the dialog's Call-ID (looked up already) and both of its tags."""
        return request.headers["From"]["tag"] == call.remote_tag and \
            request.headers["To"]["tag"] == call.local_tag and bool(call.local_tag)

    def _contact(self) -> str:
        return f"Contact: <sip:{self.username}@{self.myIP}:{self.sip.myPort}>"

    # ---- incoming requests (SIP thread)

    def on_invite(self, request: SIP.SIPMessage) -> None:
        call_id = request.headers.get("Call-ID", "")
        existing = self.calls.get(call_id)
        if existing is not None:
            self._invite_in_call(existing, request)
            return
        if request.headers["To"]["tag"]:
            self.sip.respond(request, 481, "Call/Transaction Does Not Exist")
            return
        missing = self._missing_for_a_call(request)
        if missing:
            self.sip.respond(request, 400, missing, to_tag=self.sip.gen_tag())
            return
        try:
            offer = choose_audio(sdp_body(request), self.codecs)
        except OfferNotAcceptable as exc:
            log.info("refusing call %s: %s", call_id, exc)
            self.sip.respond(request, 488, "Not Acceptable Here", to_tag=self.sip.gen_tag(),
                             headers=[f'Warning: 304 {self.myIP} "{exc}"'])
            return
        if not self.admit():
            self.sip.respond(request, 486, "Busy Here", to_tag=self.sip.gen_tag())
            return
        self._accept(request, offer)

    @staticmethod
    def _missing_for_a_call(request: SIP.SIPMessage) -> str | None:
        headers = request.headers
        if not headers.get("Call-ID") or not headers.get("Via") or "number" not in headers.get("To", {}) \
                or "check" not in headers.get("CSeq", {}):
            return "Missing Call-ID, Via, To or CSeq"
        if not uri_of(str(headers.get("Contact", ""))).lower().startswith(("sip:", "sips:")):
            return "Missing Contact"
        if not headers.get("From", {}).get("tag"):
            return "Missing From Tag"
        return None

    def _accept(self, request: SIP.SIPMessage, offer: AudioOffer) -> None:
        """Ring, build the call, answer, hand it over. The slot admit() took, the RTP socket and the tag are
        given back on any failure, and the caller gets a 500."""
        call_id = request.headers["Call-ID"]
        local_tag = self.sip.gen_tag()
        call: IvrCall | None = None
        port: int | None = None
        try:
            self.sip.tagLibrary[call_id] = local_tag
            self.sip.respond(request, 180, "Ringing", to_tag=local_tag, headers=[self._contact()])
            port = self.request_port()
            call = IvrCall.incoming(self, request, offer, port, local_tag)
            port = None  # the stream owns the socket now
            self.calls[call_id] = call
            call.answer()
        except Exception as exc:
            log.exception("call %s could not be set up", call_id)
            if call is not None:
                call.abandon()
            self.sip.tagLibrary.pop(call_id, None)
            self._close_reserved(port)
            self.sip.respond(request, 500, "Server Internal Error", to_tag=local_tag,
                             headers=[f'Warning: 399 {self.myIP} "{type(exc).__name__}"'])
            self.on_refused(call)
            return
        try:
            self.on_incoming(call)
        except Exception:
            log.exception("call %s: the application could not take it", call_id)
            call.hangup()
            self.on_refused(call)

    def send_answer(self, call: IvrCall) -> None:
        """Our 200 with the SDP answer (IvrCall.answer); repeated by run_timers until the ACK comes."""
        assert call.media is not None and call.codec is not None
        stream = call.media.stream
        offer = AudioOffer(stream.remote[0], stream.remote[1], call.codec, stream.payload_type,
                           stream.dtmf_payload_type)
        body = answer_sdp(int(call.session_id), self.myIP, stream.local_port, offer)
        text = build_response(call.request.raw, 200, "OK", to_tag=call.local_tag,
                              headers=[self._contact(), ALLOW, f"Server: {USER_AGENT}"], body=body)
        if text is None:
            raise SIP.SIPParseError("the INVITE lacks what its answer must copy")
        call.answer_text = text
        destination = getattr(call.request, "source", None) or (self.server, self.port)
        self.sip.out.sendto(text.encode("utf8"), destination)
        now = time.monotonic()
        self._awaiting_ack[call.call_id] = _AwaitingAck(call, destination, now + self.ack_timeout, now + T1)

    def _invite_in_call(self, call: IvrCall, request: SIP.SIPMessage) -> None:
        """An INVITE with the Call-ID of a call we have: the initial INVITE again (our 200 got lost), a
        re-INVITE of the dialog's peer, or someone else's request (481 / 486)."""
        if not request.headers["To"]["tag"]:
            same_invite = call.direction == "inbound" and request.headers["From"]["tag"] == call.remote_tag \
                and request.headers["CSeq"]["check"] == call.request.headers["CSeq"]["check"]
            if not same_invite:
                self.sip.respond(request, 486, "Busy Here", to_tag=self.sip.gen_tag(),
                                 headers=['Warning: 399 - "Call-ID in use"'])
            elif call.state == CallState.ANSWERED and call.answer_text:
                destination = getattr(request, "source", None) or (self.server, self.port)
                self.sip.out.sendto(call.answer_text.encode("utf8"), destination)
            return
        if not self._in_dialog(call, request) or call.state != CallState.ANSWERED or call.media is None:
            self.sip.respond(request, 481, "Call/Transaction Does Not Exist")
            return
        try:
            offer = choose_audio(sdp_body(request), (call.codec or "PCMU",))
        except OfferNotAcceptable as exc:
            self.sip.respond(request, 488, "Not Acceptable Here", headers=[f'Warning: 304 {self.myIP} "{exc}"'])
            return
        stream = call.media.stream
        stream.retarget((offer.address, offer.port))
        body = answer_sdp(int(call.session_id), self.myIP, stream.local_port, offer)
        self.sip.respond(request, 200, "OK", headers=[self._contact(), ALLOW], body=body)

    def on_bye(self, request: SIP.SIPMessage) -> None:
        call = self.calls.get(request.headers.get("Call-ID", ""))
        if not isinstance(call, IvrCall) or not self._in_dialog(call, request):
            self.sip.respond(request, 481, "Call/Transaction Does Not Exist")
            return
        self.sip.respond(request, 200, "OK")
        call.bye()

    def on_cancel(self, request: SIP.SIPMessage) -> None:
        """CANCEL of an INVITE of ours: 200 for the CANCEL; 487 for the INVITE if it was not answered yet
        (answered already: the CANCEL changes nothing, RFC 3261 §9.2)."""
        call = self.calls.get(request.headers.get("Call-ID", ""))
        if not isinstance(call, IvrCall) or call.direction != "inbound" or not self._cancels(call, request):
            self.sip.respond(request, 481, "Call/Transaction Does Not Exist")
            return
        self.sip.respond(request, 200, "OK", to_tag=call.local_tag)
        with call._state_lock:
            ringing = call.state == CallState.RINGING
        if ringing and call._end():
            self.sip.respond(call.request, 487, "Request Terminated", to_tag=call.local_tag)
            call.bye()

    @staticmethod
    def _cancels(call: IvrCall, request: SIP.SIPMessage) -> bool:
        """A CANCEL matches its INVITE by From tag, CSeq number and the top Via's branch."""
        invite = call.request.headers
        if not request.headers["Via"] or not invite["Via"]:
            return False
        return request.headers["From"]["tag"] == call.remote_tag and \
            request.headers["CSeq"]["check"] == invite["CSeq"]["check"] and \
            request.headers["Via"][0].get("branch") == invite["Via"][0].get("branch")

    def on_ack(self, request: SIP.SIPMessage) -> None:
        call = self.calls.get(request.headers.get("Call-ID", ""))
        if isinstance(call, IvrCall) and self._in_dialog(call, request):
            call.confirmed = True

    # ---- timers (SIP thread, between datagrams)

    def next_timer_in(self) -> float:
        """How long the receiver may wait for a datagram before run_timers is due."""
        return 0.1 if self._awaiting_ack else 0.5

    def run_timers(self, now: float) -> None:
        """Repeat unacknowledged 200s (T1 doubling to T2), hang up calls never confirmed within ack_timeout,
        and calls whose far end went silent for media_timeout."""
        for call_id, wait in list(self._awaiting_ack.items()):
            call = wait.call
            heard = call.media is not None and call.media.stream.stats.packets_received > 0
            if call.state != CallState.ANSWERED or call.confirmed or heard:
                call.confirmed = True
                self._awaiting_ack.pop(call_id, None)
            elif now >= wait.give_up_at:
                log.warning("call %s: no ACK and no media %.0f s after our 200: hanging up", call_id,
                            self.ack_timeout)
                self._awaiting_ack.pop(call_id, None)
                call.hangup()
            elif now >= wait.next_at:
                self.sip.out.sendto(call.answer_text.encode("utf8"), wait.destination)
                wait.interval = min(2 * wait.interval, T2)
                wait.next_at = now + wait.interval
        if self.media_timeout and now >= self._next_media_check:
            self._next_media_check = now + 1.0
            for call in list(self.calls.values()):
                if isinstance(call, IvrCall) and call.state == CallState.ANSWERED and call.media is not None \
                        and now - call.media.stream.last_received > self.media_timeout:
                    log.warning("call %s: no media from the far end for %.0f s: hanging up", call.call_id,
                                self.media_timeout)
                    call.hangup()

    # ---- outgoing calls

    def dial(self, number: str, codec: str) -> IvrCall:
        """Send the INVITE; IvrCall.final_event fires on the final response."""
        payload_type = CODECS[codec][0]
        port = self.request_port()
        medias = {port: {payload_type: RTP.PayloadType(payload_type), 101: RTP.PayloadType.EVENT}}
        with self._dialling:
            try:
                request, call_id, session_id = self.sip.invite(number, medias, RTP.TransmitType.SENDRECV)
            except BaseException:
                self._close_reserved(port)
                raise
            call = IvrCall(self, CallState.DIALING, request, session_id, self.myIP, ms=medias,
                           sendmode=self.sendmode)
            call.codec = codec
            call.local_tag = self.sip.tagLibrary.get(call_id, "")
            call.local_cseq = int(request.headers["CSeq"]["check"])
            self.calls[call_id] = call
        return call

    def _dialled_call(self, response: SIP.SIPMessage) -> IvrCall | None:
        with self._dialling:
            call = self.calls.get(response.headers.get("Call-ID", ""))
        if isinstance(call, IvrCall) and call.direction == "outbound" and \
                response.headers["From"]["tag"] == call.local_tag:
            return call
        return None

    def invite_answered(self, response: SIP.SIPMessage) -> None:
        """A 2xx to one of our INVITEs (or its retransmission): ACK it; a first one answers the call."""
        call = self._dialled_call(response)
        if call is None:
            return
        call.answered(response)
        self.sip.out.sendto(self.sip.gen_ack(response).encode("utf8"), (self.server, self.port))
        if call.final_status == 488 and call.remote_target:  # unusable answer: the dialog exists, end it
            self.send_bye(call)
            self.forget(call)

    def invite_failed(self, response: SIP.SIPMessage) -> None:
        """Final non-2xx to one of our INVITEs: ACK it (RFC 3261 §17.1.1.3) and end the call."""
        self.sip.out.sendto(self.sip.gen_ack(response).encode("utf8"), (self.server, self.port))
        call = self._dialled_call(response)
        if call is not None:
            self.forget(call)
            call.failed(int(response.status))

    def abandon_dial(self, call: IvrCall) -> None:
        """An outgoing call given up without a final answer (the CANCEL's 487 never came)."""
        call._end()
        self.forget(call)

    def send_bye(self, call: IvrCall) -> None:
        self.sip.out.sendto(self.sip.gen_dialog_bye(call).encode("utf8"), (self.server, self.port))

    def cancel(self, call: IvrCall) -> None:
        """CANCEL an INVITE still ringing (same Request-URI, Via, From, To, Call-ID and CSeq number)."""
        head = call.request.raw.decode().split("\r\n\r\n", 1)[0].split("\r\n")
        uri = head[0].split(" ")[1]
        keep = [line for line in head[1:] if line.split(":", 1)[0].strip().lower() in ("via", "from", "to",
                                                                                     "call-id")]
        cseq = next(line for line in head if line.lower().startswith("cseq:")).split()[1]
        self.sip.out.sendto("\r\n".join([f"CANCEL {uri} SIP/2.0", *keep, "Max-Forwards: 70",
                                         f"CSeq: {cseq} CANCEL", "Content-Length: 0", "", ""]).encode("utf8"),
                            (self.server, self.port))
