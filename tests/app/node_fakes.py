"""A stand-in for the IVR node where a test needs only what the HTTP API reads from it."""
from __future__ import annotations

from typing import Any

from ivr.node import CallRecord


class RegisteredHealth:
    """A healthy node's /api/health answer."""

    def to_dict(self) -> dict[str, Any]:
        return {"registration": "registered", "registration_error": None, "active_calls": 0, "capacity": 10}


class RecordsOnlyNode:
    """What the calls API reads from a node: health, calls in progress, recent records."""

    def __init__(self, records: list[CallRecord]) -> None:
        self.records = records

    def health(self) -> RegisteredHealth:
        return RegisteredHealth()

    def active_calls(self) -> list[CallRecord]:
        return []

    def recent_calls(self) -> list[CallRecord]:
        return self.records
