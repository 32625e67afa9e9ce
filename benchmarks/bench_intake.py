"""Whole 12345 intakes at once, as callers feel them: N simultaneous Korean callers scripted with the
softphone through Kamailio against server.py (flow hotline12345, real Vosk, SQLite), all speaking at about
the same moments.

    .venv/bin/python benchmarks/bench_intake.py --calls 4,8,12,30
    .venv/bin/python benchmarks/bench_intake.py --calls 12 --speech-capacity 4     # see the overload path
    .venv/bin/python benchmarks/bench_intake.py --calls 12 --cold                  # calls during the warm-up

For each N: a fresh server.py (its own Kamailio, database and prompt cache; prompts synthesised once into
var/bench-intake/prompts and reused); the calls start once the node has warmed its free-speech recognisers
(/api/health `speech.warm_idle` at asr's `warm_recognizers`: a node's start-up, not its capacity; the time
it took is printed), or at once with --cold; N test extensions (each caller its own number, so its ticket is found
by the callback number), and N callers started together. Each caller, driven by what it hears (the heads of
the server's own cached prompts, by cross-correlation): presses 2 (Korean) during the greeting, states one of
several requests when asked (by speech, or into the recorder when it is the keypad version of the question),
presses 1 at the type confirmation or type menu, says a name and an address, presses 1 to be called back on
its own number, and waits for the goodbye.

Printed per N (one JSON line): how many calls ended with
- a complete ticket: submitted, with the request as recognised text;
- a keypad ticket: submitted, the request only recorded (served on keys);
- an operator transfer (the draft marked incomplete "transferred to <operator seat> ..." or hung up at the
  operator-busy goodbye); and anything else (a draft left otherwise, caller-side failures: a prompt not
  heard in time...);
and, in `reasons`, why each call that is not complete ended as it did: for a keypad ticket, whether the
caller was refused a recogniser (at capacity, or audio already waiting too long) or an answer's words were
not in within the wait (from the server's log lines for the call); for a draft, its incomplete reason as
the server wrote it (which says the question that failed when one sent the caller to the operator); for a
caller-side failure, the caller's error and the prompts it had heard. Plus the recognisers' peak backlog
(frames and seconds of audio waiting) and longest wait, streams refused, from /api/health, and the run's
wall time. Speed is measured here, never asserted.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import wave
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asr import AsrSettings  # noqa: E402
from callflows.bundle import load_bundle  # noqa: E402
from callflows.templates import render  # noqa: E402
from ivr.local_sip_server import free_udp_port  # noqa: E402
from ivr.softphone.audio import similarity, synthesize  # noqa: E402
from ivr.softphone.phone import Softphone  # noqa: E402
from tts import PromptSynthesizer  # noqa: E402

RATE = 8000
WORK = ROOT / "var" / "bench-intake"
ADMIN = "bench-intake-admin-token"
MATCH = 0.75
OPERATOR_SEAT = "8000"  # not registered: a transfer there fails and the caller hears the operator-busy goodbye
HEAD_SECONDS = 1.2
REQUESTS = ["수도 단수 민원입니다. 우리 집이 사흘째 단수입니다.", "아파트 앞 도로에 큰 구멍이 있어요. 빨리 고쳐 주세요.",
            "가로등이 고장나서 밤에 너무 어둡습니다.", "옆집 공사 소음 때문에 잠을 잘 수 없어요.",
            "쓰레기가 일주일째 수거되지 않았습니다.", "난방이 안 들어와서 집이 너무 춥습니다."]
NAMES = ["김철수", "이영희", "박민수", "최지원"]
ADDRESSES = ["연길시 건설가 오번지", "연길시 하남가 십번지", "용정시 중앙로 삼번지"]


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Prompts:
    """Heads of the prompts the caller reacts to, from the server's own prompt cache (same audio)."""

    def __init__(self, cache: Path) -> None:
        synthesizer = PromptSynthesizer(cache)
        bundle = load_bundle(ROOT / "callflows" / "flows" / "hotline12345.yaml")
        flow = bundle.flows["hotline12345"]

        def head(node: str, key: str = "prompt") -> bytes | None:
            prompt = getattr(flow.nodes.get(node), key, None)
            if prompt is None or "ko" not in prompt.texts:
                return None  # not a prompt node in this version of the flow
            text = render(prompt.texts["ko"], {}, "ko", bundle.labels_for(flow))
            with wave.open(str(synthesizer.synthesize(text, "ko"))) as wav:
                return wav.readframes(wav.getnframes())[: int(HEAD_SECONDS * RATE) * 2]

        wanted = {"ask_request": ("ask_request", "prompt"), "ask_request_keys": ("ask_request", "keypad_prompt"),
                  "type_menu": ("type_menu", "prompt"), "ask_confidential": ("ask_confidential", "prompt"),
                  "ask_name": ("ask_name", "prompt"),
                  "ask_address": ("ask_address", "prompt"), "again": ("ask_request", "invalid"),
                  "no_input": ("ask_request", "no_input"), "operator": ("operator", "prompt"),
                  "operator_busy": ("operator_busy", "prompt"), "goodbye": ("goodbye", "prompt")}
        heads = {name: head(node, key) for name, (node, key) in wanted.items()}
        self.heads = {name: audio for name, audio in heads.items() if audio}

    def which(self, heard: bytes) -> str | None:
        scores = {name: similarity(heard, audio).similarity for name, audio in self.heads.items()}
        name = max(scores, key=scores.get)
        return name if scores[name] >= MATCH else None


