"""The notifications page: a unit sees its 督办 and marks it read, another unit sees nothing of it, the
centre sees the supervision list, reviewers are refused."""
from __future__ import annotations

import re

from tickets import service
from tickets.lifecycle import Action
from tickets.scheduler import Scheduler
from tickets.service import TicketRules


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def test_a_unit_reads_its_supervision_notice_and_the_centre_sees_the_list(site):
    # the roads ticket is 8 days old at level 3 (7 days): once dispatched to the roads unit, 督办 is the unit's
    with site.session_factory.begin() as session:
        service.transition(session, site.other_unit_ticket_id, Action.DISPATCH, actor="op",
                           rules=TicketRules.default())
    assert [f.kind for f in Scheduler(site.session_factory).run_once().supervised] == ["response"]
    client = site.sign_in("roads")
    page = client.get("/notifications")
    assert page.status_code == 200 and 'href="/notifications"' in page.text  # in the header's navigation
    [notification_id] = re.findall(r'data-notification="(\d+)" data-kind="supervise" class="row-near"', page.text)
    assert "1 条未读" in page.text and "督办 · 响应时限" in page.text
    done = client.post(f"/notifications/{notification_id}/read", data={"csrf_token": csrf_of(page.text)},
                       follow_redirects=False)
    assert done.status_code == 303
    after = client.get("/notifications").text
    assert "住建局值班 已读" in after and "0 条未读" in after
    assert 'id="supervision"' not in after  # the list is the centre's and the supervisor's

    other = site.sign_in("water").get("/notifications")
    assert f'data-notification="{notification_id}"' not in other.text
    assert site.client.post(f"/notifications/{notification_id}/read",
                            data={"csrf_token": csrf_of(other.text)}).status_code == 404

    centre = site.sign_in("operator").get("/notifications").text
    assert f'data-ticket="{site.other_unit_ticket_id}"' in re.search(r'id="supervision".*', centre, re.S).group(0)
    ticket_page = site.client.get(f"/tickets/{site.other_unit_ticket_id}").text
    assert re.search(r'id="ticket-supervised">督办 \d{4}-\d\d-\d\d \d\d:\d\d<', ticket_page)
    assert 'id="ticket-evasion"' not in ticket_page  # once is not 推诿
    assert site.sign_in("reviewer").get("/notifications").status_code == 403
