"""Recordings over HTTP: exact bytes for every kind of range (checked against the file), 416, If-Range,
HEAD, listings, 404 for what the catalog hides, and one history line per listen (not per range request)."""
from __future__ import annotations

import os
import wave
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Header, HTTPException
from fastapi.testclient import TestClient

from recordings.serving import RecordingEntry, recordings_router

SECONDS = 6  # 96 044 bytes: more than one 64 KiB chunk
RATE = 8000


def write_wav(path: Path, seconds: float) -> bytes:
    samples = bytes((i * 7 + i // 320) % 256 for i in range(int(seconds * RATE) * 2))  # no repeating pattern
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples)
    return path.read_bytes()


class Catalog:
    """Ticket 7 has a call recording and a request recording that retention deleted; viewer "other-unit"
    may not see ticket 7."""

    def __init__(self, folder: Path) -> None:
        self.call = folder / "call.wav"
        self.data = write_wav(self.call, SECONDS)
        self.listens: list[tuple[int, str, str]] = []

    def recordings(self, ticket_id: int, viewer: Any) -> list[RecordingEntry]:
        if ticket_id != 7 or viewer == "other-unit":
            raise LookupError(f"no ticket with id {ticket_id}")
        return [RecordingEntry("call", "whole call", self.call),
                RecordingEntry("request", "request", self.call.with_name("deleted.wav"))]

    def listened(self, ticket_id: int, entry: RecordingEntry, viewer: Any) -> None:
        self.listens.append((ticket_id, entry.name, viewer))


def who(x_viewer: str = Header("")) -> str:
    if not x_viewer:
        raise HTTPException(401, "who are you?")
    return x_viewer


@pytest.fixture
def served(tmp_path):
    catalog = Catalog(tmp_path)
    app = FastAPI()
    app.include_router(recordings_router(catalog, who), prefix="/api")
    with TestClient(app) as client:
        client.headers["X-Viewer"] = "operator-1"
        yield client, catalog


URL = "/api/tickets/7/recordings/call"


def test_whole_file_without_range_advertises_ranges(served):
    client, catalog = served
    response = client.get(URL)
    assert response.status_code == 200
    assert response.content == catalog.data
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(len(catalog.data))
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize("header, start, end", [
    ("bytes=0-0", 0, 0), ("bytes=0-43", 0, 43), ("bytes=44-1043", 44, 1043), ("bytes=30000-", 30000, None),
    ("bytes=-100", -100, None), ("bytes=-1", -1, None), ("bytes=95000-999999", 95000, None),
    ("bytes=0-", 0, None),
])
def test_each_range_returns_exactly_those_bytes_of_the_file(served, header, start, end):
    client, catalog = served
    data = catalog.data
    response = client.get(URL, headers={"Range": header})
    expected = data[start:] if end is None else data[start:end + 1]
    assert response.status_code == 206
    assert response.content == expected
    first = start % len(data)
    assert response.headers["content-range"] == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
    assert response.headers["content-length"] == str(len(expected))


def test_a_large_range_spans_several_chunks_exactly(served):
    client, catalog = served
    response = client.get(URL, headers={"Range": "bytes=100-95999"})
    assert response.content == catalog.data[100:96000]
    assert client.get(URL, headers={"Range": "bytes=1-"}).content == catalog.data[1:]


@pytest.mark.parametrize("header", ["bytes=96044-", "bytes=999999-", "bytes=-0"])
def test_unsatisfiable_ranges_answer_416_with_the_size(served, header):
    client, catalog = served
    response = client.get(URL, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(catalog.data)}"
    assert response.content == b""


def test_malformed_and_multiple_ranges_get_the_whole_file(served):
    client, catalog = served
    for header in ("bytes=5-2", "lines=1-2", "bytes=0-1,4-5", "bytes=" + "9" * 500):
        response = client.get(URL, headers={"Range": header})
        assert (response.status_code, response.content) == (200, catalog.data), header


def test_if_range_applies_the_range_only_to_the_same_version(served):
    client, catalog = served
    etag = client.head(URL).headers["etag"]
    assert client.get(URL, headers={"Range": "bytes=10-19", "If-Range": etag}).content == catalog.data[10:20]
    stale = client.get(URL, headers={"Range": "bytes=10-19", "If-Range": '"old-version"'})
    assert (stale.status_code, stale.content) == (200, catalog.data)


def test_head_gives_the_headers_without_a_body_and_is_not_a_listen(served):
    client, catalog = served
    response = client.head(URL, headers={"Range": "bytes=0-9"})
    assert response.status_code == 206 and response.headers["content-length"] == "10"
    assert response.content == b"" and catalog.listens == []


def test_one_listen_is_recorded_per_playback_start_not_per_range(served):
    client, catalog = served
    client.get(URL, headers={"Range": "bytes=0-"})       # the browser starts playing
    client.get(URL, headers={"Range": "bytes=24000-"})   # ... and seeks twice
    client.get(URL, headers={"Range": "bytes=32000-"})
    assert catalog.listens == [(7, "call", "operator-1")]
    client.get(URL)                                      # a download of the whole file is a listen too
    assert len(catalog.listens) == 2


def test_the_listing_names_each_recording_with_its_duration_and_whether_it_still_exists(served):
    client, catalog = served
    listing = client.get("/api/tickets/7/recordings").json()
    assert listing == [
        {"name": "call", "label": "whole call", "url": "http://testserver" + URL, "available": True,
         "bytes": len(catalog.data), "seconds": float(SECONDS), "media_type": "audio/wav"},
        {"name": "request", "label": "request", "url": "http://testserver/api/tickets/7/recordings/request",
         "available": False, "bytes": None, "seconds": None, "media_type": "audio/wav"}]


def test_hidden_missing_or_deleted_recordings_are_404_and_nobody_unknown_gets_in(served):
    client, catalog = served
    assert client.get(URL, headers={"X-Viewer": "other-unit"}).status_code == 404
    assert client.get("/api/tickets/7/recordings", headers={"X-Viewer": "other-unit"}).status_code == 404
    assert client.get("/api/tickets/8/recordings/call").status_code == 404
    assert client.get("/api/tickets/7/recordings/request").status_code == 404  # deleted by retention
    assert client.get("/api/tickets/7/recordings/..%2Fcall").status_code == 404
    assert client.get(URL, headers={"X-Viewer": ""}).status_code == 401
    assert client.get("/api/tickets/x/recordings").status_code == 422
    assert catalog.listens == []


def test_a_file_deleted_between_lookup_and_sending_is_404_not_500(served, monkeypatch):
    client, catalog = served
    real_is_file = Path.is_file

    def vanishing(path: Path) -> bool:
        found = real_is_file(path)
        if path == catalog.call and found:
            os.unlink(path)  # retention got there just after the check
        return found

    monkeypatch.setattr(Path, "is_file", vanishing)
    response = client.get(URL)
    assert response.status_code == 404
