"""pyVoIP 1.6.8 as the IVR's SIP stack, subclassed where it falls short for a server-side node.

What changes against pyVoIP (and why):
- registration: the first REGISTER is synchronous and failures raise RegistrationError naming host:port and
  the SIP status (pyVoIP swallows them in a timer thread); re-registration retries forever instead of
  stopping the phone after three failures, and keeps the state for health reports;
- receiving: one select()-based loop instead of a 10 ms polling loop; a datagram pyVoIP cannot parse is
  counted and dropped, never taken for a reply;
- incoming INVITE: answered at once (pyVoIP waits one second on a Timer), refused with 486 Busy Here when the
  node is full, media on ivr.media (one thread for all calls, 16-bit G.711 both laws, RFC 4733 digits);
- outgoing INVITE: every final status reaches the caller of dial() (pyVoIP only reports 200/404/503), with
  an ACK for non-2xx finals.
"""
from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Callable

from pyVoIP import RTP, SIP
from pyVoIP.VoIP import CallState, VoIPCall, VoIPPhone
from pyVoIP.VoIP.status import PhoneStatus

from .media import CODECS, MediaEngine, MediaStream, open_rtp_socket
from .session import CallSession

log = logging.getLogger(__name__)


class RegistrationError(RuntimeError):
    """The SIP server could not be reached or refused the registration."""


class CallMedia:
    """What pyVoIP's call keeps in `RTPClients` (it calls start()/stop() and reads inPort/assoc): our stream."""

    def __init__(self, engine: MediaEngine, stream: MediaStream, assoc: dict[int, RTP.PayloadType]) -> None:
        self.engine = engine
        self.stream = stream
        self.inPort = stream.local_port
        self.assoc = assoc
        self._started = False

    def start(self) -> None:
        if not self._started:  # pyVoIP calls start() again on re-INVITE
            self._started = True
            self.engine.add(self.stream)

    def stop(self) -> None:
        self.engine.remove(self.stream)


class IvrCall(VoIPCall):
    """A pyVoIP call whose media is an ivr.media.MediaStream. `media_factory(call, codec, dtmf_pt, sock, remote)`
    (set by the phone) builds the stream with the session's callbacks."""

    def __init__(self, *args, **kwargs) -> None:
        self.media: CallMedia | None = None
        self.session: CallSession | None = None  # set by the media factory
        self.codec: str | None = None
        self.final_status: int | None = None
        self.final_event = threading.Event()  # outgoing: answered or failed
        super().__init__(*args, **kwargs)

    def create_rtp_clients(self, codecs: dict[int, RTP.PayloadType], ip: str, port: int,
                           request: SIP.SIPMessage, baseport: int) -> None:
        phone: IvrPhone = self.phone  # type: ignore[assignment]
        offered = {int(pt): str(kind) for pt, kind in codecs.items()}
        codec_pt = next((pt for wanted in phone.codecs for pt, name in offered.items() if name == wanted), None)
        if codec_pt is None:
            raise ValueError(f"no common codec: offered {sorted(set(offered.values()))}, we take {phone.codecs}")
        dtmf_pt = next((pt for pt, name in offered.items() if name == "telephone-event"), None)
        self.codec = offered[codec_pt]
        remote = (request.body["c"][0]["address"], baseport)
        stream = phone.media_factory(self, self.codec, dtmf_pt, phone.take_rtp_socket(port), remote)
        assoc = {codec_pt: codecs[codec_pt]}
        if dtmf_pt is not None:
            assoc[dtmf_pt] = codecs[dtmf_pt]
        self.media = CallMedia(phone.engine, stream, assoc)
        self.RTPClients.append(self.media)

    def answered(self, request: SIP.SIPMessage) -> None:
        super().answered(request)
        if self.state == CallState.ANSWERED:
            self.final_status = 200
            self.final_event.set()

    def failed(self, status: int) -> None:
        self.final_status = status
        self.state = CallState.ENDED
        self.final_event.set()


