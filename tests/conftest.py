"""Fixtures shared across the suite: the real local SIP server (Kamailio on loopback, a free UDP port)
and simulated callers registered to it; and a ticket database migrated once per session, copied per test.

`sip_server` is session-scoped: one Kamailio for all SIP tests. An extension is registered from one device
at a time: a second device is refused (403) until the first de-registers, so every fixture here stops
(de-registers) what it registered, and tester extensions are handed out in turn.
"""

from __future__ import annotations

import itertools
import math
import secrets
import sqlite3
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from dataclasses import dataclass, field

import pytest

from ivr.local_sip_server import LocalSipServer

IVR_EXTENSION = "12345"
TESTER_EXTENSIONS = tuple(str(n) for n in range(1001, 1021))
# Handed out in turn to tests that need "some phone"; apart from the testers above, which tests name
# (a cycle over the named ones once gave a test's own softphone the extension its callee then could not register).
POOLED_EXTENSIONS = tuple(str(n) for n in range(1021, 1041))


@dataclass(frozen=True)
class SipServerInfo:
    """Where the test SIP server listens and which extensions (with their passwords) it accepts."""

    host: str
    port: int
    extensions: dict[str, str]
    ivr_extension: str
    tester_extensions: tuple[str, ...]
    pooled_extensions: tuple[str, ...]

    def password(self, extension: str) -> str:
        return self.extensions[extension]


@pytest.fixture(scope="session")
def sip_server() -> Iterator[SipServerInfo]:
    """Real Kamailio on 127.0.0.1:<free port> with 12345 (the IVR), the named testers 1001..1020 and the pooled
    1021..1040, random passwords."""
    extensions = {ext: secrets.token_hex(8) for ext in (IVR_EXTENSION, *TESTER_EXTENSIONS, *POOLED_EXTENSIONS)}
    with LocalSipServer(extensions, "127.0.0.1", port=0) as server:
        yield SipServerInfo(server.host, server.port, extensions, IVR_EXTENSION, TESTER_EXTENSIONS,
                            POOLED_EXTENSIONS)


@pytest.fixture(scope="session")
def _free_tester_extensions(sip_server: SipServerInfo) -> Iterator[str]:
    """Pooled extensions handed out in turn, so phones of consecutive tests do not replace each other and never
    take an extension a test names."""
    return itertools.cycle(sip_server.pooled_extensions)


@pytest.fixture
def softphone_factory(sip_server: SipServerInfo, _free_tester_extensions: Iterator[str]) -> Iterator[Callable]:
    """make(extension=None, password=None, *, answer=False, tone=None) -> a started (registered)
    ivr.softphone.Softphone (answering incoming calls with `answer`, a sine tone of `tone` Hz as its
    microphone); all stopped after."""
    from ivr.softphone import Softphone  # imported lazily: test suites without SIP do not need it

    phones: list[Softphone] = []

    def make(extension: str | None = None, password: str | None = None, *, answer: bool = False,
             tone: float | None = None) -> Softphone:
        extension = extension or next(_free_tester_extensions)
        phone = Softphone(sip_server.host, sip_server.port, extension,
                          password if password is not None else sip_server.password(extension),
                          answer=answer, tone=tone)
        phones.append(phone)
        phone.start()
        return phone

    yield make
    for phone in phones:
        phone.stop()


@pytest.fixture
def ivr_node_factory(sip_server: SipServerInfo) -> Iterator[Callable]:
    """make(on_call, extension=None, **options) -> a started ivr.node.IvrNode registered as `extension`
    (default the IVR's 12345); all stopped after the test."""
    from ivr.node import IvrNode

    nodes: list[IvrNode] = []

    def make(on_call: Callable, extension: str | None = None, **options) -> IvrNode:
        extension = extension or sip_server.ivr_extension
        node = IvrNode(sip_server.host, sip_server.port, extension, sip_server.password(extension),
                       on_call=on_call, local_ip="127.0.0.1", **options)
        node.start()
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.stop()


@pytest.fixture
def softphone(softphone_factory: Callable) -> object:
    """A simulated caller registered as a free tester extension of `sip_server`: softphone.dial("12345")."""
    return softphone_factory()


PYVOIP_CALLEE_TONE = bytes(int(128 + 60 * math.sin(2 * math.pi * 700 * i / 8000)) for i in range(16000))  # 8-bit


def _probing_voip_phone_class() -> type:
    """pyVoIP's phone, choosing RTP ports nobody has bound: pyVoIP draws a random port and only avoids its own,
    so beside other phones (our engines, another test process) it could draw a taken one and fail to bind."""
    from pyVoIP.VoIP import VoIPPhone

    class ProbingVoIPPhone(VoIPPhone):
        def request_port(self, blocking: bool = True) -> int:
            while True:
                port = super().request_port(blocking)  # kept in assignedPorts either way: never drawn again
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                    try:
                        probe.bind((self.myIP, port))
                    except OSError:
                        continue
                return port

    return ProbingVoIPPhone


