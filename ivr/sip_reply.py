"""SIP responses built from the request's own header lines (RFC 3261 §8.2.6.2).

pyVoIP rebuilds Via, From and To from its parse (dropping parameters it does not know, appending a fresh
To tag even to in-dialog requests, and copying the caller's Contact into its own 180) and cannot answer a
request it failed to parse. Here the Via lines, From, To, Call-ID and CSeq are copied verbatim, a To tag is
added only when the request had none, and only what a response needs is looked at: a request whose body or
exotic headers pyVoIP rejects still gets its 400, and one missing those five headers gets nothing (there is
nowhere to send an answer).
"""
from __future__ import annotations

import re
from collections.abc import Iterable

# RFC 3261 §7.3.3 compact forms of the headers a response copies.
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id"}
_COPIED = ("via", "from", "to", "call-id", "cseq")
_TAG = re.compile(r";\s*tag\s*=", re.IGNORECASE)


def request_headers(raw: bytes) -> dict[str, list[str]] | None:
    """The header lines of a request that a response copies ({lower-case name: [values]}), None if the
    datagram is not a request or lacks one of them."""
    first_line = raw.split(b"\r\n", 1)[0]
    if first_line.startswith(b"SIP/") or len(first_line.split(b" ")) != 3:
        return None
    return dialog_headers(raw)


def dialog_headers(raw: bytes) -> dict[str, list[str]] | None:
    """Via, From, To, Call-ID and CSeq of any SIP message, verbatim ({lower-case name: [values]}); None if
    one of them is missing."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    found: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name = name.strip().lower()
        name = _COMPACT.get(name, name)
        if name in _COPIED:
            found.setdefault(name, []).append(value.strip())
    if any(not found.get(name) for name in _COPIED):
        return None
    return found


def has_to_tag(to_value: str) -> bool:
    return bool(_TAG.search(to_value))


def build_response(request: bytes | dict[str, list[str]], status: int, reason: str, *, to_tag: str | None = None,
                   headers: Iterable[str] = (), body: str = "", content_type: str = "application/sdp") -> str | None:
    """The response text (None when the request cannot be answered). `to_tag` is added to To unless the
    request's To already has a tag (an in-dialog request keeps the dialog's tag); `headers` are extra whole
    lines (Contact, Allow, Warning...)."""
    copied = request_headers(request) if isinstance(request, bytes) else request
    if copied is None:
        return None
    to = copied["to"][0]
    if to_tag is not None and not has_to_tag(to):
        to = f"{to};tag={to_tag}"
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {via}" for via in copied["via"]]
    lines += [f"From: {copied['from'][0]}", f"To: {to}", f"Call-ID: {copied['call-id'][0]}",
              f"CSeq: {copied['cseq'][0]}", *headers]
    if body:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body.encode())}")
    return "\r\n".join(lines) + "\r\n\r\n" + body
