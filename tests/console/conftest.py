"""A console on a real SQLite ticket database (TestClient, no browser): tokens for each role, two member
units, and a ticket whose call has a real WAV recording and a transcript file in asr's format."""
from __future__ import annotations

import json
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import console
from tickets import db, service
from tickets.api import TicketsContext, install
from tickets.auth import issue_token
from tickets.service import TicketRules

ROOT = Path(__file__).resolve().parents[2]
WORDS = [("수도", 0.52, 0.90, 0.95), ("단수", 0.95, 1.40, 0.41), ("민원", 1.50, 1.95, 0.88),
         ("입니다", 2.00, 2.40, 0.99), ("김철수", 3.10, 3.70, 0.30)]


def write_wav(path: Path, seconds: float) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(int(seconds * 8000) * 2))


def write_transcript(path: Path, source: Path) -> None:
    words = [{"word": w, "start": s, "end": e, "conf": c} for w, s, e, c in WORDS]
    utterances = [{"text": " ".join(w["word"] for w in words[:4]), "words": words[:4], "forced": False},
                  {"text": words[4]["word"], "words": words[4:], "forced": False}]
    path.write_text(json.dumps({"source": str(source), "language": "ko", "duration": 4.0,
                                "utterances": utterances}, ensure_ascii=False), encoding="utf-8")


@dataclass
class ConsoleSite:
    client: TestClient
    tokens: dict[str, str]
    session_factory: object
    ticket_id: int
    other_unit_ticket_id: int
    call_wav: Path
    units: dict[str, int]

    def sign_in(self, role: str) -> TestClient:
        response = self.client.post("/sign-in", data={"token": self.tokens[role], "next": "/queue"},
                                    follow_redirects=False)
        assert response.status_code == 303, response.text
        return self.client


@pytest.fixture
def site(tmp_path) -> Iterator[ConsoleSite]:
    session_factory = db.open_database(f"sqlite:///{tmp_path / 'tickets.sqlite3'}")
    rules = TicketRules.default()
    call_wav = tmp_path / "call.wav"
    write_wav(call_wav, 4.0)
    write_transcript(tmp_path / "call.transcript.json", call_wav)
    request_wav = tmp_path / "request.wav"
    write_wav(request_wav, 1.5)
    with session_factory.begin() as session:
        water = service.create_unit(session, {"name": "供水公司"})
        roads = service.create_unit(session, {"name": "住建局"})
        tokens = {"admin": issue_token(session, "admin", "admin")[1],
                  "operator": issue_token(session, "话务员小王", "operator")[1],
                  "water": issue_token(session, "供水公司值班", "unit_staff", water.id)[1],
                  "roads": issue_token(session, "住建局值班", "unit_staff", roads.id)[1],
                  "reviewer": issue_token(session, "审核员老李", "reviewer")[1]}
        ticket, _ = service.create_ticket(session, {
            "content": "수도 단수 민원입니다", "caller_name": "김철수", "phone": "1001", "address": "연길시",
            "language": "ko", "unit_id": water.id, "call_recording_ref": str(call_wav),
            "recording_ref": str(request_wav), "transcript_ref": str(tmp_path / "call.transcript.json"),
            "transcript_confidence": 0.71, "call_id": "c" * 32}, rules=rules, actor="ivr")
        other, _ = service.create_ticket(session, {"content": "路灯坏了", "unit_id": roads.id, "level": 3},
                                         rules=rules, actor="op",
                                         now=datetime.now(timezone.utc) - timedelta(days=8))
        ids = (ticket.id, other.id, water.id, roads.id)
    app = FastAPI()
    install(app, TicketsContext(session_factory, rules))
    console.install(app, console.ConsoleSettings(session_secret=b"s" * 32, flows_dir=ROOT / "callflows" / "flows",
                                                 active_flow="hotline12345", operator_seat="1003"))
    with TestClient(app) as client:
        yield ConsoleSite(client, tokens, session_factory, ids[0], ids[1], call_wav,
                          {"water": ids[2], "roads": ids[3]})
