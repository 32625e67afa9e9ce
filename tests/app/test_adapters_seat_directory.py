"""DatabaseSeatDirectory (three_way's SeatDirectory) on SQLite and PostgreSQL: seats in ringing order with
their announcement languages, the unit's hours; edits apply at once; unreadable hours ring nobody."""
from __future__ import annotations

from datetime import time

from test_adapters_tickets import session_factory  # noqa: F401 - the real-database fixture

from app.adapters.seat_directory import DatabaseSeatDirectory
from three_way.duty import Seat
from tickets import service


def test_seats_in_order_with_their_languages_and_the_units_hours(session_factory):  # noqa: F811
    directory = DatabaseSeatDirectory(session_factory)
    with session_factory.begin() as session:
        unit = service.create_unit(session, {"name": "自来水公司", "seat_numbers": ["8101", "8102"],
                                             "seat_languages": {"8102": "ko"}, "working_hours": "09:00-17:00"})
        unit_id = unit.id
    seats = directory.seats_of("自来水公司")
    assert seats.seats == (Seat("8101", "zh"), Seat("8102", "ko"))
    assert seats.hours.contains(time(9, 0)) and not seats.hours.contains(time(8, 59))
    assert directory.seats_of("没有这个单位") is None
    with session_factory.begin() as session:
        service.update_unit(session, unit_id, {"seat_numbers": ["8102"], "working_hours": "25:00-26:00"})
    seats = directory.seats_of("自来水公司")
    assert seats.seats == (Seat("8102", "ko"),)
    assert not any(seats.hours.contains(time(h, 0)) for h in range(24))  # unreadable: nobody is rung
