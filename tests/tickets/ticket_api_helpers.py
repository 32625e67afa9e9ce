"""Helpers of the HTTP API tests (the fixtures `app`, `client` and `world` are in conftest.py)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from tickets.models import Ticket

ADMIN_TOKEN = "admin-secret-for-tests"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_ticket(client: Any, world: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Create a ticket as the operator; its detail."""
    response = client.post("/api/tickets", json={"content": "我家停水两天了", "phone": "13800000000", **fields},
                           headers=world["operator"])
    assert response.status_code == 201, response.text
    return response.json()


def count_tickets(app: Any) -> int:
    with app.state.tickets.session_factory() as session:
        return session.scalar(select(func.count()).select_from(Ticket))
