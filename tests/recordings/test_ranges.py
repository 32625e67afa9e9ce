"""Parsing `Range: bytes=...` against a file size: what is served, what is ignored, what is unsatisfiable."""
from __future__ import annotations

import pytest

from recordings.ranges import ByteRange, RangeNotSatisfiable, parse_range

SIZE = 1000


@pytest.mark.parametrize("header, start, end", [
    ("bytes=0-99", 0, 99),
    ("bytes=100-", 100, 999),          # open-ended: what a seeking browser sends
    ("bytes=0-", 0, 999),
    ("bytes=-1", 999, 999),            # suffix: the last byte
    ("bytes=-250", 750, 999),
    ("bytes=-5000", 0, 999),           # a suffix longer than the file is the whole file
    ("bytes=990-5000", 990, 999),      # a last byte past the end is clipped
    ("bytes=999-999", 999, 999),
    ("BYTES = 5-9", 5, 9),             # unit is case-insensitive, spaces around '=' tolerated
])
def test_one_range_is_resolved_against_the_size(header, start, end):
    wanted = parse_range(header, SIZE)
    assert wanted == ByteRange(start, end, SIZE)
    assert wanted.length == end - start + 1
    assert wanted.content_range == f"bytes {start}-{end}/{SIZE}"


@pytest.mark.parametrize("header", [
    None, "", "bytes", "bytes=", "items=0-5", "bytes=5", "bytes=a-b", "bytes=9-3", "bytes=-", "bytes=--5",
    "bytes=0-1,5-9",                   # several ranges: served whole (the RFC lets a server ignore them)
    "bytes=1" + "0" * 30 + "-",        # absurd numbers are not parsed
    "bytes=0-" + "9" * 300,            # oversized header
    "bytes=\x00-5", "bytes=１-２",       # control characters and full-width digits
])
def test_malformed_or_multiple_ranges_are_ignored(header):
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize("header, size", [
    ("bytes=1000-", 1000), ("bytes=1000-2000", 1000), ("bytes=-0", 1000), ("bytes=0-", 0), ("bytes=-5", 0),
])
def test_ranges_beyond_the_file_are_unsatisfiable(header, size):
    with pytest.raises(RangeNotSatisfiable) as raised:
        parse_range(header, size)
    assert raised.value.content_range == f"bytes */{size}"
