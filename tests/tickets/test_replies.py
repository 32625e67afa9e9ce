"""Replies (回复) on the real databases: the four required parts, review before a reply counts as sent
(审核把关), attachments stored on disk with limits, the delivery queue, and archived tickets read-only."""
from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ticket_steps import walk
from tickets import attachments, replies, service
from tickets.lifecycle import Action, InvalidTransition
from tickets.models import Ticket
from tickets.procedure_settings import ProcedureSettings

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday
PARTS = {"handling_unit": "市水务局", "handled_at": T0 + timedelta(hours=5), "situation": "派员到现场抢修供水管道",
         "result": "当日恢复供水"}


@pytest.fixture
def rules(rules, tmp_path):
    return replace(rules, procedures=ProcedureSettings(attachments_dir=tmp_path / "attachments", reply_channel="phone",
                                                       attachment_max_bytes={"text": 100, "audio": 1000,
                                                                             "image": 1000, "video": 1000}))


@pytest.fixture
def worked(session_factory, rules):
    """A water ticket dispatched and being worked on by the unit."""
    with session_factory.begin() as session:
        unit = service.create_unit(session, {"name": "市水务局"})
        ticket, _ = service.create_ticket(session, {"content": "停水两天了", "phone": "13800001234", "level": 2},
                                          rules=rules, actor="op", now=T0)
        walk(session, rules, ticket.id, T0, (Action.DISPATCH, 1, {"unit_id": unit.id}), (Action.SIGN, 2, {}),
             (Action.START, 3, {}))
        return ticket.id


@pytest.mark.parametrize("part", list(PARTS))
def test_every_part_of_a_reply_is_required(session_factory, rules, worked, part):
    with session_factory() as session:
        for value in (None, "  "):
            with pytest.raises(ValueError, match=f"^{part}: a reply states"):
                replies.submit_reply(session, worked, {**PARTS, part: value}, actor="unit", rules=rules,
                                     now=T0 + timedelta(hours=6))
            session.rollback()
        assert service.get_ticket(session, worked).status == "in_progress"


def test_the_time_of_handling_must_be_plausible(session_factory, rules, worked):
    with session_factory() as session:
        now = T0 + timedelta(hours=6)
        with pytest.raises(ValueError, match="^handled_at: the work cannot have been done in the future"):
            replies.submit_reply(session, worked, {**PARTS, "handled_at": now + timedelta(hours=1)}, actor="u",
                                 rules=rules, now=now)
        with pytest.raises(ValueError, match="^handled_at: the work cannot predate"):
            replies.submit_reply(session, worked, {**PARTS, "handled_at": T0 - timedelta(days=1)}, actor="u",
                                 rules=rules, now=now)
        with pytest.raises(ValueError, match="^handled_at: a time with its time zone"):
            replies.submit_reply(session, worked, {**PARTS, "handled_at": datetime(2026, 3, 2, 12)}, actor="u",
                                 rules=rules, now=now)
        with pytest.raises(ValueError, match="^colour: not a part of a reply"):
            replies.submit_reply(session, worked, {**PARTS, "colour": "red"}, actor="u", rules=rules, now=now)


def test_a_reply_counts_as_sent_only_once_approved(session_factory, rules, worked):
    submitted, returned_at, approved_at = (T0 + timedelta(hours=h) for h in (6, 7, 9))
    with session_factory.begin() as session:
        first = replies.submit_reply(session, worked, PARTS, actor="unit staff", rules=rules, now=submitted)
        ticket = service.get_ticket(session, worked)
        assert (ticket.status, ticket.replied_at) == ("reply_review", None)
        assert all(d.met_at is None for d in ticket.deadlines if d.kind in ("response", "unit_reply"))
        with pytest.raises(ValueError, match="^note: say why"):
            replies.review_reply(session, first.id, approve=False, actor="reviewer", rules=rules, now=returned_at)
        replies.review_reply(session, first.id, approve=False, actor="reviewer", rules=rules, now=returned_at,
                             note="办理结果不具体，请写明恢复供水的时间")
        assert (ticket.status, first.status, first.review_note) == ("in_progress", "returned",
                                                                    "办理结果不具体，请写明恢复供水的时间")
        with pytest.raises(service.Conflict, match="already returned"):
            replies.review_reply(session, first.id, approve=True, actor="reviewer", rules=rules)
        second = replies.submit_reply(session, worked, {**PARTS, "result": "3月2日14时恢复供水"}, actor="unit staff",
                                      rules=rules, now=approved_at - timedelta(minutes=30))
        replies.review_reply(session, second.id, approve=True, actor="reviewer", rules=rules, now=approved_at)
    with session_factory() as session:
        ticket = session.get(Ticket, worked)
        assert (ticket.status, ticket.replied_at) == ("replied", approved_at)
        met = {d.kind: d.met_at for d in ticket.deadlines}
        assert met["response"] == met["unit_reply"] == approved_at and met["callback"] is None
        assert [r.status for r in replies.replies_of(session, worked)] == ["returned", "approved"]
        assert [(e.action, e.actor) for e in ticket.events][-4:] == [
            ("reply", "unit staff"), ("return_reply", "reviewer"), ("reply", "unit staff"), ("approve_reply", "reviewer")]


