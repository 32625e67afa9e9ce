"""Every call slot, RTP socket and call thread the IVR takes comes back, on every path a call can take
(issue 8 finding 2, and the other paths found on the way): an INVITE without Contact, an answer that
fails, our hang-up racing the caller's BYE, an offer with no common codec (488), a CANCEL before the
answer (487), a caller that never ACKs, a caller that goes silent without a BYE.

Raw SIP datagrams from the test, through the real Kamailio (or straight to the IVR's port where the point
is what the IVR does with a request Kamailio would refuse). After each path: the node's active count, the
process's open sockets and call threads are back at their baseline, and a normal call is still answered.
"""
from __future__ import annotations

import threading
import time

import pytest
from pyVoIP.VoIP import CallState

from ivr.sip import IvrCall
from tests.ivr.leaks import Baseline
from tests.ivr.raw_sip import RawRtp, RawSipEndpoint, SipMessage, new_token, sdp_offer

pytestmark = pytest.mark.sip

CALLER = "1017"
ROUNDS = 3  # the reproduction: three such INVITEs filled a node of three slots


class Caller:
    """A test extension speaking raw SIP through Kamailio, with its own RTP socket."""

    def __init__(self, sip_server, extension: str = CALLER) -> None:
        self.sip = RawSipEndpoint((sip_server.host, sip_server.port))
        self.rtp = RawRtp()
        self.extension = extension
        self.password = sip_server.password(extension)
        self.server = sip_server

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()

    def sdp(self, payload_types=(0, 8, 101), connection: str | None = None) -> str:
        return sdp_offer(*self.rtp.address, payload_types=payload_types, connection=connection)

    def call(self, number: str = "12345", **sdp_options):
        return self.sip.invite(number, user=self.extension, password=self.password, sdp=self.sdp(**sdp_options))

    def hang_up(self, dialog) -> SipMessage | None:
        cseq = self.sip.send_in_dialog(dialog, "BYE")
        return self.sip.final_response(dialog.call_id, cseq, "BYE")


@pytest.fixture
def caller(sip_server):
    made = Caller(sip_server)
    yield made
    made.close()


def holding_app(sessions: list):
    def on_call(session) -> None:
        sessions.append(session)
        session.wait_ended(60)
    return on_call


def assert_a_normal_call_works(caller: Caller, baseline: Baseline, node) -> None:
    final, dialog = caller.call()
    assert final is not None and final.status == 200, final and final.first_line
    response = caller.hang_up(dialog)
    assert response is not None and response.status == 200
    baseline.assert_back(node)


def test_invite_without_contact_is_refused_before_a_slot_is_taken(ivr_node_factory, caller):
    node = ivr_node_factory(holding_app([]), max_calls=ROUNDS)
    direct = RawSipEndpoint(("127.0.0.1", node.sip_port))  # Kamailio refuses these itself; the node must too
    try:
        baseline = Baseline()
        for _ in range(ROUNDS):
            call_id = new_token()
            direct.send(direct.request("INVITE", f"sip:12345@127.0.0.1:{node.sip_port}", from_user=CALLER,
                                       to_user="12345", call_id=call_id, cseq=1, from_tag=new_token(),
                                       contact=False, body=caller.sdp()))
            response = direct.final_response(call_id, 1, "INVITE", timeout=3)
            assert response is not None and (response.status, response.reason) == (400, "Missing Contact")
        baseline.assert_back(node)
        assert_a_normal_call_works(caller, baseline, node)
    finally:
        direct.close()


@pytest.mark.parametrize("drop,expected", [("Call-ID", None), ("tag", (400, "Missing From Tag")),
                                           ("CSeq", None), ("To", None)])
def test_an_invite_missing_what_a_dialog_needs_takes_no_slot(ivr_node_factory, caller, drop, expected):
    node = ivr_node_factory(holding_app([]), max_calls=1)
    direct = RawSipEndpoint(("127.0.0.1", node.sip_port))
    try:
        baseline = Baseline()
        call_id = new_token()
        text = direct.request("INVITE", f"sip:12345@127.0.0.1:{node.sip_port}", from_user=CALLER, to_user="12345",
                              call_id=call_id, cseq=1, from_tag=new_token(), body=caller.sdp())
        lines = text.split("\r\n")
        if drop == "tag":
            lines = [line.split(";tag=")[0] if line.startswith("From:") else line for line in lines]
        else:
            lines = [line for line in lines if not line.startswith(f"{drop}:")]
        direct.send("\r\n".join(lines))
        response = direct.receive(lambda m: m.is_response and m.status >= 200, timeout=1.5)
        assert (response.status, response.reason) == expected if expected else response is None
        baseline.assert_back(node)
        assert_a_normal_call_works(caller, baseline, node)  # max_calls=1: the one slot is free
    finally:
        direct.close()


def test_an_answer_that_fails_returns_500_and_gives_everything_back(ivr_node_factory, caller, monkeypatch):
    node = ivr_node_factory(holding_app([]), max_calls=ROUNDS)
    baseline = Baseline()

    def answer_fails(call) -> None:
        raise OSError("simulated: the 200 could not be sent")

    monkeypatch.setattr(IvrCall, "answer", answer_fails)
    for _ in range(ROUNDS):
        final, _ = caller.call()
        assert final is not None and final.status == 500, final and final.first_line
    baseline.assert_back(node)
    monkeypatch.undo()
    assert_a_normal_call_works(caller, baseline, node)