class Caller(threading.Thread):
    """One scripted caller; `outcome` is set on the way (and from the ticket afterwards)."""

    def __init__(self, phone: Softphone, number: str, prompts: Prompts, speech: dict[str, bytes], n: int) -> None:
        super().__init__(name=f"caller-{number}", daemon=True)
        self.phone, self.number, self.prompts, self.speech = phone, number, prompts, speech
        self.request = REQUESTS[n % len(REQUESTS)]
        self.name_said, self.address = NAMES[n % len(NAMES)], ADDRESSES[n % len(ADDRESSES)]
        self.steps: list[str] = []
        self.error = ""

    def run(self) -> None:
        try:
            self._script()
        except Exception as exc:  # the caller's own failure is an outcome, not a crash of the benchmark
            self.error = f"{type(exc).__name__}: {exc}"

    def _script(self) -> None:
        call = self.phone.dial("12345")
        if not call.wait_answered(60):
            self.error = "not answered"
            return
        self.call = call
        if not call.wait_for_audio(0.3, timeout=60):
            self.error = "no greeting"
            return
        call.send_dtmf("2")
        mark, last_answer, deadline = 0.0, None, time.monotonic() + 420
        while not call.ended and time.monotonic() < deadline:
            heard = call.heard()
            start = int(mark * RATE) * 2
            if len(heard) - start < int((HEAD_SECONDS + 0.3) * RATE) * 2:
                time.sleep(0.25)
                continue
            prompt = self.prompts.which(heard[start:])
            if prompt is None:
                # Prompts whose text depends on the call (the proposed type, the caller's number) are known
                # by where they come: after the request the type confirmation (1 = yes), after the address
                # the callback choice (1 = this number).
                follow_up = {"request": "type", "request_keys": "type", "ask_address": "callback"}
                step = follow_up.get(self.steps[-1] if self.steps else "")
                if step and self._voiced_since(heard, start) > 2.5:
                    call.send_dtmf("1")
                    self.steps.append(step)
                    mark = len(call.heard()) / 2 / RATE
                time.sleep(0.25)
                continue
            self.steps.append(prompt)
            mark = len(call.heard()) / 2 / RATE
            if prompt in ("ask_request", "ask_request_keys"):
                last_answer = self.speech[self.request]
                self.steps[-1] = "request" if prompt == "ask_request" else "request_keys"
            elif prompt == "type_menu":
                call.send_dtmf("1")
                self.steps[-1] = "type"
                continue
            elif prompt == "ask_confidential":  # a complaint: not kept confidential
                call.send_dtmf("2")
                continue
            elif prompt == "ask_name":
                last_answer = self.speech[self.name_said]
            elif prompt == "ask_address":
                last_answer = self.speech[self.address]
            elif prompt in ("again", "no_input"):
                pass  # say the last answer again
            else:  # operator, operator_busy, goodbye: the IVR ends the call
                call.wait_ended(120)
                break
            if last_answer is not None:
                call.play(last_answer, wait=True)
                mark = len(call.heard()) / 2 / RATE
        if not call.ended:
            call.hangup()

    @staticmethod
    def _voiced_since(heard: bytes, start: int) -> float:
        """Seconds of prompt audio after the first pause (0.8 s quiet) since `start`: the tail of the
        question the caller answered over is not the next prompt."""
        samples = np.frombuffer(heard[start: start + (len(heard) - start) // 320 * 320], dtype="<i2")
        loud = np.sqrt(np.mean(samples.astype(np.float64).reshape(-1, 160) ** 2, axis=1)) > 300 \
            if samples.size else np.zeros(0, dtype=bool)
        quiet_run = 0
        for index, is_loud in enumerate(loud):
            quiet_run = 0 if is_loud else quiet_run + 1
            if quiet_run >= 40:
                return float(loud[index:].sum()) * 0.02
        return 0.0


def start_server(work: Path, numbers: list[str], speech_capacity: float) -> tuple[subprocess.Popen, str, int]:
    sip_port, http_port = free_udp_port(), free_tcp_port()
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "sip.conf.example", encoding="utf-8")
    config["sip"].update({"registrar_port": str(sip_port), "max_calls": str(len(numbers) + 10)})
    config["server"].update({"http_port": str(http_port), "database_url": f"sqlite:///{work / 'tickets.sqlite3'}",
                             "recordings_dir": str(work / "recordings"),
                             "prompt_cache_dir": str(WORK / "prompts"), "admin_token": ADMIN})
    config["callflows"].update({"flow": "hotline12345", "speech_capacity": str(speech_capacity),
                                "operator_seat": OPERATOR_SEAT})
    config["test_extensions"] = {number: f"pw{number}" for number in numbers}
    path = work / "sip.conf"
    with path.open("w", encoding="utf-8") as file:
        config.write(file)
    log = open(work / "server.log", "wb")
    server = subprocess.Popen([sys.executable, str(ROOT / "server.py"), "--config", str(path)], cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{http_port}/api"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{api}/health", timeout=2).json()["registration"] == "registered":
                return server, api, sip_port
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.kill()
    raise RuntimeError(f"server.py did not start: see {work / 'server.log'}")


ON_KEYS_BECAUSE = {"speech recognisers at capacity": "refused a recogniser (at capacity or lagging)",
                   "recognition did not finish in time": "an answer's words not in within the wait"}


def why_on_keys(server_log: str, call_id: str) -> str:
    """Why the server served this call on keys: the first of its log lines that says so."""
    for line in server_log.splitlines():
        if f"call {call_id}: " in line:
            for words, reason in ON_KEYS_BECAUSE.items():
                if words in line:
                    return reason
    return "served on keys, the server's log does not say why"


def classify(ticket: dict | None, caller: Caller, operator_seat: str, server_log: str) -> tuple[str, str]:
    """(outcome, why) for one caller; `why` is empty for a complete ticket."""
    heard = f"heard: {', '.join(caller.steps) or 'nothing'}"
    if caller.error:
        return "caller failed", f"{caller.error}; {heard}"
    if ticket is None:
        return "no ticket", heard
    if not ticket["is_draft"]:
        if ticket["content"].strip():
            return "complete ticket", ""
        return "keypad ticket", why_on_keys(server_log, ticket["call_id"])
    reason = ticket.get("incomplete_reason") or "no reason written"
    if f"transferred to {operator_seat} " in reason or ":busy_" in reason or "operator" in caller.steps:
        return "operator transfer", reason
    return "draft", reason


def wait_warm(api: str, timeout: float = 300) -> tuple[int, float]:
    """Wait until the node's recognisers are all warm (its start-up's warm-up done): (warm, seconds waited)."""
    wanted, started = AsrSettings().warm_recognizers, time.monotonic()
    warm = 0
    while time.monotonic() - started < timeout:
        warm = httpx.get(f"{api}/health", timeout=10).json().get("speech", {}).get("warm_idle", 0)
        if warm >= wanted:
            break
        time.sleep(0.5)
    return warm, round(time.monotonic() - started, 1)


def run_round(calls: int, speech_capacity: float, cold: bool) -> dict:
    work = WORK / f"run-{os.getpid()}-{calls}"
    work.mkdir(parents=True, exist_ok=True)
    numbers = [str(2001 + n) for n in range(calls)]
    server, api, sip_port = start_server(work, numbers, speech_capacity)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    try:
        warm, warm_wait = (None, 0.0) if cold else wait_warm(api)
        prompts = Prompts(WORK / "prompts")
        speech = {text: synthesize(text, "ko") for text in REQUESTS + NAMES + ADDRESSES}
        phones = [Softphone("127.0.0.1", sip_port, number, f"pw{number}") for number in numbers]
        for phone in phones:
            phone.start()
        health = httpx.get(f"{api}/health", timeout=10).json()
        refused_before = health.get("speech", {}).get("refused", 0)
        callers = [Caller(phone, number, prompts, speech, n) for n, (phone, number) in enumerate(zip(phones, numbers))]
        started = time.monotonic()
        peak = {"backlog_frames": 0, "lag_seconds": 0.0, "load": 0.0}
        for caller in callers:
            caller.start()
        while any(caller.is_alive() for caller in callers):
            state = httpx.get(f"{api}/health", timeout=10).json().get("speech", {})
            peak = {"backlog_frames": max(peak["backlog_frames"], state.get("backlog_frames", 0)),
                    "lag_seconds": max(peak["lag_seconds"], state.get("lag_seconds", 0.0)),
                    "load": max(peak["load"], state.get("load", 0.0))}
            time.sleep(0.5)
        wall = time.monotonic() - started
        time.sleep(2)  # the last drafts are marked incomplete as the calls wind up
        final = httpx.get(f"{api}/health", timeout=10).json().get("speech", {})
        tickets = httpx.get(f"{api}/tickets", params={"page_size": 200}, headers=headers, timeout=30).json()["items"]
        by_phone = {}
        for ticket in tickets:
            by_phone.setdefault(ticket.get("phone") or "", ticket)
        by_call = {ticket["call_id"]: ticket for ticket in tickets}
        outcomes, reasons = Counter(), Counter()
        server_log = (work / "server.log").read_text(encoding="utf-8", errors="replace")
        for caller in callers:
            call_id = getattr(getattr(caller, "call", None), "call_id", None)
            ticket = by_phone.get(caller.number) or by_call.get(call_id)
            outcome, why = classify(ticket, caller, OPERATOR_SEAT, server_log)
            outcomes[outcome] += 1
            if why:
                reasons[f"{outcome}: {why}"] += 1
        for phone in phones:
            phone.stop()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    return {"calls": calls, "speech_capacity": final.get("capacity"),
            "started": "cold (during the warm-up)" if cold else f"{warm} recognisers warm after {warm_wait} s",
            "outcomes": dict(outcomes),
            "complete": outcomes["complete ticket"], "keypad": outcomes["keypad ticket"],
            "operator": outcomes["operator transfer"],
            "other": calls - outcomes["complete ticket"] - outcomes["keypad ticket"] - outcomes["operator transfer"],
            "reasons": dict(reasons),
            "recognisers_peak_backlog_frames": max(peak["backlog_frames"], final.get("max_backlog_frames", 0)),
            "recognisers_peak_backlog_seconds": round(0.02 * max(peak["backlog_frames"],
                                                                 final.get("max_backlog_frames", 0)), 2),
            "recognisers_longest_wait_seconds": round(max(peak["lag_seconds"], final.get("max_lag_seconds", 0)), 2),
            "recognisers_peak_load": peak["load"], "streams_refused": final.get("refused", 0) - refused_before,
            "wall_seconds": round(wall, 1), "server_log": str(work / "server.log")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="4,8,12,30", help="comma-separated N values")
    parser.add_argument("--speech-capacity", type=float, default=0.0,
                        help="[callflows] speech_capacity for the server (0: its default)")
    parser.add_argument("--cold", action="store_true",
                        help="place the calls at once, without waiting for the node's recognisers to warm up")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f} at start", flush=True)
    for calls in (int(n) for n in args.calls.split(",")):
        print(json.dumps(run_round(calls, args.speech_capacity, args.cold), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
