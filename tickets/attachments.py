"""Files attached to a reply (文字、语音、图片、视频), stored on disk like the call recordings: under the
configured folder, one folder per ticket, never overwritten (the name carries the content's SHA-256), written
to a temporary name and renamed so a reader never sees half a file. The database keeps the reference, kind,
media type, size and hash.

What is accepted is configuration (ProcedureSettings): the media types of each kind and the largest size.
A file is read in chunks and refused as soon as it passes its limit, so a huge upload never fills the disk.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from tickets import service
from tickets.models import ReplyAttachment, utcnow
from tickets.procedure_settings import ProcedureSettings
from tickets.replies import get_reply

_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)


class UnsupportedMediaType(ValueError):
    """The media type is not one the hotline accepts as a reply attachment (the API's 415)."""


class TooLarge(ValueError):
    """The file is larger than its kind allows (the API's 413)."""


def kind_of(media_type: str, settings: ProcedureSettings) -> str:
    media_type = media_type.split(";")[0].strip().lower()
    for kind, types in settings.attachment_media_types.items():
        if media_type in types:
            return kind
    accepted = ", ".join(t for types in settings.attachment_media_types.values() for t in types)
    raise UnsupportedMediaType(f"{media_type or 'no media type'} is not accepted; accepted: {accepted}")


def safe_filename(filename: str) -> str:
    """The client's name reduced to letters, digits, dots and dashes (no folders, no leading dot)."""
    name = _UNSAFE.sub("_", Path(filename.replace("\\", "/")).name).lstrip(".")
    return name[:120] or "attachment"


def store_attachment(session: Session, reply_id: int, *, filename: str, media_type: str, chunks: Iterable[bytes],
                     settings: ProcedureSettings, now: datetime | None = None) -> ReplyAttachment:
    """Store one attachment of a reply still under review (attachments are part of what is reviewed)."""
    reply = get_reply(session, reply_id)
    if reply.status != "pending_review":
        raise service.Conflict(f"reply {reply_id} is {reply.status}: attachments go with a reply under review")
    kind = kind_of(media_type, settings)
    limit = settings.attachment_max_bytes[kind]
    folder = Path(settings.attachments_dir) / reply.ticket.number
    folder.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"{kind} attachments are at most {limit} bytes")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise ValueError("file: the attachment is empty")
        name = safe_filename(filename)
        final = folder / f"reply-{reply.id}-{digest.hexdigest()[:16]}-{name}"
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    attachment = ReplyAttachment(reply_id=reply.id, kind=kind, filename=name,
                                 media_type=media_type.split(";")[0].strip().lower(), size=size,
                                 sha256=digest.hexdigest(), storage_ref=str(final), created_at=now or utcnow())
    session.add(attachment)
    session.flush()
    return attachment


def get_attachment(session: Session, reply_id: int, attachment_id: int) -> ReplyAttachment:
    attachment = session.get(ReplyAttachment, attachment_id)
    if attachment is None or attachment.reply_id != reply_id:
        raise service.NotFound(f"reply {reply_id} has no attachment {attachment_id}")
    return attachment
