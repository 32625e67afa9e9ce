"""HTTP byte ranges (RFC 9110 §14): the `Range: bytes=...` request header parsed against a file's size.

A browser seeking in an <audio> element asks for `bytes=N-`; other clients use `bytes=A-B` and suffixes
`bytes=-N` (the last N bytes). One range is served as 206 Partial Content. Everything the RFC lets a server
ignore is ignored (the whole file is then served with 200): another unit than bytes, a malformed or
oversized header, a range whose last byte is before its first, and requests for several ranges at once
(multipart answers buy a browser nothing). A well-formed range that starts beyond the end of the file, or
a zero-length suffix, is unsatisfiable: 416 with `Content-Range: bytes */size`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEADER_LENGTH = 200  # a real Range header for one range is short; longer ones are not parsed
_SPEC = re.compile(r"^(?:(?P<first>[0-9]{1,19})-(?P<last>[0-9]{0,19})|-(?P<suffix>[0-9]{1,19}))$")


class RangeNotSatisfiable(ValueError):
    """The range lies outside the file: answer 416 with `content_range`."""

    def __init__(self, size: int) -> None:
        super().__init__(f"range not satisfiable for a file of {size} bytes")
        self.size = size

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


@dataclass(frozen=True)
class ByteRange:
    """Bytes `start` to `end` inclusive of a file of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range `header` asks for within a file of `size` bytes, or None to serve the whole file.

    Raises RangeNotSatisfiable for a well-formed range that selects nothing of the file."""
    if header is None or len(header) > MAX_HEADER_LENGTH:
        return None
    unit, separator, specs = header.partition("=")
    if not separator or unit.strip().lower() != "bytes" or "," in specs:
        return None
    match = _SPEC.match(specs.strip())
    if match is None:
        return None
    if match["suffix"] is not None:
        wanted = int(match["suffix"])
        if wanted == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(size - wanted, 0), size - 1, size)
    first = int(match["first"])
    last = int(match["last"]) if match["last"] else None
    if last is not None and last < first:
        return None  # invalid: the RFC says to ignore the header
    if first >= size:
        raise RangeNotSatisfiable(size)
    return ByteRange(first, size - 1 if last is None else min(last, size - 1), size)