def test_approved_replies_wait_for_delivery_until_one_reaches_the_citizen(session_factory, rules, worked):
    with session_factory.begin() as session:
        reply = replies.submit_reply(session, worked, PARTS, actor="unit", rules=rules, now=T0 + timedelta(hours=6))
        assert replies.replies_awaiting_delivery(session) == []  # not approved yet
        replies.review_reply(session, reply.id, approve=True, actor="reviewer", rules=rules,
                             now=T0 + timedelta(hours=7))
    with session_factory.begin() as session:
        [waiting] = replies.replies_awaiting_delivery(session, channel="phone")
        assert (waiting.id, waiting.channel, waiting.ticket.phone) == (reply.id, "phone", "13800001234")
        assert replies.replies_awaiting_delivery(session, channel="sms") == []
        replies.record_delivery(session, reply.id, delivered=False, actor="callback call", note="无人接听",
                                now=T0 + timedelta(hours=8))
    with session_factory.begin() as session:
        [still] = replies.replies_awaiting_delivery(session)
        assert (still.delivery_attempts, still.delivered_at) == (1, None)
        replies.record_delivery(session, reply.id, delivered=True, actor="callback call", note="已向市民宣读",
                                now=T0 + timedelta(hours=9))
    with session_factory() as session:
        assert replies.replies_awaiting_delivery(session) == []
        with pytest.raises(service.Conflict, match="was delivered"):
            replies.record_delivery(session, reply.id, delivered=True, actor="x")
        ticket = session.get(Ticket, worked)
        assert [(e.action, e.note) for e in ticket.events][-2:] == [
            ("reply_not_delivered", "reply 1 by phone: 无人接听"), ("reply_delivered", "reply 1 by phone: 已向市民宣读")]


def test_attachments_are_stored_with_their_hash_and_refused_past_their_limits(session_factory, rules, worked):
    settings = rules.procedures
    with session_factory.begin() as session:
        reply = replies.submit_reply(session, worked, PARTS, actor="unit", rules=rules, now=T0 + timedelta(hours=6))
        photo = bytes(range(256)) * 3
        stored = attachments.store_attachment(session, reply.id, filename="../../现场照片.jpg", media_type="image/jpeg",
                                              chunks=[photo[:300], photo[300:]], settings=settings)
        path = Path(stored.storage_ref)
        assert (stored.kind, stored.filename, stored.size) == ("image", "现场照片.jpg", len(photo))
        assert path.read_bytes() == photo and stored.sha256 == hashlib.sha256(photo).hexdigest()
        assert path.parent == settings.attachments_dir / service.get_ticket(session, worked).number
        with pytest.raises(attachments.TooLarge, match="text attachments are at most 100 bytes"):
            attachments.store_attachment(session, reply.id, filename="说明.txt", media_type="text/plain; charset=utf-8",
                                         chunks=[b"x" * 60, b"x" * 60], settings=settings)
        with pytest.raises(attachments.UnsupportedMediaType, match="application/x-msdownload is not accepted"):
            attachments.store_attachment(session, reply.id, filename="a.exe", media_type="application/x-msdownload",
                                         chunks=[b"MZ"], settings=settings)
        with pytest.raises(ValueError, match="^file: the attachment is empty"):
            attachments.store_attachment(session, reply.id, filename="空.txt", media_type="text/plain", chunks=[],
                                         settings=settings)
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # nothing half-written left behind
        replies.review_reply(session, reply.id, approve=True, actor="reviewer", rules=rules,
                             now=T0 + timedelta(hours=7))
        with pytest.raises(service.Conflict, match="attachments go with a reply under review"):
            attachments.store_attachment(session, reply.id, filename="late.txt", media_type="text/plain",
                                         chunks=[b"late"], settings=settings)
        assert [a.filename for a in replies.get_reply(session, reply.id).attachments] == ["现场照片.jpg"]


def test_archived_tickets_are_read_only(session_factory, rules):
    with session_factory.begin() as session:
        ticket, _ = service.create_ticket(session, {"content": "请问社保卡怎么补办"}, rules=rules, actor="op", now=T0)
        service.transition(session, ticket.id, Action.ANSWER_DIRECTLY, actor="op", rules=rules, now=T0,
                           note="携带身份证到社保大厅补办")
        service.transition(session, ticket.id, Action.ARCHIVE, actor="op", rules=rules, now=T0)
    with session_factory() as session:
        with pytest.raises(service.Conflict, match="archived and read-only"):
            service.update_fields(session, service.get_ticket(session, ticket.id), {"address": "x"}, actor="op")
        with pytest.raises(service.Conflict, match="archived and read-only"):
            service.override_level(session, ticket.id, 1, actor="op", rules=rules)
        with pytest.raises(InvalidTransition):
            service.transition(session, ticket.id, Action.REOPEN, actor="op", rules=rules)
        with pytest.raises(service.Conflict, match="archived and read-only"):
            replies.submit_reply(session, ticket.id, PARTS, actor="unit", rules=rules)
        assert service.get_ticket(session, ticket.id).answer == "携带身份证到社保大厅补办"
