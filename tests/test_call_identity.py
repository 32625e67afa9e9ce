"""Our own call ids (issue 8, finding 3), through server.py, the real Kamailio and real RTP.

A SIP Call-ID is chosen by the caller: plain pyVoIP repeats them (a hash of a counter and the phone's
address), and any client may send any. The node gives every call its own id (uuid4 at answer) and keys
tickets, recordings and call records on it; the SIP Call-ID stays a SIP detail. Here two callers send one
Call-ID on a flow that asks for a number by keypad, opens a ticket and reads its number back: each ends with
a ticket of its own and hears its own number. (On commit 76d7743 the second caller's answer overwrote the
first caller's ticket and the second caller heard the first's number.)
"""
from __future__ import annotations

import configparser
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from callflows.prompts import PromptLibrary
from callflows.templates import render
from ivr.local_sip_server import free_udp_port
from ivr.softphone.audio import similarity
from ivr.softphone.phone import Softphone
from pcm import SAMPLE_RATE, SAMPLE_WIDTH, read_wav
from tests.test_server import ADMIN_TOKEN, free_tcp_port, running_server, write_config
from tts import PromptSynthesizer

pytestmark = [pytest.mark.sip, pytest.mark.vosk]  # the server loads the speech models at start

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MATCH = 0.8  # same audio through G.711 scores > 0.95 (see ivr.softphone.audio.similarity)
READ_BACK = "민원 번호는 {ticket_number:digits}입니다."
FLOW = f"""\
description: one answer by keypad, a ticket, its number read back
languages: [ko]
default_language: ko
start: ask_choice
operator: {{digit: "0", node: bye}}
on_failure: bye
draft:
  choice: content
nodes:
  ask_choice:
    kind: collect
    prompt: {{ko: 번호를 누르고 우물 정자를 누르십시오.}}
    var: choice
    max_length: 4
    timeout: 20
    next: create
  create:
    kind: ticket
    action: create
    fields: {{language: ko}}
    next: read_back
    on_error: bye
  read_back:
    kind: play
    prompt: {{ko: "{READ_BACK}"}}
    barge_in: false
    next: bye
  bye:
    kind: hangup
"""


class Node:
    def __init__(self, api: str, sip_port: int, prompt_cache: Path, log: Path) -> None:
        self.api = api
        self.sip_port = sip_port
        self.log = log
        self.prompts = PromptLibrary(PromptSynthesizer(prompt_cache))  # the server's cache: the same audio

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def get(self, path: str, **params) -> httpx.Response:
        return httpx.get(f"{self.api}{path}", params=params, headers=AUTH, timeout=10)

    def read_back(self, number: str) -> bytes:
        return read_wav(self.prompts.text(render(READ_BACK, {"ticket_number": number}, "ko"), "ko"))


def parting(own: bytes, other: bytes, lead_seconds: float = 0.1) -> tuple[bytes, bytes]:
    """Both read-backs from just before the first sample where they differ: the two numbers share every
    digit but the last ones, so the whole prompts sound alike (~0.9); from there on they do not."""
    a, b = np.frombuffer(own, "<i2"), np.frombuffer(other, "<i2")
    shared = min(a.size, b.size)
    first_difference = int(np.argmax(a[:shared] != b[:shared])) if (a[:shared] != b[:shared]).any() else shared
    start = max(0, first_difference - int(lead_seconds * SAMPLE_RATE)) * SAMPLE_WIDTH
    return own[start:], other[start:]


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[Node]:
    tmp_path = tmp_path_factory.mktemp("identity")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "identity.yaml").write_text(FLOW, encoding="utf-8")
    sip_port = free_udp_port()
    config_path = write_config(tmp_path, sip_port, free_tcp_port())
    config = configparser.ConfigParser(interpolation=None)
    config.read(config_path, encoding="utf-8")
    config["callflows"].update({"flow": "identity", "flows_dir": str(tmp_path / "flows")})
    config["callbacks"] = {"enabled": "no"}  # this flows folder holds the identity flow only
    with config_path.open("w", encoding="utf-8") as file:
        config.write(file)
    with running_server(config_path, tmp_path / "server.log") as api:
        yield Node(api, sip_port, tmp_path / "prompts", tmp_path / "server.log")


def test_two_callers_reusing_one_sip_call_id_get_a_ticket_each_and_hear_their_own_number(node: Node):
    shared_call_id = f"{uuid.uuid4().hex}@127.0.0.1"
    sip_call_ids, heard, summaries = [], {}, {}
    for extension, digits in (("1001", "1111"), ("1002", "2222")):
        with Softphone("127.0.0.1", node.sip_port, extension, f"test{extension}") as phone:
            phone.voip.sip.gen_call_id = lambda: shared_call_id  # registered already: only the INVITE uses it
            call = phone.dial("12345")
            assert call.wait_answered(30), (call.summary(), node.log_tail())
            assert call.wait_for_audio(0.3, timeout=30), node.log_tail()  # the question plays: type ahead
            call.send_dtmf(digits + "#")
            assert call.wait_ended(90), f"the IVR did not read the number back and hang up\n{node.log_tail()}"
            sip_call_ids.append(call.call_id)
            heard[extension] = call.heard(keep_gaps=False)  # what it said: a stall of the IVR's clock is no failure
            summaries[extension] = call.summary()  # its media counters say why, should a match fail
    assert sip_call_ids == [shared_call_id, shared_call_id]

    tickets = {t["content"]: t for t in node.get("/tickets", page_size=200).json()["items"]}
    assert set(tickets) == {"1111", "2222"}, (tickets, node.log_tail())  # two tickets, neither overwritten
    first, second = tickets["1111"], tickets["2222"]
    assert first["number"] != second["number"]
    assert (first["phone"], second["phone"]) == ("1001", "1002")
    assert not first["is_draft"] and not second["is_draft"]
    for extension, own, other in (("1001", first, second), ("1002", second, first)):
        own_audio, other_audio = parting(node.read_back(own["number"]), node.read_back(other["number"]))
        own_match, other_match = similarity(heard[extension], own_audio), similarity(heard[extension], other_audio)
        assert own_match.similarity >= MATCH > other_match.similarity, (extension, own_match, other_match,
                                                                         summaries[extension],
                                                                         node.get("/health").json())

    records = [r for r in node.get("/calls", state="ended").json()["ended"] if r["sip_call_id"] == sip_call_ids[0]]
    assert len(records) == 2
    ours = {r["caller"]: r["call_id"] for r in records}
    assert all(re.fullmatch(r"[0-9a-f]{32}", call_id) for call_id in ours.values())
    assert (ours["1001"], ours["1002"]) == (first["call_id"], second["call_id"])
    paths = {r["recording_path"] for r in records}
    assert len(paths) == 2 and all(r["call_id"] in r["recording_path"] for r in records)
