"""Satisfaction callbacks (回访) placed per minute by one node at its configured concurrency.

    .venv/bin/python benchmarks/bench_callbacks.py --calls 20 --concurrency 2,4

For each concurrency C: a local Kamailio, one IVR node with the callback dialler (app.callbacks, the shipped
callback flow, the real prompts, recordings and endpointer), a ticket database on SQLite with `--calls`
replied tickets, and as many answering softphones as tickets (in this process), each the citizen of one
ticket: it answers, presses 1 while the reply is read, and stays until the IVR hangs up. The dialler's
rounds run every `--poll` seconds with at most C calls at once. Printed per C (one JSON line): callbacks
completed (satisfied, ticket closed), other outcomes, wall time from the first round to the last outcome,
callbacks per minute, the mean seconds a call lasted (the flow reads the whole reply: this bounds the rate
at about C * 60 / call seconds), and the machine's load. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asr  # noqa: E402
from app.adapters.calendar_adapter import DatabaseCalendar  # noqa: E402
from app.adapters.recordings_adapter import WavRecordings  # noqa: E402
from app.adapters.speech_adapter import VoskSpeech  # noqa: E402
from app.adapters.tickets_adapter import DatabaseTickets  # noqa: E402
from app.callbacks import CallbackDialler  # noqa: E402
from app.config import CallbackSettings  # noqa: E402
from callflows.bundle import load_bundle  # noqa: E402
from callflows.interpreter import CallServices  # noqa: E402
from callflows.prompts import PromptLibrary  # noqa: E402
from ivr.local_sip_server import LocalSipServer  # noqa: E402
from ivr.node import IvrNode  # noqa: E402
from ivr.softphone import Softphone  # noqa: E402
from tickets import db, replies, service  # noqa: E402
from tickets.lifecycle import Action  # noqa: E402
from tickets.models import CallbackAttempt  # noqa: E402
from tts import PromptSynthesizer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FLOW = ROOT / "callflows" / "flows" / "callback.yaml"
IVR = "12345"
ALWAYS = {"quiet_hours": "00:00-00:00", "call_on_holidays": True}  # the benchmark runs whenever it is started


def replied_tickets(session_factory, rules, phones: list[str]) -> None:
    now = datetime.now(timezone.utc)
    with session_factory.begin() as session:
        unit = service.create_unit(session, {"name": "市水务局"})
        for phone in phones:
            ticket, _ = service.create_ticket(session, {"content": "停水两天了", "phone": phone, "level": 2},
                                              rules=rules, actor="bench", now=now - timedelta(hours=3))
            for action, extra in ((Action.DISPATCH, {"unit_id": unit.id}), (Action.SIGN, {}), (Action.START, {})):
                service.transition(session, ticket.id, action, actor="bench", rules=rules,
                                   now=now - timedelta(hours=2), **extra)
            reply = replies.submit_reply(session, ticket.id, {"handling_unit": "市水务局", "handled_at": now,
                                                              "situation": "已修复管道", "result": "已恢复供水"},
                                         actor="bench", rules=rules, now=now)
            replies.review_reply(session, reply.id, approve=True, actor="bench", rules=rules, now=now)


def citizen(phone: Softphone, seconds: list[float]) -> None:
    """Answer one call, press 1 once the IVR is heard, stay until it hangs up."""
    call = phone.wait_incoming(600)
    if call is None:
        return
    started = time.monotonic()
    if call.wait_for_audio(0.3, timeout=30):
        call.send_dtmf("1")
    call.wait_ended(120)
    seconds.append(time.monotonic() - started)


def measure(calls: int, concurrency: int, poll: float, prompts: PromptLibrary, pool: asr.RecognitionPool,
            tmp: Path) -> dict:
    numbers = [str(2000 + n) for n in range(calls)]
    passwords = {IVR: secrets.token_hex(8), **{n: secrets.token_hex(8) for n in numbers}}
    url = f"sqlite:///{tmp / f'tickets-{concurrency}.sqlite3'}"
    db.upgrade(url)
    session_factory = db.make_session_factory(db.make_engine(url))
    rules = service.TicketRules.default()
    replied_tickets(session_factory, rules, numbers)
    settings = replace(CallbackSettings(), max_concurrent_calls=concurrency, poll_seconds=poll, **ALWAYS)
    with LocalSipServer(passwords, port=0) as sip:
        node = IvrNode(sip.host, sip.port, IVR, passwords[IVR], on_call=lambda session: None,
                       max_calls=concurrency + 2)
        phones = [Softphone(sip.host, sip.port, n, passwords[n], answer=True) for n in numbers]
        node.start()
        for phone in phones:
            phone.start()
        services = CallServices(speech=VoskSpeech(pool), tickets=DatabaseTickets(session_factory, rules),
                                switchboard=None, recordings=WavRecordings(tmp / "recordings"), prompts=prompts,
                                calendar=DatabaseCalendar(session_factory))
        bundle = load_bundle(FLOW)
        dialler = CallbackDialler(node, session_factory, rules, settings, lambda: bundle, services,
                                  tmp / "recordings", "bench")
        seconds: list[float] = []
        answering = [threading.Thread(target=citizen, args=(phone, seconds), daemon=True) for phone in phones]
        for thread in answering:
            thread.start()
        started = time.monotonic()
        try:
            dialler.run_once()  # the first round schedules every approved reply's first attempt
            while _attempts_to_place(session_factory):
                dialler.run_once()
                time.sleep(poll)
            dialler.wait_idle(60)
            elapsed = time.monotonic() - started
        finally:
            for phone in phones:
                phone.stop()
            node.stop()
    with session_factory() as session:
        outcomes = Counter(f"{a.outcome}:{a.satisfaction or ''}" for a in session.query(CallbackAttempt))
    completed = outcomes.get("answered:满意", 0)
    return {"concurrency": concurrency, "calls": calls, "completed": completed, "outcomes": dict(outcomes),
            "seconds": round(elapsed, 1), "callbacks_per_minute": round(completed * 60 / elapsed, 2),
            "mean_call_seconds": round(sum(seconds) / len(seconds), 1) if seconds else None,
            "load_1min": round(os.getloadavg()[0], 2)}


def _attempts_to_place(session_factory) -> bool:
    """An attempt is due now or on the line. A failed call's retry, due hours later, ends the run: it is
    counted among the outcomes (expected versus completed), not waited for."""
    now = datetime.now(timezone.utc)
    with session_factory() as session:
        return session.query(CallbackAttempt).filter(
            (CallbackAttempt.state == "calling")
            | ((CallbackAttempt.state == "pending") & (CallbackAttempt.due_at <= now))).count() > 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=8, help="tickets to call back (one answering phone each)")
    parser.add_argument("--concurrency", default=str(CallbackSettings().max_concurrent_calls),
                        help="comma-separated max_concurrent_calls values (default: the shipped setting)")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between the dialler's rounds")
    args = parser.parse_args(argv)
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-callbacks-") as folder:
        tmp = Path(folder)
        prompts = PromptLibrary(PromptSynthesizer(tmp / "prompts"))
        for flow in load_bundle(FLOW).flows.values():
            prompts.prewarm(flow)
        pool = asr.RecognitionPool(asr.ModelRegistry(asr.AsrSettings(models_dir=tmp / "models",
                                                                     cache_dir=tmp / "asr-cache")))
        try:
            for concurrency in (int(value) for value in args.concurrency.split(",")):
                print(json.dumps(measure(args.calls, concurrency, args.poll, prompts, pool, tmp),
                                 ensure_ascii=False), flush=True)
        finally:
            pool.shutdown()
            prompts.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
