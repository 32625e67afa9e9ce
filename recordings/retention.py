"""How long call audio is kept, and deleting it when that time is over.

The policy keeps audio a number of days per category (the application uses the ticket's request type: a
report of wrongdoing may be kept longer than a consultation) with a default for the rest; no number means
kept for ever. recordings knows nothing of tickets: the application says which files belong to which
category and records what was deleted where it keeps its history.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)
AUDIO_SUFFIXES = (".wav", ".mp3", ".ogg", ".opus")


@dataclass(frozen=True)
class RetentionPolicy:
    default_days: int | None = None  # None: keep for ever
    days_by_category: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, days in [("default", self.default_days), *self.days_by_category.items()]:
            if days is not None and (not isinstance(days, int) or days < 1):
                raise ValueError(f"{name}: keep audio at least 1 day, got {days!r}")

    def keep_days(self, category: str | None) -> int | None:
        if category is not None and category in self.days_by_category:
            return self.days_by_category[category]
        return self.default_days

    def expired(self, recorded_at: datetime, category: str | None, now: datetime) -> bool:
        days = self.keep_days(category)
        return days is not None and recorded_at + timedelta(days=days) <= now

    @property
    def shortest_days(self) -> int | None:
        """Nothing recorded more recently than this many days ago can have expired (None: nothing expires)."""
        values = [days for days in (self.default_days, *self.days_by_category.values()) if days is not None]
        return min(values) if values else None

    @property
    def longest_days(self) -> int | None:
        """Audio older than this has expired under every category (None when something is kept for ever)."""
        if self.default_days is None:
            return None
        return max(self.default_days, *self.days_by_category.values())


def delete_audio(paths: Iterable[Path]) -> list[Path]:
    """Delete the files that exist; the list says which were deleted by this call (a file already gone,
    e.g. deleted by another node sharing the storage, is not reported twice)."""
    deleted = []
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:
            log.warning("retention: could not delete %s: %s", path, error)
            continue
        deleted.append(path)
    return deleted


def audio_older_than(root: Path, cutoff: datetime) -> list[Path]:
    """Audio files under `root` last written before `cutoff` (for calls that never became a ticket)."""
    limit = cutoff.timestamp()
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.suffix.lower() in AUDIO_SUFFIXES:
                try:
                    if path.stat().st_mtime < limit:
                        found.append(path)
                except FileNotFoundError:
                    continue
    return sorted(found)
