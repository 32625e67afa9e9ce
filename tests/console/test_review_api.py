"""GET /api/tickets/{id}/transcript and word corrections, with a bearer token or the console's session, and
listens of a ticket's recordings written into its history."""
from __future__ import annotations

import re

from tickets import service

from tests.console.conftest import WORDS


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def bearer(site, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {site.tokens[role]}"}


def test_the_transcript_lists_every_word_with_times_confidence_and_no_correction(site):
    document = site.client.get(f"/api/tickets/{site.ticket_id}/transcript", headers=bearer(site, "operator")).json()
    assert [(w["word"], w["start"], w["end"], w["conf"]) for w in document["words"]] == WORDS
    assert [w["index"] for w in document["words"]] == [0, 1, 2, 3, 4]
    assert [w["utterance"] for w in document["words"]] == [0, 0, 0, 0, 1]
    assert all(w["correction"] is None for w in document["words"])
    assert document["text"] == document["corrected_text"] == "수도 단수 민원 입니다 김철수"
    assert (document["language"], document["duration"], document["recording"]) == ("ko", 4.0, "call")
    assert document["confidence"] == round(sum(w[3] for w in WORDS) / 5, 4)
    assert site.client.get(f"/api/tickets/{site.ticket_id}/transcript").status_code == 401
    assert site.client.get(f"/api/tickets/{site.other_unit_ticket_id}/transcript",
                           headers=bearer(site, "operator")).status_code == 404  # it has none


def test_a_correction_keeps_the_recognised_word_and_says_who_and_when(site):
    url = f"/api/tickets/{site.ticket_id}/transcript/corrections"
    saved = site.client.post(url, json={"index": 3, "text": "입니다요"}, headers=bearer(site, "operator"))
    assert saved.status_code == 201
    word = saved.json()
    assert (word["word"], word["correction"]["text"], word["correction"]["by"]) == ("입니다", "입니다요", "话务员小王")
    site.client.post(url, json={"index": 0, "text": ""}, headers=bearer(site, "admin"))  # struck out
    document = site.client.get(f"/api/tickets/{site.ticket_id}/transcript", headers=bearer(site, "water")).json()
    assert document["text"] == "수도 단수 민원 입니다 김철수"           # the recogniser's text is kept
    assert document["corrected_text"] == "단수 민원 입니다요 김철수"
    assert document["words"][0]["correction"]["by"] == "admin"
    assert document["words"][3]["correction"]["at"].startswith("20")


def test_bad_corrections_are_refused_naming_the_field(site):
    url = f"/api/tickets/{site.ticket_id}/transcript/corrections"
    operator = bearer(site, "operator")
    assert site.client.post(url, json={"index": 5, "text": "x"}, headers=operator).json()["detail"][0]["loc"] == [
        "body", "index"]
    assert site.client.post(url, json={"index": -1, "text": "x"}, headers=operator).status_code == 422
    assert site.client.post(url, json={"index": 0, "text": "x" * 201}, headers=operator).status_code == 422
    assert site.client.post(url, json={"index": 0, "text": "x", "by": "someone"}, headers=operator).status_code == 422
    assert site.client.post(url, json={"index": 0, "text": "x"}, headers=bearer(site, "water")).status_code == 403
    assert site.client.post(f"/api/tickets/{site.other_unit_ticket_id}/transcript/corrections",
                            json={"index": 0, "text": "x"}, headers=operator).status_code == 404


def test_the_consoles_session_corrects_with_its_csrf_header_only(site):
    site.sign_in("operator")
    url = f"/api/tickets/{site.ticket_id}/transcript/corrections"
    assert site.client.post(url, json={"index": 1, "text": "단수예요"}).status_code == 403
    token = csrf_of(site.client.get(f"/tickets/{site.ticket_id}").text)
    assert site.client.post(url, json={"index": 1, "text": "단수예요"}, headers={"X-CSRF-Token": token}).status_code == 201
    page = site.client.get(f"/tickets/{site.ticket_id}").text
    assert re.search(r'class="w fixed" data-i="1"[^>]*>단수예요</span>', page)


def test_each_listen_is_in_the_history_once_per_playback(site):
    site.sign_in("operator")
    url = f"/api/tickets/{site.ticket_id}/recordings/call"
    first = site.client.get(url, headers={"Range": "bytes=0-"})
    assert first.status_code == 206 and first.content == site.call_wav.read_bytes()
    site.client.get(url, headers={"Range": "bytes=20000-"})  # seeking in the same playback
    site.client.get(f"/api/tickets/{site.ticket_id}/recordings/request", headers={"Range": "bytes=0-"})
    with site.session_factory() as session:
        listens = [(e.actor, e.note) for e in service.get_ticket(session, site.ticket_id).events
                   if e.action == "listen"]
    assert listens == [("话务员小王", "call: call.wav"), ("话务员小王", "request: request.wav")]
    listing = site.client.get(f"/api/tickets/{site.ticket_id}/recordings", headers=bearer(site, "water")).json()
    assert [(r["name"], r["seconds"]) for r in listing] == [("call", 4.0), ("request", 1.5)]
