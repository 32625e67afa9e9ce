"""SIP header text rewritten into the one form pyVoIP's parser reads, before it reads it.

RFC 3261 lets a header be folded over several lines, be spelled in compact form (`v:`, `f:`, `t:`, `i:`,
`m:`, `l:`, `c:`...), in any letter case, with blanks around the colon. pyVoIP splits header lines on ": "
and looks headers up by exact name, so a phone that sends `i: ...` or `Contact:` on two lines (RFC 4475's
esc01) was refused with 400, or worse, its header silently ignored. Here the header part of a datagram is
unfolded and each line becomes `Name: value` with the long name in its usual spelling; the body is left
exactly as it came.
"""
from __future__ import annotations

COMPACT_FORMS = {"v": "Via", "f": "From", "t": "To", "i": "Call-ID", "m": "Contact", "l": "Content-Length",
                 "c": "Content-Type", "k": "Supported", "s": "Subject", "e": "Content-Encoding", "o": "Event",
                 "r": "Refer-To", "b": "Referred-By", "u": "Allow-Events", "x": "Session-Expires"}
USUAL_SPELLING = {name.lower(): name for name in (
    "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Length", "Content-Type", "Max-Forwards",
    "Record-Route", "Route", "Expires", "Allow", "Supported", "Require", "WWW-Authenticate", "Authorization",
    "Proxy-Authenticate", "Proxy-Authorization", "User-Agent", "Server", "Warning", "Subject", "Accept")}


def canonical(raw: bytes) -> bytes:
    """The datagram with unfolded, long-named, `Name: value` header lines (the start line and body as sent)."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    out = [lines[0]]
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and len(out) > 1:  # a folded continuation of the previous header
            out[-1] = out[-1].rstrip() + b" " + line.strip()
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            out.append(line)
            continue
        key = name.strip().decode("latin-1").lower()
        spelled = COMPACT_FORMS.get(key) or USUAL_SPELLING.get(key)
        out.append((spelled.encode() if spelled else name.strip()) + b": " + value.strip())
    return b"\r\n".join(out) + separator + body