class PyVoipCallee:
    """A plain pyVoIP phone (a SIP stack we did not write) that answers, plays a 2 s 700 Hz tone, and keeps
    the digits (decoded by pyVoIP's own RFC 2833 parser) and the audio it received."""

    def __init__(self, sip_server: SipServerInfo, extension: str, hangup_after: float | None = None) -> None:
        from ivr.local_sip_server import free_udp_port

        self.digits = ""
        self.audio = b""  # pyVoIP's 8-bit unsigned samples
        self.ended = threading.Event()
        self.hangup_after = hangup_after
        self.phone = _probing_voip_phone_class()(sip_server.host, sip_server.port, extension, sip_server.password(extension),
                               myIP="127.0.0.1", sipPort=free_udp_port(), rtpPortLow=40000, rtpPortHigh=49000,
                               callCallback=self._answer)

    def _answer(self, call) -> None:
        from pyVoIP.VoIP import CallState

        call.answer()
        call.write_audio(PYVOIP_CALLEE_TONE)
        if self.hangup_after is not None:
            time.sleep(self.hangup_after)
            if call.state == CallState.ANSWERED:  # the caller may have hung up first
                call.hangup()
        while call.state == CallState.ANSWERED:
            self.audio += call.read_audio(160, blocking=True)  # pyVoIP skips pure silence in blocking reads
        self.digits = call.get_dtmf(10)
        self.ended.set()


@pytest.fixture
def pyvoip_callee(sip_server: SipServerInfo) -> Iterator[Callable]:
    """make(extension, hangup_after=None) -> a registered PyVoipCallee answering calls to `extension`."""
    made: list[PyVoipCallee] = []

    def make(extension: str, hangup_after: float | None = None) -> PyVoipCallee:
        callee = PyVoipCallee(sip_server, extension, hangup_after)
        made.append(callee)
        callee.phone.start()
        return callee

    yield make
    for callee in made:
        callee.phone.stop()


# ---------------------------------------------------------------------------------------------------------
# The real IVR node registered as 12345 on `sip_server`, running a probe application on the session contract.

GREETING_TEXT = "Welcome to the twelve three four five city hotline. Please enter your choice."


@dataclass
class IvrSideCall:
    """What the IVR application saw of one call."""

    caller: str = ""
    codec: str = ""
    digits: str = ""
    heard: bytearray = field(default_factory=bytearray)  # the caller's audio, from the session's tap
    greeting_done: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    ended_at: float | None = None
    hung_up_at: float | None = None
    error: BaseException | None = None


class IvrProbeApp:
    """on_call for the node: greet, collect up to 3 digits ending with #, then hang up (when `hang_up` is
    set) or listen until the caller leaves. Everything it sees is kept in `calls` for assertions."""

    def __init__(self, greeting: bytes) -> None:
        self.greeting = greeting
        self.calls: list[IvrSideCall] = []
        self.hang_up = False
        self.new_call = threading.Event()

    def on_call(self, session) -> None:
        from ivr.session import CallEnded

        seen = IvrSideCall(caller=session.caller, codec=session.codec)
        self.calls.append(seen)
        self.new_call.set()
        session.add_tap(seen.heard.extend)
        try:
            session.play(self.greeting, barge_in=False)
            seen.greeting_done.set()
            seen.digits = session.collect_digits(max_digits=3, first_digit_timeout=15, inter_digit_timeout=5,
                                                 terminator="#")
            if self.hang_up:
                time.sleep(0.5)
                seen.hung_up_at = time.monotonic()
                session.hangup()
            else:
                while not session.ended:
                    session.read_frame(timeout=0.5)
        except CallEnded:
            pass
        except BaseException as exc:  # surfaced by the tests, never swallowed
            seen.error = exc
        finally:
            seen.ended_at = time.monotonic()
            seen.ended.set()


@pytest.fixture(scope="session")
def greeting() -> bytes:
    """The probe IVR's greeting, synthesised by espeak-ng (8 kHz 16-bit PCM)."""
    from ivr.softphone.audio import synthesize

    return synthesize(GREETING_TEXT)


@pytest.fixture
def ivr(ivr_node_factory: Callable, greeting: bytes) -> Iterator[IvrProbeApp]:
    """ivr.node.IvrNode registered as 12345 running IvrProbeApp; yields the app (its `calls`)."""
    app = IvrProbeApp(greeting)
    ivr_node_factory(app.on_call)
    yield app


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session (a migration costs about a second; tests copy it)."""
    path = tmp_path_factory.mktemp("migrated") / "tickets.sqlite3"
    from tickets import db  # imported lazily like the SIP parts: suites without tickets do not need it

    db.upgrade(f"sqlite:///{path}")
    return path


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a SQLite database with its own backup API (consistent whatever its journal mode left beside it)."""
    with closing(sqlite3.connect(source)) as original, closing(sqlite3.connect(target)) as copy:
        original.backup(copy)
