"""The console's pages through HTTP (no browser): sign-in, CSRF, roles and units, the queue's filters, the
ticket page's forms going through the ticket service's rules."""
from __future__ import annotations

import re


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def test_pages_need_a_session_and_sign_in_redirects_back(site):
    response = site.client.get("/queue?status=received", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/sign-in?next=/queue%3Fstatus%3Dreceived"
    wrong = site.client.post("/sign-in", data={"token": "nope", "next": "/queue"})
    assert wrong.status_code == 401 and "令牌无效" in wrong.text
    site.sign_in("operator")
    page = site.client.get("/queue")
    assert page.status_code == 200 and "话务员小王" in page.text