class IvrSipClient(SIP.SIPClient):
    """pyVoIP's SIP client with strict first registration, lasting re-registration and a robust receiver."""

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

    # ---- registration

    def start(self) -> None:
        if self.NSD:
            raise RuntimeError("SIP client already started")
        self.NSD = True
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((self.myIP, self.myPort))
        self.myPort = self.s.getsockname()[1]  # port 0 = any free port: Contact/Via must carry the real one
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
                readable, _, _ = select.select([self.s], [], [], 0.5)
            except (OSError, ValueError):  # socket closed by stop()
                return
            if not readable:
                continue
            with self.recvLock:  # a REGISTER/INVITE transaction in progress reads its own replies
                try:
                    self.s.setblocking(False)
                    raw = self.s.recv(8192)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:  # ICMP error from an earlier send, or closed socket
                    continue
                finally:
                    if self.NSD:
                        try:
                            self.s.settimeout(self.register_timeout)
                        except OSError:
                            pass
            self.handle_datagram(raw)

    def handle_datagram(self, raw: bytes) -> None:
        if not raw.strip(b"\r\n\x00 "):
            return  # keep-alive
        try:
            message = SIP.SIPMessage(raw)
        except Exception as exc:  # pyVoIP's parser raises all sorts on garbage
            self.malformed_datagrams += 1
            log.warning("dropped a malformed SIP datagram (%d bytes): %s: %s", len(raw), type(exc).__name__, exc)
            return
        self._dispatch(message)

    def _dispatch(self, message: SIP.SIPMessage) -> None:
        try:
            self.parse_message(message)
        except Exception:  # one bad dialog must not stop the receiver
            log.exception("failed to handle SIP message %r", message.heading[:80])

    def parse_message(self, message: SIP.SIPMessage) -> None:
        if message.type == SIP.SIPMessageType.RESPONSE and int(message.status) >= 300 \
                and message.headers.get("CSeq", {}).get("method") == "INVITE":
            self.phone.invite_failed(message)  # type: ignore[attr-defined]
            return
        super().parse_message(message)
        if self.NSD:  # pyVoIP makes the socket fully blocking after a response; keep the bounded wait
            self.s.settimeout(self.register_timeout)


MediaFactory = Callable[[IvrCall, str, "int | None", socket.socket, tuple[str, int]], MediaStream]
IncomingHandler = Callable[[IvrCall], None]


