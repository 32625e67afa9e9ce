"""The journal-first `Tickets` port and the replayer's database sink, on SQLite and PostgreSQL, with the
database taken away mid-call (tests/app/database_outage.py): nothing the caller said is lost, the caller is
told a real number, and the ticket appears once, with that number, when the database is back."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from app.journal_sink import DatabaseSink
from app.journaled_tickets import JournaledTickets
from app.adapters.tickets_adapter import DatabaseTickets
from journal.numbers import ReservedNumbers
from journal.replayer import Replayer
from journal.store import Journal
from tests.app.database_outage import OutageDatabase, outage_database
from tickets import service
from tickets.models import Ticket, TicketEvent, TicketNumberCounter

REQUEST = {"content": "我家停水两天了", "recording_ref": "/var/recordings/call/request.wav"}


class Node:
    """One node's journal-side parts over `database`."""

    def __init__(self, database: OutageDatabase, journal: Journal) -> None:
        self.database = database
        self.journal = journal
        rules = service.TicketRules.default()
        self.sink = DatabaseSink(database.session_factory, rules)
        self.tickets = JournaledTickets(journal, DatabaseTickets(database.session_factory, rules),
                                        reserved_day=self.sink.today, retry_after=0.0)
        self.numbers = ReservedNumbers(journal, self.sink, stock=3, today=self.sink.today)
        self.replayer = Replayer(journal, self.sink)

    def ticket(self, call_id: str) -> Ticket | None:
        with self.database.session_factory() as session:
            ticket = session.scalar(select(Ticket).where(Ticket.call_id == call_id))
            if ticket is not None:
                ticket.events  # loaded while the session is open
            return ticket

    def counts(self) -> tuple[int, int, int]:
        """Tickets, history lines, numbers handed out by the daily counters."""
        with self.database.session_factory() as session:
            return (session.scalar(select(func.count()).select_from(Ticket)),
                    session.scalar(select(func.count()).select_from(TicketEvent)),
                    session.scalar(select(func.coalesce(func.sum(TicketNumberCounter.last), 0))))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def node(request: pytest.FixtureRequest, tmp_path) -> Iterator[Node]:
    try:
        database = outage_database(request.param, tmp_path)
    except Exception as error:  # noqa: BLE001 - no PostgreSQL here
        pytest.skip(f"no {request.param} database: {error}")
    journal = Journal(tmp_path / "journal" / "node.sqlite3")
    try:
        yield Node(database, journal)
    finally:
        journal.close()
        database.back()
        database.close()


def test_the_language_key_alone_opens_no_draft_and_uses_no_number(node):
    node.tickets.save_draft("call-110", "1001", {"language": "ko"})
    node.tickets.mark_incomplete("call-110", "transferred to 110 at hotline12345:to_police")
    assert node.counts() == (0, 0, 0)
    call = node.journal.call("call-110")
    assert (call.outcome, call.written_by, call.fields) == ("incomplete", "call", {"language": "ko"})
    assert node.journal.calls_to_write() == []


def test_a_caller_handed_over_by_110_opens_the_draft_at_the_request_with_the_referral_in_its_history(node):
    node.tickets.save_draft("call-ref", "0433110", {"language": "ko"})
    node.tickets.save_draft("call-ref", "0433110", {"referred_by": "110"})
    assert node.counts() == (0, 0, 0)  # who referred the call is no request yet
    node.tickets.save_draft("call-ref", "0433110", REQUEST)
    draft = node.ticket("call-ref")
    assert (draft.referred_by, draft.content, draft.language) == ("110", REQUEST["content"], "ko")
    assert draft.events[0].action == "create" and draft.events[0].note.startswith("由110转来 (handed over by 110)")


def test_with_the_database_up_the_draft_opens_at_the_request_and_the_database_numbers_the_ticket(node):
    node.tickets.save_draft("call-1", "1001", {"language": "ko"})
    node.tickets.save_draft("call-1", "1001", REQUEST)
    draft = node.ticket("call-1")
    assert (draft.language, draft.content, draft.is_draft) == ("ko", REQUEST["content"], True)
    node.tickets.save_draft("call-1", "1001", {"level": "2"})
    info = node.tickets.submit("call-1", "1001", {"handling_mode": "转办"})
    ticket = node.ticket("call-1")
    assert (info.number, info.status, ticket.number, ticket.status) == (draft.number, "received", draft.number,
                                                                        "received")
    assert info.deadline == ticket.response_due_at
    call = node.journal.call("call-1")
    assert (call.number, call.number_source, call.written_by, call.database_missed) == (
        draft.number, "database", "call", False)
    assert node.journal.calls_to_write() == [] and node.replayer.replay_once().written == []


