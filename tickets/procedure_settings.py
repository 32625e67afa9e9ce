"""The hotline's choices where the procedures leave room: the 不予受理 reasons an operator picks from, how an
approved reply reaches the citizen, and which reply attachments are accepted. All configuration
([tickets] of the INI file, read by tickets.settings), with defaults a hotline supervisor would expect.

The reasons are a YAML mapping code -> label (tickets/rules/rejection_reasons.yaml, or an administrator's
file); the code is stored on the ticket, the label is what people read. Only `other` takes free text.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

DEFAULT_REJECTION_REASONS = Path(__file__).with_name("rules") / "rejection_reasons.yaml"
OTHER_REASON = "other"
REPLY_CHANNELS = ("phone", "sms", "none")  # none: an operator delivers by hand and records it
MB = 1024 * 1024


class ReasonsError(ValueError):
    """A reasons file that cannot be used; the message names the file."""


def load_rejection_reasons(path: Path = DEFAULT_REJECTION_REASONS) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ReasonsError(f"{path}: {error}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in data.items()):
        raise ReasonsError(f"{path}: expected a mapping of reason codes to labels")
    if OTHER_REASON not in data:
        raise ReasonsError(f"{path}: the reasons must include '{OTHER_REASON}' (the one with free text)")
    return data


def _default_media_types() -> dict[str, tuple[str, ...]]:
    return {"text": ("text/plain", "application/pdf"),
            "audio": ("audio/wav", "audio/x-wav", "audio/mpeg", "audio/ogg", "audio/amr"),
            "image": ("image/jpeg", "image/png", "image/gif", "image/webp"),
            "video": ("video/mp4", "video/webm", "video/quicktime")}


def _default_max_bytes() -> dict[str, int]:
    return {"text": 2 * MB, "audio": 20 * MB, "image": 10 * MB, "video": 100 * MB}


@dataclass(frozen=True)
class ProcedureSettings:
    rejection_reasons: dict[str, str] = field(default_factory=load_rejection_reasons)
    reply_channel: str = "phone"  # the callback call reads an approved reply to the citizen
    attachments_dir: Path = Path("var/attachments")
    attachment_media_types: dict[str, tuple[str, ...]] = field(default_factory=_default_media_types)
    attachment_max_bytes: dict[str, int] = field(default_factory=_default_max_bytes)

    def __post_init__(self) -> None:
        if self.reply_channel not in REPLY_CHANNELS:
            raise ValueError(f"reply_channel must be one of {', '.join(REPLY_CHANNELS)}, got {self.reply_channel!r}")
        if OTHER_REASON not in self.rejection_reasons:
            raise ValueError(f"rejection_reasons must include '{OTHER_REASON}'")

    def rejection_note(self, reason: str | None, text: str | None) -> str:
        """The history note of a 不予受理 with `reason` (a code) and free `text` (only with 'other'); raises
        ValueError naming the field the operator got wrong."""
        if reason not in self.rejection_reasons:
            raise ValueError(f"rejection_reason: one of {', '.join(self.rejection_reasons)} is required")
        text = (text or "").strip()
        if reason == OTHER_REASON and not text:
            raise ValueError("note: the reason 'other' needs the reason in words")
        if reason != OTHER_REASON and text:
            raise ValueError(f"note: free text goes with the reason '{OTHER_REASON}' only; "
                             f"'{reason}' is {self.rejection_reasons[reason]}")
        return text if reason == OTHER_REASON else self.rejection_reasons[reason]
