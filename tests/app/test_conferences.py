"""app.conferences on a real SQLite ticket database, with background transcription replaced by a script:
a finished conference is stored with its ticket; its legs' transcripts (each in its party's language; a leg
without a model or whose transcription failed is noted) are merged by time into one speaker-labelled
transcript and linked; a conference nobody joined leaves no record; the database being away costs nothing
but the record. And the announcement and hold message of an operator-started call come from the flow."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

import callflows
from app.conferences import CaseAnnouncements, ConferenceRecords
from asr import Transcript
from asr.results import Utterance, Word
from callflows.bundle import load_bundle
from callflows.prompts import PromptLibrary
from three_way.conference import ConferenceState, ConferenceView, LegState, LegView
from three_way.desk import Case, Outcome, Reason
from three_way.duty import Seat
from three_way.seats import SeatAttempt, SeatOutcome
from tickets import db, service, three_way_calls

AT = datetime(2026, 9, 29, 2, 0, tzinfo=timezone.utc)


class ScriptedJobs:
    """TranscriptJobs whose transcripts are given: {recording path: utterances as (start, end, text)}, or an
    exception for a failed one. Models: `languages`."""

    def __init__(self, script: dict, languages: tuple[str, ...] = ("ko",)) -> None:
        self.script = script
        self.submitted: list[tuple[str, str]] = []
        languages_ = languages

        class Registry:
            def available_languages(self) -> list[str]:
                return list(languages_)

        self.registry = Registry()

    def submit(self, recording, *, language, on_done=None, on_error=None):
        self.submitted.append((str(recording), language))
        outcome = self.script[str(recording)]
        if isinstance(outcome, Exception):
            on_error(Path(recording), outcome)
            return
        utterances = [Utterance(text, [Word(text.split()[0], start, start + 0.3, 0.9),
                                       Word(text.split()[-1], end - 0.3, end, 0.8)])
                      for start, end, text in outcome]
        path = Path(recording).with_suffix(".transcript.json")
        path.write_text("{}", encoding="utf-8")
        on_done(Transcript(str(recording), language, 30.0, utterances), path)


@pytest.fixture
def session_factory(tmp_path):
    url = f"sqlite:///{tmp_path / 'tickets.sqlite3'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    yield db.make_session_factory(engine)
    engine.dispose()


def leg(leg_id: str, role: str, number: str, recording: Path | None, joined: bool = True) -> LegView:
    return LegView(leg_id, role, number, LegState.LEFT if joined else LegState.MISSED, "hung_up", False, False,
                   AT if joined else None, AT, str(recording) if recording else None, None)


def finished(tmp_path: Path, legs: list[LegView]) -> ConferenceView:
    recordings = {"mixed": str(tmp_path / "c-mixed.wav"),
                  **{view.leg_id: view.recording for view in legs if view.recording}}
    return ConferenceView("c" * 32, ConferenceState.ENDED, AT, AT, "joined", legs, [], recordings)


def test_a_finished_call_is_stored_and_its_legs_merged_into_one_speaker_labelled_transcript(
        tmp_path, session_factory):
    with session_factory.begin() as session:
        service.create_unit(session, {"name": "自来水公司", "seat_numbers": ["1002", "1004"]})
        ticket, _ = service.create_ticket(session, {"content": "停水", "language": "ko"},
                                          rules=service.TicketRules.default(), actor="test")
        number = ticket.number
    legs = [leg("citizen", "citizen", "1001", tmp_path / "c-citizen.wav"),
            leg("seat", "seat", "1004", None, joined=False),
            leg("seat-2", "seat", "1002", tmp_path / "c-seat-2.wav"),
            leg("operator", "operator", "1003", tmp_path / "c-operator.wav")]
    jobs = ScriptedJobs({str(tmp_path / "c-citizen.wav"): [(1.0, 3.0, "물이 안 나와요"), (9.0, 10.0, "네 감사합니다")],
                         str(tmp_path / "c-operator.wav"): RuntimeError("decoder crashed")})
    outcome = Outcome("c" * 32, Reason.JOINED, Seat("1002", "zh"),
                      (SeatAttempt(Seat("1004", "ko"), SeatOutcome.DECLINED),
                       SeatAttempt(Seat("1002", "zh"), SeatOutcome.ACCEPTED)))
    ConferenceRecords(session_factory, jobs)(finished(tmp_path, legs), Case("自来水公司", number, "flow"), outcome)

    assert jobs.submitted == [(str(tmp_path / "c-citizen.wav"), "ko"), (str(tmp_path / "c-operator.wav"), "ko")]
    with session_factory() as session:
        call = three_way_calls.get_call(session, "c" * 32)
        assert (call.outcome, call.seat_number, call.unit_name) == ("joined", "1002", "自来水公司")
        assert [entry["leg_id"] for entry in call.legs] == ["citizen", "seat", "seat-2", "operator"]
        assert call.transcript_ref == str(tmp_path / "c-mixed.transcript.json")
        assert service.get_by_number(session, number).events[-1].action == "three_way"
    merged = json.loads(Path(call.transcript_ref).read_text(encoding="utf-8"))
    assert merged["ticket"] == number and merged["unit"] == "自来水公司"
    assert [(t["speaker"], t["start"], t["text"]) for t in merged["turns"]] == [
        ("citizen", 1.0, "물이 안 나와요"), ("citizen", 9.0, "네 감사합니다")]
    assert merged["legs"]["seat-2"]["language"] == "zh"  # the accepting seat's language
    assert merged["legs"]["seat-2"]["note"] == "no speech model for 'zh'"
    assert merged["legs"]["operator"]["note"] == "transcription failed: decoder crashed"
    assert merged["legs"]["citizen"]["transcript"] == str(tmp_path / "c-citizen.transcript.json")
    assert merged["text"] == "citizen: 물이 안 나와요\ncitizen: 네 감사합니다"


def test_turns_of_several_speakers_are_ordered_by_time(tmp_path, session_factory):
    legs = [leg("citizen", "citizen", "1001", tmp_path / "a-citizen.wav"),
            leg("seat", "seat", "1002", tmp_path / "a-seat.wav")]
    jobs = ScriptedJobs({str(tmp_path / "a-citizen.wav"): [(1.0, 2.0, "언제 물이 나와요"), (6.0, 7.0, "알겠습니다")],
                         str(tmp_path / "a-seat.wav"): [(3.0, 5.0, "오후 세시에 복구됩니다")]},
                        languages=("ko", "zh"))
    view = finished(tmp_path, legs)
    view = ConferenceView(view.conference_id, view.state, AT, AT, "joined", legs, [],
                          {**view.recordings, "mixed": str(tmp_path / "a-mixed.wav")})
    ConferenceRecords(session_factory, jobs)(view, Case("自来水公司"), Outcome(view.conference_id, Reason.JOINED,
                                                                          Seat("1002", "ko")))
    merged = json.loads((tmp_path / "a-mixed.transcript.json").read_text(encoding="utf-8"))
    assert [t["speaker"] for t in merged["turns"]] == ["citizen", "seat", "citizen"]


def test_nobody_joined_no_record_and_a_database_away_is_logged_not_raised(tmp_path, session_factory, caplog):
    jobs = ScriptedJobs({})
    view = finished(tmp_path, [leg("seat", "seat", "1002", None, joined=False)])
    ConferenceRecords(session_factory, jobs)(view, Case("自来水公司"), Outcome(None, Reason.NOBODY_ACCEPTED))
    with session_factory() as session:
        assert not three_way_calls.is_stored(session, "c" * 32)

    def unreachable():
        raise OSError("database is away")

    records = ConferenceRecords(unreachable, jobs)  # type: ignore[arg-type]
    records(finished(tmp_path, [leg("citizen", "citizen", "1001", tmp_path / "c-citizen.wav")]),
            Case("自来水公司"), Outcome("c" * 32, Reason.NOBODY_ACCEPTED))
    assert "could not be stored" in caplog.text and jobs.submitted == []


class Spoken:
    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def synthesize(self, text: str, language: str) -> Path:
        self.texts.append((language, text))
        return Path("/nowhere.wav")


def test_an_operator_started_call_speaks_the_flows_announcement_and_hold_message(monkeypatch):
    bundle = load_bundle(Path(callflows.__file__).parent / "flows" / "hotline12345.yaml")
    spoken = Spoken()
    monkeypatch.setattr("app.conferences.to_pcm", lambda path: b"\0\0" * 160)
    words = CaseAnnouncements(lambda: bundle, PromptLibrary(spoken))
    announcement, hold = words.for_ticket({"request_type": "投诉", "topic": "水电气热", "ticket_number": "2627300001",
                                           "unit": "自来水公司", "language": "ko"})
    assert hold == b"\0\0" * 160 and spoken.texts[0][0] == "ko"  # the hold message in the ticket's language
    announcement("zh")
    announcement("en")  # a language the flow does not speak: its first language
    assert [language for language, _ in spoken.texts[1:]] == ["zh", "zh"]
    assert spoken.texts[1][1] == ("幺二三四五三方通话。投诉，水电气热，工单号二 六 二 七 三 零 零 零 零 幺。"
                                  "接听请按一，不能接听请按二。")  # numbers as the prompts speak them
