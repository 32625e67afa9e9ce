"""pyVoIP 1.6.8 as the simulated caller's SIP stack, with the gaps a tester needs filled in.

pyVoIP registers and sends INVITE/ACK/BYE; this module adds what it lacks for outgoing calls:
- a choice of codec in the offer (pyVoIP always offers PCMU);
- the final status of the INVITE (pyVoIP drops 486/480/487/403... silently) and an ACK for every
  non-2xx final response so the proxy stops retransmitting it;
- CANCEL of an unanswered call;
- RTP sockets bound by the kernel (port 0) instead of a random pick from a range that other phones on the
  same machine might also pick; the media itself is ivr.softphone.media.CallerMedia on the phone's
  ivr.media.MediaEngine (one thread for all its calls).
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable

from pyVoIP import RTP, SIP
from pyVoIP.VoIP import CallState, VoIPCall, VoIPPhone

from ..media import MediaEngine
from .media import CODECS, CallerMedia


class SoftphoneCall(VoIPCall):
    """An outgoing pyVoIP call whose media is a CallerMedia; records how the INVITE ended."""

    def __init__(self, *args, codec: str, **kwargs) -> None:
        self.codec = codec
        self.final_status: int | None = None
        self.final_reason: str = ""
        self.media: CallerMedia | None = None
        self.ended_by: str | None = None  # "caller" | "remote"
        self.answered_event = threading.Event()
        self.finished_event = threading.Event()  # answered or failed or ended
        super().__init__(*args, **kwargs)

    def create_rtp_clients(self, codecs: dict[int, RTP.PayloadType], ip: str, port: int,
                           request: SIP.SIPMessage, baseport: int) -> None:
        """Called by pyVoIP with the answer's SDP: set up our media instead of pyVoIP's RTPClient."""
        names = {int(pt): str(kind) for pt, kind in codecs.items()}
        answer_codec = next((name for name in names.values() if name in CODECS), None)
        if answer_codec is None:
            raise ValueError(f"the callee answered without PCMU/PCMA: {names}")
        dtmf_pt = next((pt for pt, name in names.items() if name == "telephone-event"), 101)
        remote = (request.body["c"][0]["address"], baseport)
        self.codec = answer_codec
        self.media = CallerMedia(self.phone.engine, self.phone.take_rtp_socket(port), remote, answer_codec, dtmf_pt)
        self.RTPClients.append(self.media)  # pyVoIP starts/stops it with the call

    def answered(self, request: SIP.SIPMessage) -> None:
        super().answered(request)
        if self.state == CallState.ANSWERED:
            self.answered_event.set()
            self.finished_event.set()

    def bye(self) -> None:
        """The far end hung up."""
        if self.ended_by is None:
            self.ended_by = "remote"
        super().bye()
        self.finished_event.set()

    def hangup(self) -> None:
        if self.ended_by is None:
            self.ended_by = "caller"
        super().hangup()
        self.finished_event.set()

    def failed(self, status: int, reason: str) -> None:
        self.final_status, self.final_reason = status, reason
        self.state = CallState.ENDED
        self.finished_event.set()


class SoftphonePhone(VoIPPhone):
    """A VoIPPhone that dials with a chosen codec and knows each INVITE's final response."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.engine = MediaEngine("softphone-media")  # one media thread for all of this phone's calls
        self._rtp_sockets: dict[int, socket.socket] = {}
        self._dialled: dict[str, SoftphoneCall] = {}  # by Call-ID, until the INVITE's final response
        self.last_register_status: int | None = None
        original_parse = self.sip.parse_message
        self.sip.parse_message = self._make_response_observer(original_parse)  # type: ignore[method-assign]

    def request_port(self, blocking: bool = True) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.myIP, 0))
        port = sock.getsockname()[1]
        self._rtp_sockets[port] = sock
        return port

    def release_ports(self, call: VoIPCall | None = None) -> None:
        """Our RTP ports are kernel-assigned sockets: close the one a call never used (pyVoIP calls this)."""
        if call is not None:
            unused = self._rtp_sockets.pop(getattr(call, "port", -1), None)
            if unused is not None:
                unused.close()

    def take_rtp_socket(self, port: int) -> socket.socket:
        return self._rtp_sockets.pop(port)

    def dial(self, number: str, codec: str) -> SoftphoneCall:
        """Send the INVITE (answering the proxy's digest challenge); the answer arrives asynchronously."""
        payload_type = CODECS[codec][0]
        port = self.request_port()
        medias = {port: {payload_type: RTP.PayloadType(payload_type), 101: RTP.PayloadType.EVENT}}
        request, call_id, session_id = self.sip.invite(number, medias, RTP.TransmitType.SENDRECV)
        call = SoftphoneCall(self, CallState.DIALING, request, session_id, self.myIP, ms=medias,
                             sendmode=self.sendmode, codec=codec)
        self.calls[call_id] = call
        self._dialled[call_id] = call
        return call

    def cancel(self, call: SoftphoneCall) -> None:
        """CANCEL an INVITE still ringing (RFC 3261 §9.1: same Request-URI, Via, From, To, Call-ID, CSeq number)."""
        invite = call.request.raw.decode()
        head = invite.split("\r\n\r\n", 1)[0].split("\r\n")
        uri = head[0].split(" ")[1]
        keep = [line for line in head[1:] if re.match(r"(?i)(via|from|to|call-id):", line)]
        cseq = next(line for line in head if line.lower().startswith("cseq:")).split()[1]
        message = "\r\n".join([f"CANCEL {uri} SIP/2.0", *keep, "Max-Forwards: 70", f"CSeq: {cseq} CANCEL",
                               "Content-Length: 0", "", ""])
        self.sip.out.sendto(message.encode(), (self.server, self.port))

    def _make_response_observer(self, parse: Callable[[SIP.SIPMessage], None]) -> Callable[[SIP.SIPMessage], None]:
        def observe(message: SIP.SIPMessage) -> None:
            parse(message)  # pyVoIP first: it answers 200 (media up) and ends 404/503 itself
            if message.type == SIP.SIPMessageType.RESPONSE:
                self._observe_response(message)
        return observe

    def _observe_response(self, message: SIP.SIPMessage) -> None:
        code = int(message.status)
        method = message.headers.get("CSeq", {}).get("method")
        if method == "REGISTER":
            self.last_register_status = code
            return
        if method != "INVITE" or code < 200:
            return
        call = self._dialled.pop(message.headers["Call-ID"], None)
        if call is None:
            return  # a retransmission, or not ours
        call.final_status, call.final_reason = code, message.status.phrase
        if code >= 300:
            if code not in (404, 503):  # pyVoIP itself ACKs and ends only 404/503
                self.sip.out.sendto(self.sip.gen_ack(message).encode(), (self.server, self.port))
            self.release_ports(call)  # media never started
            call.failed(code, message.status.phrase)
            self.calls.pop(call.call_id, None)
