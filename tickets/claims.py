"""Claiming work rows in the database, one short transaction per row, so several nodes (or a node and its
restart) share a queue without a lock service and each row is worked on exactly once.

The candidates are read first (no lock held); each is then claimed with a conditional UPDATE that repeats
the whole condition that made it a candidate, and worked on in the same transaction as the claim. A claim
that matches no row belonged to someone else (another node, or an event that changed the row meanwhile).
The scheduler's 催办/督办 and the callback attempts (tickets.callbacks) both work this way.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Select, Update
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")


def claim_each(session_factory: sessionmaker[Session], candidates: Select[Any], claim: Callable[[int], Update],
               work: Callable[[Session, int], T | None]) -> list[T]:
    """For each id `candidates` selects: run `claim(id)` (a conditional UPDATE of that one row) and, when it
    changed the row, `work(session, id)` in the same transaction. Returns what `work` returned, None left
    out, in the candidates' order."""
    with session_factory() as session:
        ids = session.scalars(candidates).all()
    done: list[T] = []
    for row_id in ids:
        with session_factory.begin() as session:
            if session.execute(claim(row_id)).rowcount != 1:
                continue
            result = work(session, row_id)
            if result is not None:
                done.append(result)
    return done
