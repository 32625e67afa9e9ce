"""Serving recordings over HTTP: a ticket's recordings listed, each file streamed with byte ranges so that a
browser's <audio> element can seek (206 Partial Content, `Accept-Ranges: bytes`, 416 when unsatisfiable).

recordings knows nothing of tickets or users: the application hands `recordings_router` a
`RecordingCatalog` (which files belong to a ticket, for whom, and what to do when someone listens) and the
FastAPI dependency that says who is asking. A catalog that raises LookupError makes the answer 404, which
is also what a user not allowed to see the ticket gets: another unit's ticket does not exist for them.
"""
from __future__ import annotations

import os
import wave
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any, Protocol

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request, status
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from recordings.ranges import RangeNotSatisfiable, parse_range

CHUNK_BYTES = 64 * 1024
MEDIA_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".opus": "audio/ogg"}
# Call audio is personal data: never kept by a shared cache, nor by the browser's disk cache.
CACHE_CONTROL = "private, no-store"


@dataclass(frozen=True)
class RecordingEntry:
    """One recording of a ticket. `name` is its key in URLs (e.g. "call", "request"); `path` may no longer
    exist (deleted by retention), which the listing says instead of hiding the entry."""

    name: str
    label: str
    path: Path


class RecordingCatalog(Protocol):
    def recordings(self, ticket_id: int, viewer: Any) -> list[RecordingEntry]:
        """The ticket's recordings as `viewer` may hear them; LookupError when the ticket does not exist
        or `viewer` may not see it."""
        ...

    def listened(self, ticket_id: int, entry: RecordingEntry, viewer: Any) -> None:
        """`viewer` started listening to `entry` (recorded in the ticket's history)."""
        ...


def wav_seconds(path: Path) -> float | None:
    """Duration of a WAV file from its header, None when it is not a readable WAV."""
    try:
        with wave.open(str(path)) as wav:
            return round(wav.getnframes() / wav.getframerate(), 3)
    except (OSError, EOFError, wave.Error):
        return None


def describe(entry: RecordingEntry, url: str) -> dict[str, Any]:
    """What the listing says about one recording."""
    try:
        size: int | None = entry.path.stat().st_size
    except OSError:
        size = None
    return {"name": entry.name, "label": entry.label, "url": url, "available": size is not None, "bytes": size,
            "seconds": wav_seconds(entry.path) if size is not None else None,
            "media_type": MEDIA_TYPES.get(entry.path.suffix.lower(), "application/octet-stream")}


class FileRangeResponse(Response):
    """A file, whole (200) or one byte range of it (206), streamed in chunks. The file is opened when the
    response is sent and closed on every path (a client that goes away mid-file included); a file that
    vanished in between answers 404."""

    def __init__(self, path: Path, *, range_header: str | None, if_range: str | None = None,
                 media_type: str | None = None) -> None:
        super().__init__(status_code=200, media_type=media_type or MEDIA_TYPES.get(path.suffix.lower()))
        self.path = path
        self.range_header = range_header
        self.if_range = if_range

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            file = await anyio.to_thread.run_sync(open, self.path, "rb")
        except OSError:
            await Response("recording not found", status_code=404, media_type="text/plain")(scope, receive, send)
            return
        try:
            await self._send(file, scope, receive, send)
        finally:
            file.close()

    async def _send(self, file: Any, scope: Scope, receive: Receive, send: Send) -> None:
        stat = os.fstat(file.fileno())
        etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        headers = {"accept-ranges": "bytes", "etag": etag, "cache-control": CACHE_CONTROL,
                   "last-modified": formatdate(stat.st_mtime, usegmt=True)}
        # If-Range: a range only applies to the version of the file the client already has part of.
        header = self.range_header if self.if_range in (None, etag, headers["last-modified"]) else None
        try:
            wanted = parse_range(header, stat.st_size)
        except RangeNotSatisfiable as error:
            headers["content-range"] = error.content_range
            await Response(status_code=416, headers=headers)(scope, receive, send)
            return
        start, length = (0, stat.st_size) if wanted is None else (wanted.start, wanted.length)
        if wanted is not None:
            headers["content-range"] = wanted.content_range
        headers["content-length"] = str(length)
        if self.media_type:
            headers["content-type"] = self.media_type
        await send({"type": "http.response.start", "status": 200 if wanted is None else 206,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
        if scope.get("method") == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await anyio.to_thread.run_sync(file.seek, start)
        remaining = length
        while remaining > 0:
            chunk = await anyio.to_thread.run_sync(file.read, min(CHUNK_BYTES, remaining))
            if not chunk:  # the file shrank under us: end the body short rather than hang
                break
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        if remaining > 0:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def starts_listening(range_header: str | None) -> bool:
    """A request for the start of a file is someone starting to listen; the later requests a browser makes
    while the audio plays or seeks are the same listen."""
    try:
        wanted = parse_range(range_header, 1 << 62)
    except RangeNotSatisfiable:
        return False
    return wanted is None or wanted.start == 0


def recordings_router(catalog: RecordingCatalog, viewer: Callable[..., Any]) -> APIRouter:
    """GET /tickets/{ticket_id}/recordings (the list) and GET/HEAD /tickets/{ticket_id}/recordings/{name}
    (the audio, with ranges). `viewer` is a FastAPI dependency returning who asks (401 is its business)."""
    router = APIRouter(tags=["recordings"])
    Viewer = Depends(viewer)

    def entries(ticket_id: int, who: Any) -> list[RecordingEntry]:
        try:
            return catalog.recordings(ticket_id, who)
        except LookupError as error:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error) or "no such ticket") from error

    @router.get("/tickets/{ticket_id}/recordings")
    def list_recordings(ticket_id: int, request: Request, who: Any = Viewer) -> list[dict[str, Any]]:
        """The ticket's recordings: name, label, whether the audio still exists (retention deletes old
        audio), size, duration and the URL to play it."""
        return [describe(entry, str(request.url_for("play_recording", ticket_id=ticket_id, name=entry.name)))
                for entry in entries(ticket_id, who)]

    @router.api_route("/tickets/{ticket_id}/recordings/{name}", methods=["GET", "HEAD"],
                      response_class=Response, name="play_recording")
    def play_recording(ticket_id: int, name: str, request: Request, who: Any = Viewer) -> Response:
        """The audio, with `Range` support; each listen is recorded in the ticket's history."""
        entry = next((e for e in entries(ticket_id, who) if e.name == name), None)
        if entry is None or not entry.path.is_file():
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no recording {name!r} for this ticket")
        range_header = request.headers.get("range")
        if request.method == "GET" and starts_listening(range_header):
            catalog.listened(ticket_id, entry, who)
        return FileRangeResponse(entry.path, range_header=range_header, if_range=request.headers.get("if-range"))

    return router