def test_our_hang_up_racing_the_callers_bye_gives_the_slot_back(ivr_node_factory, caller, monkeypatch):
    """The application returns and the node hangs up just as the caller's BYE arrives: the BYE is handled
    first (between the node deciding to hang up and the hang-up itself), so the hang-up finds the call
    ended already."""
    racing = threading.Event()
    racing.set()
    node = ivr_node_factory(lambda session: None if racing.is_set() else session.wait_ended(60),
                            max_calls=ROUNDS)
    baseline = Baseline()
    dialogs: list = []
    dialog_ready = threading.Event()
    byes_answered: list[int] = []
    original_hangup = IvrCall.hangup

    def hang_up_after_the_callers_bye(call) -> None:
        assert dialog_ready.wait(10), "the caller never got the 200"
        response = caller.hang_up(dialogs[-1])
        byes_answered.append(response.status if response else 0)
        deadline = time.monotonic() + 5
        while call.state != CallState.ENDED and time.monotonic() < deadline:
            time.sleep(0.01)
        original_hangup(call)

    monkeypatch.setattr(IvrCall, "hangup", hang_up_after_the_callers_bye)
    for round_ in range(ROUNDS):
        dialog_ready.clear()
        final, dialog = caller.call()
        assert final is not None and final.status == 200
        dialogs.append(dialog)
        dialog_ready.set()
        deadline = time.monotonic() + 10
        while len(byes_answered) <= round_ and time.monotonic() < deadline:
            time.sleep(0.05)
    assert byes_answered == [200] * ROUNDS
    baseline.assert_back(node)
    monkeypatch.undo()
    racing.clear()
    assert_a_normal_call_works(caller, baseline, node)


def test_an_offer_without_a_common_codec_is_488_and_leaks_no_socket(ivr_node_factory, caller):
    node = ivr_node_factory(holding_app([]), max_calls=ROUNDS)
    baseline = Baseline()
    for _ in range(ROUNDS):
        final, _ = caller.call(payload_types=(3, 18))  # GSM and G.729 only
        assert final is not None and (final.status, final.reason) == (488, "Not Acceptable Here")
        assert "no common codec" in (final.header("warning") or "")
    baseline.assert_back(node)
    assert_a_normal_call_works(caller, baseline, node)


def test_a_cancel_before_the_answer_is_487_and_gives_the_call_back(ivr_node_factory, caller, monkeypatch):
    sessions: list = []
    node = ivr_node_factory(holding_app(sessions), max_calls=ROUNDS)
    baseline = Baseline()
    monkeypatch.setattr(IvrCall, "answer", lambda call: None)  # the answer has not come yet
    uri = f"sip:12345@{caller.server.host}:{caller.server.port}"
    for _ in range(ROUNDS):
        invite, refused = caller.sip.send_authenticated("INVITE", uri, user=caller.extension,
                                                        password=caller.password, to_user="12345",
                                                        body=caller.sdp())
        assert refused is None, refused
        sent = SipMessage.parse(invite.encode(), ("", 0))
        ringing = caller.sip.receive(lambda m: m.is_response and m.status == 180 and m.call_id == sent.call_id)
        assert ringing is not None
        caller.sip.send(caller.sip.cancel_for(invite))
        cancelled = caller.sip.final_response(sent.call_id, sent.cseq[0], "CANCEL", timeout=3)
        final = caller.sip.final_response(sent.call_id, sent.cseq[0], "INVITE", timeout=3)
        assert cancelled is not None and cancelled.status == 200
        assert final is not None and (final.status, final.reason) == (487, "Request Terminated")
    baseline.assert_back(node)
    monkeypatch.undo()
    assert_a_normal_call_works(caller, baseline, node)


def test_a_caller_that_never_acks_is_hung_up_and_the_200_was_repeated(ivr_node_factory, caller):
    node = ivr_node_factory(holding_app([]), ack_timeout=2.0)
    baseline = Baseline()
    uri = f"sip:12345@{caller.server.host}:{caller.server.port}"
    final = caller.sip.authenticated("INVITE", uri, user=caller.extension, password=caller.password,
                                     to_user="12345", body=caller.sdp())  # and no ACK, no RTP
    assert final is not None and final.status == 200
    bye = caller.sip.request_received("BYE", final.call_id, timeout=6)
    assert bye is not None, "the IVR never gave up on the unacknowledged call"
    caller.sip.reply(bye, 200, "OK")
    repeats = [m for m in caller.sip.backlog if m.is_response and m.status == 200 and m.call_id == final.call_id]
    assert len(repeats) >= 2  # T1 = 0.5 s, then 1 s: at least two more copies before the 2 s time-out
    baseline.assert_back(node)
    assert_a_normal_call_works(caller, baseline, node)


def test_a_far_end_gone_silent_is_hung_up(ivr_node_factory, caller):
    node = ivr_node_factory(holding_app([]), media_timeout=2.0)
    baseline = Baseline()
    final, dialog = caller.call()
    assert final is not None and final.status == 200
    caller.rtp.send_silence(final.sdp_audio(), frames=10)  # then nothing: the phone lost its network
    bye = caller.sip.request_received("BYE", dialog.call_id, timeout=6)
    assert bye is not None, "the IVR kept a silent call"
    caller.sip.reply(bye, 200, "OK")
    baseline.assert_back(node)
