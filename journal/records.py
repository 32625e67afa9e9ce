"""What the journal holds about one call, as typed records, and their encoding.

A call's journal is a sequence of records appended in order; `fold` turns them into the call's current
state (`JournaledCall`). Records are facts that happened and are never changed: the answers the caller gave
(`DraftSaved`, `Submitted`), how the call left the flow (`Submitted`, `LeftIncomplete`), and how the ticket
database followed (`DatabaseNumbered`, `DatabaseMissed`, `Written`).

Field values are what the flows collect: text, numbers, booleans, None, and tz-aware datetimes (encoded as
`{"$datetime": iso}` so they come back as datetimes, not strings).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar, Union


class RecordError(ValueError):
    """A stored record that cannot be decoded (unknown kind, missing or mistyped field)."""


@dataclass(frozen=True)
class DraftSaved:
    """The caller gave answers (draft fields such as content, recording_ref, caller_name, language)."""

    kind: ClassVar[str] = "draft"
    call_id: str
    caller: str
    fields: Mapping[str, Any]
    at: datetime


@dataclass(frozen=True)
class Submitted:
    """The caller finished the intake: the last fields, and the number and deadline the caller was told.

    `number_source` says where the number came from: "database" (the ticket database gave it), "reserved"
    (taken from the node's block of reserved numbers while the database was away) or "none" (no number was
    available; the caller was told it would come by callback, and the database assigns one on replay)."""

    kind: ClassVar[str] = "submit"
    call_id: str
    caller: str
    fields: Mapping[str, Any]
    at: datetime
    number: str = ""
    number_source: str = "database"
    deadline: datetime | None = None


@dataclass(frozen=True)
class LeftIncomplete:
    """The call left the flow before submitting (hang-up, transfer, node restart): the draft stays."""

    kind: ClassVar[str] = "incomplete"
    call_id: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class DatabaseNumbered:
    """The ticket database created the call's draft with this number while the call was live."""

    kind: ClassVar[str] = "db_numbered"
    call_id: str
    number: str
    at: datetime


@dataclass(frozen=True)
class DatabaseMissed:
    """A write of this call to the ticket database failed: from here the call is kept by the journal only
    and the replayer writes it once the database is back."""

    kind: ClassVar[str] = "db_missed"
    call_id: str
    error: str
    at: datetime


@dataclass(frozen=True)
class Written:
    """The ticket database holds everything the journal holds for the call (during the call or by replay).
    `number` is the ticket's number, '' when the call left nothing to write (no request was given)."""

    kind: ClassVar[str] = "written"
    call_id: str
    number: str
    by: str
    at: datetime


Record = Union[DraftSaved, Submitted, LeftIncomplete, DatabaseNumbered, DatabaseMissed, Written]
RECORD_TYPES: dict[str, type[Record]] = {cls.kind: cls for cls in  # type: ignore[misc]
                                         (DraftSaved, Submitted, LeftIncomplete, DatabaseNumbered,
                                          DatabaseMissed, Written)}
_DATETIME = "$datetime"


def encode(record: Record) -> str:
    """The record's body as JSON (its kind and call id are stored beside it)."""
    return encode_values({f.name: getattr(record, f.name) for f in fields(record) if f.name != "call_id"})


def decode(kind: str, call_id: str, body: str) -> Record:
    """Raises RecordError naming what is wrong."""
    record_type = RECORD_TYPES.get(kind)
    if record_type is None:
        raise RecordError(f"unknown record kind {kind!r}")
    try:
        return record_type(call_id=call_id, **decode_values(body))
    except (TypeError, ValueError) as error:
        raise RecordError(f"{kind} record of call {call_id}: {error}") from None


def encode_values(values: Mapping[str, Any]) -> str:
    """Field values as JSON, datetimes tagged (also the body of an attachment, see journal.store)."""
    return json.dumps(values, ensure_ascii=False, sort_keys=True, default=_encode_value)


def decode_values(body: str) -> dict[str, Any]:
    """ValueError when `body` is not a JSON object."""
    values = json.loads(body, object_hook=_decode_object)
    if not isinstance(values, dict):
        raise ValueError(f"expected an object, got {type(values).__name__}")
    return values


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the journal stores tz-aware datetimes only")
        return {_DATETIME: value.isoformat()}
    raise TypeError(f"{type(value).__name__} value {value!r} cannot be journaled")


def _decode_object(data: dict[str, Any]) -> Any:
    if set(data) == {_DATETIME}:
        return datetime.fromisoformat(data[_DATETIME])
    return data


@dataclass
class JournaledCall:
    """A call's state folded from its records, in order."""

    call_id: str
    caller: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None  # when the caller gave the first answer
    outcome: str | None = None          # None while the call is in the flow | "submitted" | "incomplete"
    reason: str = ""                    # why it left incomplete
    ended_at: datetime | None = None    # when it submitted or left
    number: str = ""                    # the number the database gave or the caller was told
    number_source: str = ""             # as Submitted.number_source; "database" for a live draft's number
    deadline: datetime | None = None    # the deadline the caller was told
    database_missed: bool = False
    written_at: datetime | None = None
    written_by: str = ""

    @property
    def needs_writing(self) -> bool:
        """Ended and not yet known to be in the ticket database."""
        return self.outcome is not None and self.written_at is None


def fold(call_id: str, records: list[Record]) -> JournaledCall:
    """The call's state after `records` (in the order they were appended)."""
    call = JournaledCall(call_id)
    for record in records:
        if isinstance(record, (DraftSaved, Submitted)):
            call.caller = record.caller or call.caller
            call.fields.update(record.fields)
            call.started_at = call.started_at or record.at
        if isinstance(record, Submitted):
            call.outcome, call.ended_at, call.reason = "submitted", record.at, ""
            call.number, call.number_source, call.deadline = record.number, record.number_source, record.deadline
        elif isinstance(record, LeftIncomplete):
            if call.outcome != "submitted":  # a submitted call stays submitted whatever ends it afterwards
                call.outcome, call.ended_at, call.reason = "incomplete", record.at, record.reason
        elif isinstance(record, DatabaseNumbered):
            call.number, call.number_source = record.number, "database"
        elif isinstance(record, DatabaseMissed):
            call.database_missed = True
        elif isinstance(record, Written):
            call.written_at, call.written_by = record.at, record.by
            call.number = record.number or call.number
    return call
