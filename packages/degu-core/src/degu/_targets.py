"""Request targets: the origin-form grammar and percent-coding of path components.

Pure functions over ``bytes`` and ``str``: no socket calls here.  The grammar
is RFC 9112 §3.2.1 origin-form with RFC 3986 §3.3/§3.4 characters:

    origin-form = absolute-path [ "?" query ]
    segment     = *pchar
    pchar       = unreserved / pct-encoded / sub-delims / ":" / "@"
    query       = *( pchar / "/" / "?" )

Degu then decodes each path segment (RFC 3986 §2.1) to a ``str`` as UTF-8 and
refuses a segment whose decoded form could change what the path means to an
application: one containing ``/``, NUL or another control character, one equal
to ``..``, or bytes that are not UTF-8 (docs/explanation/rgi.rst says why).
The query is never decoded: its encoding is the application's business.
"""

from __future__ import annotations

from degu._errors import ParseError

__all__ = [
    "PCHARS",
    "QUERY_CHARS",
    "check_percents",
    "check_target",
    "decode_segment",
    "encode_segment",
    "split_target",
]

_ALPHA = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DIGIT = b"0123456789"
#: RFC 3986 §2.3 unreserved.
UNRESERVED = _ALPHA + _DIGIT + b"-._~"
#: RFC 3986 §2.2 sub-delims.
SUB_DELIMS = b"!$&'()*+,;="
#: RFC 3986 §3.3 pchar, with ``%`` standing for the start of a pct-encoded octet.
PCHARS = UNRESERVED + SUB_DELIMS + b":@%"
#: RFC 3986 §3.3 path-abempty characters (segments and their separators).
PATH_CHARS = PCHARS + b"/"
#: RFC 3986 §3.4 query characters.
QUERY_CHARS = PCHARS + b"/?"
_HEX = b"0123456789abcdefABCDEF"
# Characters an encoded segment keeps as they are: pchar minus "%" (RFC 3986
# §2.4: encode exactly what would otherwise be read as a delimiter or escape).
_SEGMENT_SAFE = frozenset((UNRESERVED + SUB_DELIMS + b":@").decode())
# C0 controls and DEL (RFC 5234 CTL): refused in a decoded segment, so an
# application never copies CR, LF or an escape sequence into a header or a log.
_CONTROLS = frozenset(chr(c) for c in [*range(0x20), 0x7F])


def check_percents(src: bytes, what: str) -> None:
    """Every ``%`` starts an RFC 3986 §2.1 pct-encoded octet (two hex digits)."""
    i = src.find(b"%")
    while i >= 0:
        pair = src[i + 1 : i + 3]
        if len(pair) != 2 or pair.translate(None, _HEX):
            raise ParseError(400, f"bad percent-encoding in {what}: {src!r}")
        i = src.find(b"%", i + 3)


def check_target(src: bytes) -> int:
    """Check an origin-form target; return the index of its ``?`` or -1.

    Raises ``ParseError`` (400) naming the part (path or query) that is bad.
    """
    if src[:1] != b"/":
        raise ParseError(400, f"target does not start with '/': {src!r}")
    q = src.find(b"?")
    path = src if q < 0 else src[:q]
    if path.translate(None, PATH_CHARS):
        raise ParseError(400, f"bad bytes in path: {path!r}")
    if b"%" in path:
        check_percents(path, "path")
    if q >= 0:
        query = src[q + 1 :]
        if query.translate(None, QUERY_CHARS):
            raise ParseError(400, f"bad bytes in query: {query!r}")
        if b"%" in query:
            check_percents(query, "query")
    return q


def decode_segment(segment: str) -> str:
    """Percent-decode one path segment already checked by ``check_target``.

    Raises ``ParseError`` (400) when the decoded segment is not UTF-8, is
    ``..``, or contains ``/``, NUL or another control character.
    """
    if "%" not in segment:
        return segment
    raw = bytearray()
    parts = segment.split("%")
    raw += parts[0].encode()
    for part in parts[1:]:
        raw.append(int(part[:2], 16))
        raw += part[2:].encode()
    try:
        text = raw.decode("utf-8")  # strict: overlong forms and surrogates fail
    except UnicodeDecodeError:
        raise ParseError(400, f"path segment is not UTF-8: {segment!r}") from None
    if "/" in text or text == "..":
        raise ParseError(400, f"path segment decodes to {text!r}: {segment!r}")
    if not _CONTROLS.isdisjoint(text):
        raise ParseError(400, f"path segment decodes to a control: {segment!r}")
    return text


def split_target(src: bytes, q: int) -> tuple[str, list[str], str | None]:
    """Split a checked target into (uri, decoded path segments, raw query).

    A segment of ``..`` and an empty segment before the last (``//``) are
    refused with 400, as they were before decoding existed.
    """
    uri = src.decode()
    path_src = src if q < 0 else src[:q]
    if b"//" in path_src:
        raise ParseError(400, f"'//' in path: {path_src!r}")
    if len(path_src) > 1:
        raw = uri[1 : q if q >= 0 else None].split("/")
        if ".." in raw:
            raise ParseError(400, f"'..' in path: {path_src!r}")
        path = [decode_segment(s) for s in raw] if b"%" in path_src else raw
    else:
        path = []
    return uri, path, (uri[q + 1 :] if q >= 0 else None)


def encode_segment(segment: str) -> str:
    """Percent-encode one path segment so ``decode_segment`` gives it back.

    >>> encode_segment('my file é.txt')
    'my%20file%20%C3%A9.txt'
    """
    if _SEGMENT_SAFE.issuperset(segment):
        return segment
    out = []
    for ch in segment:
        if ch in _SEGMENT_SAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)