class IvrPhone(VoIPPhone):
    """VoIPPhone whose calls are IvrCalls on a shared MediaEngine.

    `admit()` is asked for every new INVITE (False → 486 Busy Here); `on_incoming(call)` gets the answered
    call on the SIP thread and must return quickly; `on_refused()` is told when an admitted INVITE could not
    be set up after all (so the slot admit() took is given back).
    """

    def __init__(self, server: str, port: int, username: str, password: str, *, my_ip: str, sip_port: int,
                 rtp_ports: tuple[int, int], codecs: tuple[str, ...], engine: MediaEngine,
                 media_factory: MediaFactory, admit: Callable[[], bool], on_incoming: IncomingHandler,
                 on_refused: Callable[[], None], register_timeout: float, expires: int) -> None:
        super().__init__(server, port, username, password, myIP=my_ip, sipPort=sip_port,
                         rtpPortLow=rtp_ports[0], rtpPortHigh=rtp_ports[1])
        self.codecs = codecs
        self.engine = engine
        self.media_factory = media_factory
        self.admit = admit
        self.on_incoming = on_incoming
        self.on_refused = on_refused
        self._rtp_sockets: dict[int, socket.socket] = {}
        self._sockets_lock = threading.Lock()
        self._dialling: dict[str, IvrCall] = {}
        self.sip = IvrSipClient(server, port, username, password, phone=self, myIP=my_ip, myPort=sip_port,
                                callCallback=self.callback, fatalCallback=self.fatal,
                                register_timeout=register_timeout, expires=expires)

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
        ports = [getattr(call, "port", None)] if call is not None else []
        if isinstance(call, IvrCall) and call.media is None:
            ports += list(call.assignedPorts)
        with self._sockets_lock:
            for port in ports:
                sock = self._rtp_sockets.pop(port, None)  # type: ignore[arg-type]
                if sock is not None:
                    sock.close()

    # ---- incoming calls

    def _send(self, message: str) -> None:
        self.sip.out.sendto(message.encode("utf8"), (self.server, self.port))

    def _callback_MSG_Invite(self, request: SIP.SIPMessage) -> None:
        call_id = request.headers["Call-ID"]
        existing = self.calls.get(call_id)
        if existing is not None:
            self._reinvite(existing, request)
            return
        if not self.admit():
            self._send(self.sip.gen_busy(request))
            return
        self._send(self.sip.gen_ringing(request))  # also creates our To tag for the dialog
        try:
            call = IvrCall(self, CallState.RINGING, request, self.sip.sessID.next(), self.myIP,
                           sendmode=self.recvmode)
            if call.media is None:
                raise ValueError("the offer has no audio stream we can use")
        except Exception as exc:
            log.warning("refusing call %s: %s", call_id, exc)
            self._send(self.sip.gen_busy(request))
            self.on_refused()
            return
        self.calls[call_id] = call
        call.answer()  # 200 OK now: no one-second Timer as in pyVoIP
        self.on_incoming(call)

    def _reinvite(self, call: VoIPCall, request: SIP.SIPMessage) -> None:
        """A retransmitted INVITE (our 200 got lost) or a re-INVITE: answer again with the same media."""
        if not isinstance(call, IvrCall) or call.media is None or call.state != CallState.ANSWERED:
            return
        self._send(self.sip.gen_answer(request, call.session_id, {call.media.inPort: call.media.assoc},
                                       call.sendmode))
        try:
            call.media.stream.remote = (request.body["c"][0]["address"], request.body["m"][0]["port"])
        except (KeyError, IndexError):
            pass

    # ---- outgoing calls

    def dial(self, number: str, codec: str) -> IvrCall:
        """Send the INVITE; IvrCall.final_event fires on the final response."""
        payload_type = CODECS[codec][0]
        port = self.request_port()
        medias = {port: {payload_type: RTP.PayloadType(payload_type), 101: RTP.PayloadType.EVENT}}
        try:
            request, call_id, session_id = self.sip.invite(number, medias, RTP.TransmitType.SENDRECV)
        except BaseException:
            with self._sockets_lock:
                self._rtp_sockets.pop(port).close()
            raise
        call = IvrCall(self, CallState.DIALING, request, session_id, self.myIP, ms=medias, sendmode=self.sendmode)
        self.calls[call_id] = call
        return call

    def invite_failed(self, response: SIP.SIPMessage) -> None:
        """Final non-2xx to one of our INVITEs: ACK it (RFC 3261 §17.1.1.3) and end the call."""
        self._send(self.sip.gen_ack(response))
        call = self.calls.pop(response.headers["Call-ID"], None)
        if isinstance(call, IvrCall):
            self.release_ports(call)
            call.failed(int(response.status))

    def cancel(self, call: IvrCall) -> None:
        """CANCEL an INVITE still ringing (same Request-URI, Via, From, To, Call-ID and CSeq number)."""
        head = call.request.raw.decode().split("\r\n\r\n", 1)[0].split("\r\n")
        uri = head[0].split(" ")[1]
        keep = [line for line in head[1:] if line.split(":", 1)[0].strip().lower() in ("via", "from", "to",
                                                                                     "call-id")]
        cseq = next(line for line in head if line.lower().startswith("cseq:")).split()[1]
        self._send("\r\n".join([f"CANCEL {uri} SIP/2.0", *keep, "Max-Forwards: 70", f"CSeq: {cseq} CANCEL",
                                "Content-Length: 0", "", ""]))