def test_database_away_for_the_whole_call_the_caller_hears_a_reserved_number_the_replay_keeps(node):
    assert node.numbers.top_up() == 3
    reserved = node.journal.unused_reserved()
    before = node.counts()
    node.database.away()
    started = datetime.now(timezone.utc)
    node.tickets.save_draft("call-2", "1002", {"language": "zh"})
    node.tickets.save_draft("call-2", "1002", REQUEST)
    node.tickets.save_draft("call-2", "1002", {"caller_name": "王芳", "name_recording_ref": "/rec/name.wav"})
    info = node.tickets.submit("call-2", "1002", {"handling_mode": "转办", "phone": "13800000000"})
    assert (info.number, info.status) == (reserved[0], "received")
    assert timedelta(hours=24) <= info.deadline - started < timedelta(hours=24, minutes=1)  # 停水: level 2
    assert node.tickets.kb_search("停水", "zh") is None  # the knowledge base is in the database too
    assert node.replayer.replay_once().error  # still away: nothing written, nothing lost
    assert [call.call_id for call in node.journal.calls_to_write()] == ["call-2"]

    node.database.back()
    report = node.replayer.replay_once()
    assert report.written == [("call-2", reserved[0])] and report.error == ""
    ticket = node.ticket("call-2")
    assert (ticket.number, ticket.status, ticket.caller_name, ticket.phone, ticket.language) == (
        reserved[0], "received", "王芳", "13800000000", "zh")
    assert (ticket.recording_ref, ticket.name_recording_ref) == (REQUEST["recording_ref"], "/rec/name.wav")
    assert ticket.response_due_at == info.deadline  # what the caller was told
    assert ticket.received_at == node.journal.call("call-2").ended_at
    after = node.counts()
    assert after[0] == before[0] + 1 and after[2] == before[2]  # the reserved number, no new one

    assert node.replayer.replay_once().written == [] and node.counts() == after  # a second replay adds nothing
    node.journal._db.execute("UPDATE calls SET written_at = NULL")  # as if the node died before the ack
    assert node.replayer.replay_once().written == [("call-2", reserved[0])]
    assert node.counts() == after


def test_database_away_after_the_draft_tells_the_drafts_number_and_the_replay_submits_it(node):
    node.tickets.save_draft("call-3", "1003", REQUEST)
    number = node.ticket("call-3").number
    node.database.away()
    node.tickets.save_draft("call-3", "1003", {"address": "建设街5号"})
    info = node.tickets.submit("call-3", "1003", {"handling_mode": "转办"})
    assert info.number == number and node.journal.unused_reserved() == []
    node.database.back()
    assert node.replayer.replay_once().written == [("call-3", number)]
    ticket = node.ticket("call-3")
    assert (ticket.number, ticket.status, ticket.address, ticket.handling_mode) == (number, "received",
                                                                                  "建设街5号", "转办")


def test_no_reserved_number_left_means_no_number_told_and_the_replay_numbers_it(node):
    node.database.away()
    node.tickets.save_draft("call-4", "1004", REQUEST)
    info = node.tickets.submit("call-4", "1004", {})
    assert info.number == "" and node.journal.call("call-4").number_source == "none"
    node.database.back()
    [(call_id, number)] = node.replayer.replay_once().written
    assert call_id == "call-4" and number == node.ticket("call-4").number and len(number) == 10


def test_a_hang_up_while_the_database_is_away_leaves_an_incomplete_draft_after_replay(node):
    node.database.away()
    node.tickets.save_draft("call-5", "1005", {"language": "ko"})
    node.tickets.save_draft("call-5", "1005", REQUEST)
    node.tickets.mark_incomplete("call-5", "caller hung up at hotline12345:ask_name")
    node.database.back()
    [(_, number)] = node.replayer.replay_once().written
    ticket = node.ticket("call-5")
    assert (ticket.number, ticket.is_draft, ticket.incomplete_reason, ticket.content) == (
        number, True, "caller hung up at hotline12345:ask_name", REQUEST["content"])
    assert [event.action for event in ticket.events] == ["create", "incomplete"]


def test_racing_replayers_write_one_ticket_the_unique_call_id_is_the_guard(node):
    node.numbers.top_up()
    node.database.away()
    node.tickets.save_draft("call-6", "1006", REQUEST)
    told = node.tickets.submit("call-6", "1006", {}).number
    node.database.back()
    replayers = [Replayer(node.journal, node.sink) for _ in range(3)]  # the node's thread and two CLI runs
    reports = []
    threads = [threading.Thread(target=lambda r=r: reports.append(r.replay_once())) for r in replayers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    node.replayer.replay_once()  # a loser that stopped on the unique call id finds the ticket next round
    assert node.counts()[0] == 1 and node.ticket("call-6").number == told
    assert node.journal.call("call-6").written_at is not None and node.journal.calls_to_write() == []
    assert sum(len(report.written) for report in reports) >= 1


def test_a_bad_value_is_refused_before_it_is_journaled(node):
    with pytest.raises(ValueError, match="level: 'x' is not one of 1, 2, 3, 4"):
        node.tickets.save_draft("call-7", "1007", {"level": "x"})
    with pytest.raises(ValueError, match="request_type: '好' is not one of"):
        node.tickets.save_draft("call-7", "1007", {"request_type": "好"})
    assert node.journal.call("call-7") is None


def test_reserved_numbers_come_from_the_database_counter(node):
    assert node.numbers.top_up() == 3
    reserved = node.journal.unused_reserved(node.sink.today())
    node.tickets.save_draft("call-8", "1008", REQUEST)
    assert int(node.ticket("call-8").number) == int(reserved[-1]) + 1
