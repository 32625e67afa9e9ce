"""The IVR node: registers to the SIP server, answers calls up to a maximum, runs the application's
`on_call(session)` for each in its own thread, dials out, and keeps call detail records.

Application hooks keep protocol and application apart: the node knows nothing of menus or tickets; it
hands out CallSessions and reports finished CallRecords to `on_record`.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Literal

from pyVoIP.VoIP import CallState

from .config import IvrSettings
from .media import MediaEngine, MediaStream
from .session import CallEnded, CallSession
from .sip import IvrCall, IvrPhone, RegistrationError

log = logging.getLogger(__name__)

__all__ = ["CallRecord", "DialResult", "IvrNode", "NodeHealth", "RegistrationError"]

RECENT_RECORDS_KEPT = 1000
CANCEL_CHECK_SECONDS = 0.1  # how soon dial() notices its `cancel` event while ringing


@dataclass
class CallRecord:
    """Call detail record. `details` holds what the application noted (e.g. the demo menu's choice).

    `call_id` is the node's own id for the call (uuid4 hex, given when the call is answered, inbound or
    outbound): tickets, recordings, transcripts and journals key on it. `sip_call_id` is the SIP Call-ID,
    kept as a SIP detail only, because callers choose it and pyVoIP repeats it across processes."""

    call_id: str
    direction: Literal["inbound", "outbound"]
    caller: str
    called: str
    codec: str
    started_at: datetime | None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    digits: str = ""
    recording_path: str | None = None
    ended_by: Literal["caller", "ivr"] | None = None
    details: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # an exception the application let escape (logged, never re-raised)
    sip_call_id: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("started_at", "answered_at", "ended_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


@dataclass(frozen=True)
class NodeHealth:
    registration: Literal["registered", "unregistered", "failed"]
    registration_error: str | None
    active_calls: int
    capacity: int
    malformed_sip_datagrams: int
    foreign_sip_datagrams: int  # from anyone but the SIP server: dropped unread
    media_ticks_late: int  # 20 ms send ticks handled a frame or more late since start (CPU starvation)
    media_ticks_skipped: int  # ticks never sent after a stall > 200 ms (each one a 20 ms gap on every call)
    media_frames_skipped: int  # those ticks summed over the calls that missed them
    registrations: int  # successful REGISTERs since start (renewals included)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DialResult:
    status: Literal["answered", "busy", "no_answer", "failed"]
    session: CallSession | None
    sip_status: int | None = None


BUSY_STATUSES = {486, 600}
NO_ANSWER_STATUSES = {408, 480, 487}


class IvrNode:
    """One IVR registered as `extension`.

        node = IvrNode(host, port, "12345", password, on_call=app, local_ip="127.0.0.1", max_calls=100)
        node.start()      # RegistrationError (naming host:port and SIP status) when it cannot register
        ...
        node.stop()

    `on_call(session)` runs in a thread per answered incoming call; when it returns the call is hung up.
    `on_record(record)` is called (from that thread) with each finished call's CallRecord.
    """

    def __init__(self, registrar_host: str, registrar_port: int, extension: str, password: str, *,
                 on_call: Callable[[CallSession], None],
                 on_record: Callable[[CallRecord], None] | None = None,
                 local_ip: str = "127.0.0.1", sip_port: int = 0, rtp_ports: tuple[int, int] = (10000, 20000),
                 codecs: tuple[str, ...] = ("PCMU", "PCMA"), max_calls: int = 100, register_expires: int = 120,
                 register_timeout: float = 5.0, ack_timeout: float = 32.0, media_timeout: float = 60.0) -> None:
        self.settings = IvrSettings(registrar_host=registrar_host, registrar_port=registrar_port,
                                    extension=extension, password=password, local_ip=local_ip,
                                    sip_port=sip_port, rtp_port_low=rtp_ports[0], rtp_port_high=rtp_ports[1],
                                    codecs=tuple(codecs), max_calls=max_calls, register_expires=register_expires,
                                    register_timeout=register_timeout, ack_timeout=ack_timeout,
                                    media_timeout=media_timeout)
        self.on_call = on_call
        self.on_record = on_record
        self._engine = MediaEngine()
        self._lock = threading.Lock()
        self._reserved = 0  # admitted calls not yet finished (includes ones being set up)
        self._active: dict[str, tuple[CallSession, CallRecord]] = {}
        self._recent: deque[CallRecord] = deque(maxlen=RECENT_RECORDS_KEPT)
        self._threads: set[threading.Thread] = set()
        self._phone = IvrPhone(registrar_host, registrar_port, extension, password, my_ip=local_ip,
                               sip_port=sip_port, rtp_ports=rtp_ports, codecs=tuple(codecs), engine=self._engine,
                               media_factory=self._make_stream, admit=self._admit,
                               on_incoming=self._incoming, on_refused=self._refused,
                               register_timeout=register_timeout, expires=register_expires,
                               ack_timeout=ack_timeout, media_timeout=media_timeout)
        self._started = False

    @classmethod
    def from_settings(cls, settings: IvrSettings, *, on_call: Callable[[CallSession], None],
                      on_record: Callable[[CallRecord], None] | None = None) -> IvrNode:
        return cls(settings.registrar_host, settings.registrar_port, settings.extension, settings.password,
                   on_call=on_call, on_record=on_record, local_ip=settings.local_ip, sip_port=settings.sip_port,
                   rtp_ports=(settings.rtp_port_low, settings.rtp_port_high), codecs=settings.codecs,
                   max_calls=settings.max_calls, register_expires=settings.register_expires,
                   register_timeout=settings.register_timeout, ack_timeout=settings.ack_timeout,
                   media_timeout=settings.media_timeout)

    # ---- life cycle

    def start(self) -> None:
        """Start media and register; raises RegistrationError (and leaves nothing running) on failure."""
        self._engine.start()
        try:
            self._phone.start()
        except BaseException:
            self._engine.stop()
            raise
        self._started = True

    def stop(self, timeout: float = 5.0) -> None:
        """Hang up every call, wait for the application threads, unregister, close every socket."""
        if not self._started:
            return
        self._started = False
        with self._lock:
            sessions = [session for session, _ in self._active.values()]
        for session in sessions:
            session.hangup()
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread.ident is not None:  # registered just before start(): nothing to wait for yet
                thread.join(max(0.0, deadline - time.monotonic()))
        try:
            self._phone.stop()
        except Exception as exc:  # deregistration is best effort: the server may be gone already
            log.warning("deregistration failed: %s", exc)
        self._engine.stop()

    @property
    def sip_port(self) -> int:
        return self._phone.sip.myPort

    @property
    def media_clock(self) -> MediaEngine:
        """The 20 ms clock all calls' audio runs on (`add_ticker`/`remove_ticker`), e.g. for mixing."""
        return self._engine

    # ---- information for server.py

    def health(self) -> NodeHealth:
        sip = self._phone.sip
        state = "registered" if sip.registered else ("failed" if sip.registration_error else "unregistered")
        with self._lock:
            active = self._reserved
        return NodeHealth(registration=state, registration_error=sip.registration_error, active_calls=active,
                          capacity=self.settings.max_calls, malformed_sip_datagrams=sip.malformed_datagrams,
                          foreign_sip_datagrams=sip.foreign_datagrams, media_ticks_late=self._engine.ticks_late,
                          media_ticks_skipped=self._engine.ticks_skipped,
                          media_frames_skipped=self._engine.frames_skipped, registrations=sip.registrations)

    def active_calls(self) -> list[CallRecord]:
        """Snapshot of calls in progress (digits so far included)."""
        with self._lock:
            entries = list(self._active.values())
        return [self._snapshot(session, record) for session, record in entries]

    def recent_calls(self) -> list[CallRecord]:
        """Finished calls, oldest first (the last RECENT_RECORDS_KEPT)."""
        with self._lock:
            return list(self._recent)

    # ---- incoming calls

    def _admit(self) -> bool:
        with self._lock:
            if not self._started or self._reserved >= self.settings.max_calls:
                return False
            self._reserved += 1
            return True

    def _release_slot(self) -> None:
        with self._lock:
            self._reserved -= 1

    def _refused(self, call: IvrCall | None) -> None:
        """An admitted INVITE could not be set up (the phone answered 500): give its slot back, and forget
        the session the media factory may have made for it."""
        with self._lock:
            if call is not None:
                self._active.pop(call.call_id, None)
            self._reserved -= 1

    def _make_stream(self, call: IvrCall, codec: str, dtmf_pt: int | None, sock: socket.socket,
                     remote: tuple[str, int]) -> MediaStream:
        """Build the call's session and its media stream, wired to each other."""
        headers = call.request.headers
        inbound = call.state == CallState.RINGING
        caller = headers["From"]["number"] if inbound else self.settings.extension
        called = headers["To"]["number"]
        session = CallSession(uuid.uuid4().hex, caller, called, codec, outgoing=None,
                              hangup=lambda: self._hangup(call), sip_call_id=call.call_id)
        stream = MediaStream(sock, remote, codec, dtmf_pt, on_frame=session.deliver_frame,
                             on_digit=session.deliver_digit, on_closed=session.mark_ended,
                             on_output_low=session.output_low)
        session.attach_output(stream)
        call.session = session
        record = CallRecord(session.call_id, "inbound" if inbound else "outbound", caller, called, codec,
                            session.started_at, sip_call_id=call.call_id)
        session.on_end(lambda s: self._mark_ended_by(record, "caller"))
        with self._lock:
            self._active[session.call_id] = (session, record)
        return stream

    @staticmethod
    def _mark_ended_by(record: CallRecord, who: Literal["caller", "ivr"]) -> None:
        if record.ended_by is None:
            record.ended_by = who

    def _hangup(self, call: IvrCall) -> None:
        with self._lock:
            entry = self._active.get(call.session.call_id) if call.session is not None else None
        if entry is not None:
            self._mark_ended_by(entry[1], "ivr")
        call.hangup()  # BYE, and the stream closes (which marks the session ended); nothing if over already

    def _incoming(self, call: IvrCall) -> None:
        session = call.session
        assert session is not None  # the media factory made it with the call
        session.mark_answered()
        self._run_application(call, session, self.on_call)

    def _run_application(self, call: IvrCall, session: CallSession,
                         application: Callable[[CallSession], None] | None) -> None:
        thread = threading.Thread(target=self._application_thread, args=(call, session, application),
                                  name=f"ivr-call-{session.call_id[:12]}", daemon=True)
        with self._lock:
            self._threads.add(thread)
        try:
            thread.start()
        except RuntimeError as exc:  # no thread to be had: the call cannot be served, but its slot comes back
            log.error("call %s: no thread for the application: %s", call.call_id, exc)
            with self._lock:
                self._threads.discard(thread)
            self._end_call(call, session, f"{type(exc).__name__}: {exc}")

    def _application_thread(self, call: IvrCall, session: CallSession,
                            application: Callable[[CallSession], None] | None) -> None:
        error = None
        try:
            if application is not None:
                application(session)
        except CallEnded:
            pass
        except Exception as exc:
            log.exception("application failed on call %s", session.call_id)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._end_call(call, session, error)
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _end_call(self, call: IvrCall, session: CallSession, error: str | None) -> None:
        """Hang up (if still up) and return the slot: whatever the hang-up throws, the slot comes back."""
        try:
            session.hangup()
        except Exception:
            log.exception("hang-up failed on call %s", call.call_id)
        self._finish(call, session, error)

    def _finish(self, call: IvrCall, session: CallSession, error: str | None) -> None:
        with self._lock:
            _, record = self._active.pop(session.call_id, (session, None))
            self._reserved -= 1
        if record is None:
            return
        record = self._snapshot(session, record)
        record.error = error
        with self._lock:
            self._recent.append(record)
        if self.on_record is not None:
            try:
                self.on_record(record)
            except Exception:
                log.exception("on_record hook failed for call %s", session.call_id)

    @staticmethod
    def _snapshot(session: CallSession, record: CallRecord) -> CallRecord:
        return replace(record, started_at=session.started_at, answered_at=session.answered_at,
                       ended_at=session.ended_at, digits=session.digits_received,
                       recording_path=session.recording_path, details=dict(session.details))

    # ---- outgoing calls

    def dial(self, number: str, timeout: float = 30.0, *, codec: str = "PCMU",
             on_call: Callable[[CallSession], None] | None = None,
             cancel: threading.Event | None = None) -> DialResult:
        """Call `number` and wait up to `timeout` s for an answer.

        answered → the session (the caller drives it; hang up when done, or pass `on_call` to run it in the
        node's thread like an incoming call); busy → 486/600; no_answer → timeout (the INVITE is cancelled)
        or 408/480/487; failed → any other status, or the server could not be reached. Setting `cancel`
        while it rings CANCELs the INVITE at once (no_answer, or answered if the answer crossed it).
        """
        if not self._admit():
            return DialResult("failed", None)
        try:
            call = self._phone.dial(number, codec)
        except Exception as exc:
            self._release_slot()
            log.warning("dial %s failed: %s", number, exc)
            return DialResult("failed", None)
        if not self._wait_final(call, timeout, cancel):
            self._phone.cancel(call)
            if not call.final_event.wait(2.0):  # the 487 normally follows the CANCEL
                self._phone.abandon_dial(call)
        status = call.final_status
        if status == 200 and call.state == CallState.ANSWERED:
            session = call.session
            assert session is not None
            session.mark_answered()
            self._run_application(call, session, on_call or _wait_until_ended)
            return DialResult("answered", session, 200)
        self._release_slot()
        with self._lock:
            if call.session is not None:  # the stream was built for an answer that did not complete
                self._active.pop(call.session.call_id, None)
        if status is None or status in NO_ANSWER_STATUSES:
            return DialResult("no_answer", None, status)
        return DialResult("busy" if status in BUSY_STATUSES else "failed", None, status)

    @staticmethod
    def _wait_final(call: IvrCall, timeout: float, cancel: threading.Event | None) -> bool:
        """Wait for the INVITE's final response; False after `timeout` or once `cancel` is set."""
        if cancel is None:
            return call.final_event.wait(timeout)
        deadline = time.monotonic() + timeout
        while not call.final_event.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or cancel.is_set():
                return False
            call.final_event.wait(min(remaining, CANCEL_CHECK_SECONDS))
        return True


def _wait_until_ended(session: CallSession) -> None:
    """Default 'application' of an answered outbound call: the dialler drives the session; keep it open."""
    while not session.wait_ended(1.0):
        pass
