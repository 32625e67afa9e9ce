"""The console's pages through HTTP (no browser): sign-in and sessions, CSRF, roles and units, the queue's
filters, and the ticket page's forms going through the ticket service's rules."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from tickets import service
from tickets.models import ApiToken, Ticket


def just_now() -> str:
    """A datetime-local value of the Shanghai clock, as the reply form prefills it (the next minute)."""
    return (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def history_actions(site, ticket_id: int) -> list[tuple[str, str, str | None]]:
    with site.session_factory() as session:
        return [(e.actor, e.action, e.note) for e in service.get_ticket(session, ticket_id).events]


def test_pages_need_a_session_and_sign_in_redirects_back(site):
    response = site.client.get("/queue?status=received", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/sign-in?next=/queue%3Fstatus%3Dreceived"
    wrong = site.client.post("/sign-in", data={"token": "nope", "next": "/queue"})
    assert wrong.status_code == 401 and "令牌无效" in wrong.text
    signed = site.client.post("/sign-in", data={"token": site.tokens["operator"], "next": "/queue?level=2"},
                              follow_redirects=False)
    assert signed.headers["location"] == "/queue?level=2"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and site.tokens["operator"] not in cookie
    page = site.client.get("/queue")
    assert page.status_code == 200 and "话务员小王" in page.text


def test_sign_in_never_redirects_off_site(site):
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        response = site.client.post("/sign-in", data={"token": site.tokens["operator"], "next": target},
                                    follow_redirects=False)
        assert response.headers["location"] == "/", target


def test_a_tampered_cookie_or_a_deleted_token_ends_the_session(site):
    site.sign_in("operator")
    value = site.client.cookies["hotline_console"]
    site.client.cookies.set("hotline_console", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert site.client.get("/queue", follow_redirects=False).status_code == 303
    site.sign_in("operator")
    with site.session_factory.begin() as session:
        session.query(ApiToken).filter(ApiToken.name == "话务员小王").delete()
    assert site.client.get("/queue", follow_redirects=False).status_code == 303


def test_state_changing_forms_need_the_sessions_csrf_token_and_our_origin(site):
    site.sign_in("operator")
    url = f"/tickets/{site.ticket_id}/reviewed"
    assert site.client.post(url, data={}).status_code == 403
    assert site.client.post(url, data={"csrf_token": "0" * 40}).status_code == 403
    token = csrf_of(site.client.get("/queue").text)
    foreign = site.client.post(url, data={"csrf_token": token}, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    assert ("话务员小王", "review") not in [a[:2] for a in history_actions(site, site.ticket_id)]
    done = site.client.post(url, data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303
    assert ("话务员小王", "review") in [a[:2] for a in history_actions(site, site.ticket_id)]


def test_the_queue_filters_searches_and_pages(site):
    site.sign_in("operator")

    def numbers(query: str) -> set[str]:
        page = site.client.get("/queue" + query)
        assert page.status_code == 200, page.text
        return set(re.findall(r'<a href="/tickets/\d+">(\d{10})</a>', page.text))

    with site.session_factory() as session:
        water = service.get_ticket(session, site.ticket_id).number
        roads = service.get_ticket(session, site.other_unit_ticket_id).number
    assert numbers("") == {water, roads}
    assert numbers("?level=2") == {water}
    assert numbers(f"?unit_id={site.units['roads']}") == {roads}
    assert numbers("?request_type=投诉") == {water}
    assert numbers("?overdue=yes") == {roads}
    assert numbers("?overdue=no&status=received") == {water}
    assert numbers("?q=路灯") == {roads}
    assert numbers("?status=archived") == set()
    overdue_row = re.search(r'<tr class="row-(\w+)" data-ticket="%d"' % site.other_unit_ticket_id,
                            site.client.get("/queue").text)
    assert overdue_row.group(1) == "overdue"
    bad = site.client.get("/queue?level=9")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "level"]
    assert site.client.get("/queue?status=nonsense").json()["detail"][0]["loc"] == ["query", "status"]


def test_the_queue_says_more_than_1000_when_the_count_stopped(site):
    """A search matching more than 1000 tickets is not counted to the end: the queue says "more than 1000"
    and that further pages follow; a narrower one keeps its exact count."""
    created = datetime(2026, 3, 2, 1, 0, tzinfo=ZoneInfo("UTC"))
    with site.session_factory.begin() as session:
        session.execute(insert(Ticket), [{
            "number": f"26061{index:05d}", "content": f"噪音扰民 第{index}号", "status": "received", "level": 3,
            "is_draft": False, "overdue": False, "confidential": False, "statutory_data_missing": False,
            "version": 1, "created_at": created, "updated_at": created} for index in range(1030)])
    site.sign_in("operator")
    broad = site.client.get("/queue?q=噪音")
    assert "超过 1000 件" in broad.text and "第 1 / 41+ 页" in broad.text and "page=2" in broad.text
    late = site.client.get("/queue?q=噪音&page=41")  # past the first 1000: counted to the end of this page
    assert "超过 1025 件" in late.text and "第 41 / 42+ 页" in late.text
    assert "共 11 件" in site.client.get("/queue?q=第102").text  # 第102号 and 第1020..1029号


def test_unit_staff_see_only_their_units_tickets_and_another_units_is_404(site):
    site.sign_in("roads")
    page = site.client.get(f"/queue?unit_id={site.units['water']}")  # the filter cannot widen what they see
    assert re.findall(r'data-ticket="(\d+)"', page.text) == [str(site.other_unit_ticket_id)]
    assert site.client.get(f"/tickets/{site.ticket_id}").status_code == 404
    assert site.client.get(f"/api/tickets/{site.ticket_id}/transcript").status_code == 404
    assert site.client.get(f"/api/tickets/{site.ticket_id}/recordings").status_code == 404
    assert site.client.get(f"/api/tickets/{site.ticket_id}/recordings/call").status_code == 404
    assert site.client.get(f"/tickets/{site.other_unit_ticket_id}").status_code == 200
    assert site.client.get("/statistics").status_code == 403 and site.client.get("/live").status_code == 403


def test_confidential_tickets_hide_the_citizen_from_unit_staff(site):
    with site.session_factory.begin() as session:
        service.update_fields(session, service.get_ticket(session, site.ticket_id), {"confidential": True},
                              actor="op")
    site.sign_in("water")
    page = site.client.get(f"/tickets/{site.ticket_id}").text
    assert "김철수" not in page and "연길시" not in page and "（保密，已隐藏）" in page
    listing = site.client.get(f"/api/tickets/{site.ticket_id}/recordings").json()
    assert [r["name"] for r in listing] == ["request"]  # the whole call (name and address spoken) is not
    assert site.client.get(f"/api/tickets/{site.ticket_id}/transcript").status_code == 404
    site.sign_in("operator")
    assert "김철수" in site.client.get(f"/tickets/{site.ticket_id}").text


def test_transitions_follow_the_lifecycle_and_the_roles(site):
    site.sign_in("operator")
    page = site.client.get(f"/tickets/{site.ticket_id}").text
    token = csrf_of(page)
    assert set(re.findall(r'data-action="(\w+)"', page.split('id="actions"')[1].split("</div>")[0])) == {
        "answer_directly", "reject", "dispatch", "escalate"}
    url = f"/tickets/{site.ticket_id}/transition"
    refused = site.client.post(url, data={"csrf_token": token, "action": "archive"})
    assert refused.status_code == 409 and "allowed: answer_directly, reject, dispatch, escalate" in refused.text
    no_reason = site.client.post(url, data={"csrf_token": token, "action": "reject"})
    assert no_reason.status_code == 422 and "rejection_reason: one of out_of_jurisdiction" in no_reason.text
    done = site.client.post(url, data={"csrf_token": token, "action": "dispatch", "unit_id": site.units["water"],
                                       "note": "供水问题"}, follow_redirects=False)
    assert done.status_code == 303
    assert history_actions(site, site.ticket_id)[-1] == ("话务员小王", "dispatch", "供水问题")
    stale = site.client.post(url, data={"csrf_token": token, "action": "escalate", "expected_version": "1"})
    assert stale.status_code == 409  # the page was older than the ticket
    site.sign_in("water")
    token = csrf_of(site.client.get(f"/tickets/{site.ticket_id}").text)
    assert site.client.post(url, data={"csrf_token": token, "action": "escalate"}).status_code == 403
    assert site.client.post(url, data={"csrf_token": token, "action": "sign"}, follow_redirects=False).status_code == 303
    assert history_actions(site, site.ticket_id)[-1][:2] == ("供水公司值班", "sign")


def test_a_reply_with_its_four_parts_waits_for_review_and_the_reviewer_approves_it(site):
    site.sign_in("operator")
    token = csrf_of(site.client.get(f"/tickets/{site.ticket_id}").text)
    url = f"/tickets/{site.ticket_id}/transition"
    site.client.post(url, data={"csrf_token": token, "action": "dispatch", "unit_id": site.units["water"]})
    assert site.client.post(url, data={"csrf_token": token, "action": "reply"}).status_code == 422  # not here
    site.sign_in("water")
    page = site.client.get(f"/tickets/{site.ticket_id}").text
    token = csrf_of(page)
    assert 'id="reply-form"' not in page  # signed and started first
    for action in ("sign", "start"):
        site.client.post(url, data={"csrf_token": token, "action": action})
    page = site.client.get(f"/tickets/{site.ticket_id}").text
    assert 'id="reply-form"' in page and 'value="供水公司"' in page
    assert re.search(r'name="handled_at" value="\d{4}-\d\d-\d\dT\d\d:\d\d"', page)
    reply_url = f"/tickets/{site.ticket_id}/reply"
    missing = site.client.post(reply_url, data={"csrf_token": token, "handling_unit": "供水公司",
                                                "handled_at": just_now(), "situation": "", "result": "已恢复"})
    assert missing.status_code == 422 and "situation" in missing.text
    sent = site.client.post(reply_url, data={"csrf_token": token, "handling_unit": "供水公司",
                                             "handled_at": just_now(), "situation": "更换了阀门",
                                             "result": "已恢复供水"}, follow_redirects=False)
    assert sent.status_code == 303
    page = site.client.get(f"/tickets/{site.ticket_id}").text
    assert 'id="pending-reply"' in page and "更换了阀门" in page and "reply-review" not in page
    site.sign_in("reviewer")
    page = site.client.get(f"/tickets/{site.ticket_id}").text
    token = csrf_of(page)
    assert "回复待审核" in page and 'action="/tickets/%d/reply-review"' % site.ticket_id in page
    assert site.client.post(f"/tickets/{site.ticket_id}/reply-review",
                            data={"csrf_token": token, "decision": "return"}).status_code == 422  # needs a reason
    approved = site.client.post(f"/tickets/{site.ticket_id}/reply-review",
                                data={"csrf_token": token, "decision": "approve"}, follow_redirects=False)
    assert approved.status_code == 303
    with site.session_factory() as session:
        assert service.get_ticket(session, site.ticket_id).status == "replied"
    assert site.client.post(url, data={"csrf_token": token, "action": "callback",
                                       "callback_result": "满意"}).status_code == 403  # reviewers review


def test_copying_text_and_classifying_go_into_the_ticket_and_its_history(site):
    site.sign_in("operator")
    token = csrf_of(site.client.get(f"/tickets/{site.ticket_id}").text)
    copied = site.client.post(f"/tickets/{site.ticket_id}/copy",
                              data={"csrf_token": token, "field": "address", "text": " 연길시  건설가 5번지 "},
                              follow_redirects=False)
    assert copied.status_code == 303
    assert site.client.post(f"/tickets/{site.ticket_id}/copy",
                            data={"csrf_token": token, "field": "level", "text": "1"}).status_code == 422
    classified = site.client.post(f"/tickets/{site.ticket_id}/classify", data={
        "csrf_token": token, "request_type": "求助", "topic": "供水", "level": "1"}, follow_redirects=False)
    assert classified.status_code == 303
    with site.session_factory() as session:
        ticket = service.get_ticket(session, site.ticket_id)
        assert (ticket.address, ticket.request_type, ticket.topic, ticket.level) == ("연길시 건설가 5번지", "求助", "供水", 1)
    actions = history_actions(site, site.ticket_id)
    assert ("话务员小王", "edit", "changed: address") in actions
    assert ("话务员小王", "edit", "changed: request_type, topic") in actions
    assert ("话务员小王", "override_level", "level 2 -> 1: call review") in actions
    site.sign_in("water")
    token = csrf_of(site.client.get(f"/tickets/{site.ticket_id}").text)
    assert site.client.post(f"/tickets/{site.ticket_id}/copy", data={
        "csrf_token": token, "field": "content", "text": "x"}).status_code == 403


def test_review_queue_lists_calls_by_need(site):
    with site.session_factory.begin() as session:
        draft = service.save_draft(session, "d" * 32, {"content": "停水"}, rules=service.TicketRules.default(),
                                   caller="1002")
        service.mark_incomplete(session, "d" * 32, "caller hung up at main:ask_name")
        draft_id = draft.id
    site.sign_in("operator")
    page = site.client.get("/review").text
    assert re.findall(r'data-ticket="(\d+)" data-reason="(\w+)"', page) == [
        (str(draft_id), "incomplete_draft")]  # the other call's transcript is confident (71 %)
    api = site.client.get("/api/review-queue").json()
    assert api["total"] == 1 and api["items"][0]["reason"] == "incomplete_draft"


def test_english_switch(site):
    site.sign_in("operator")
    response = site.client.get("/language/en?back=/queue")
    assert response.status_code == 200 and "Ticket queue" in response.text and '<html lang="en">' in response.text
    assert "工单队列" in site.client.get("/language/zh?back=/queue").text


def test_callback_attempts_are_listed_with_their_audio_for_the_centre_and_without_it_for_the_unit(site, tmp_path):
    from tests.console.conftest import write_wav
    from tests.tickets.ticket_steps import reply_and_approve, walk
    from tickets import callbacks
    from tickets.callbacks import AttemptResult, CallbackPolicy
    from tickets.calendar import WorkingCalendar
    from tickets.lifecycle import Action

    approved = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Monday morning
    policy, calendar, rules = CallbackPolicy(), WorkingCalendar(), service.TicketRules.default()
    call_wav, reason_wav = tmp_path / "callback.wav", tmp_path / "reason.wav"
    write_wav(call_wav, 2.0)
    write_wav(reason_wav, 0.5)
    with site.session_factory.begin() as session:
        ticket, _ = service.create_ticket(session, {"content": "停水两天了", "phone": "13800001234", "level": 2},
                                          rules=rules, actor="op", now=approved - timedelta(hours=4))
        walk(session, rules, ticket.id, approved - timedelta(hours=4),
             (Action.DISPATCH, 1, {"unit_id": site.units["water"]}), (Action.SIGN, 2, {}), (Action.START, 3, {}))
        reply_and_approve(session, rules, ticket.id, approved)
        ticket_id = ticket.id
    callbacks.schedule_new(site.session_factory, policy, calendar, approved)
    [call] = callbacks.claim_due(site.session_factory, "node-a", policy=policy, calendar=calendar, now=approved,
                                 limit=1)
    with site.session_factory.begin() as session:
        callbacks.finish(session, call.attempt_id, AttemptResult(
            "answered", satisfaction_key="3", reason_ref=str(reason_wav), reason_text="물이 아직 안 나와요",
            recording_ref=str(call_wav)), node="node-a", policy=policy, calendar=calendar, rules=rules,
            now=approved + timedelta(minutes=2))

    site.sign_in("operator")
    page = site.client.get(f"/tickets/{ticket_id}").text
    row = re.search(rf'<tr data-attempt="{call.attempt_id}">(.*?)</tr>', page, re.S).group(1)
    assert "已接听" in row and "不满意 — 물이 아직 안 나와요" in row
    sources = re.findall(r'<audio controls preload="none" src="[^"]*/recordings/([^"]+)"', row)
    assert sources == [f"callback-{call.attempt_id}", f"callback-{call.attempt_id}-reason"]
    played = site.client.get(f"/api/tickets/{ticket_id}/recordings/callback-{call.attempt_id}-reason")
    assert played.status_code == 200 and played.content == reason_wav.read_bytes()

    site.sign_in("water")  # the unit sees that the citizen was called back and the answer, never the audio
    row = re.search(rf'<tr data-attempt="{call.attempt_id}">(.*?)</tr>', site.client.get(f"/tickets/{ticket_id}").text,
                    re.S).group(1)
    assert "不满意" in row and "<audio" not in row
    assert site.client.get(f"/api/tickets/{ticket_id}/recordings/callback-{call.attempt_id}").status_code == 404
