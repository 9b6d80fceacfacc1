"""Parse HTTP/1.1 preambles and chunk lines (SPEC §1.2-§1.7, RFC 9112).

Pure functions over ``bytes``: no socket calls and no buffering here (that is
``degu._reader``).  Every violation raises ``ValueError`` with the SPEC's
message.  Charsets are checked with ``bytes.translate(None, ALLOWED)``: deleting
every allowed byte leaves ``b''`` exactly when the input is clean, and runs in
C instead of a Python loop.
"""

from __future__ import annotations

from degu._common import (
    MAX_CL_LEN,
    MAX_INCOMING_HEADERS,
    MAX_IO_SIZE,
    MAX_LENGTH,
    SCRATCH_LEN,
)
from degu._ranges import ContentRange, Range

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~6 ms
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "CHUNKED",
    "parse_chunk_line",
    "parse_content_length",
    "parse_content_range",
    "parse_headers",
    "parse_range",
    "parse_request",
    "parse_request_line",
    "parse_response",
    "parse_response_line",
    "request_body_framing",
    "request_error_status",
    "response_body_framing",
]

# SPEC §1.2 groups.
_LOWER = b"abcdefghijklmnopqrstuvwxyz0123456789-"
_UPPER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_URI = b"/?"
_PATH = b"+.:_~"
_QUERY = b"%&="
_SPACE = b" "
_VALUE = b"\"'()*,;<>[]"

# Allowed sets, used as the delete argument of bytes.translate().
NAME_CHARS = _LOWER + _UPPER
VALUE_CHARS = _LOWER + _UPPER + _PATH + _QUERY + _URI + _SPACE + _VALUE
URI_CHARS = _LOWER + _UPPER + _PATH + _QUERY + _URI
PATH_CHARS = _LOWER + _UPPER + _PATH
QUERY_CHARS = _LOWER + _UPPER + _PATH + _QUERY
REASON_CHARS = _LOWER + _UPPER + _SPACE
EXT_KEY_CHARS = _LOWER + _UPPER
EXT_VALUE_CHARS = _LOWER + _UPPER + _PATH + _VALUE
_PATH_SLASH = PATH_CHARS + b"/"
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"

#: Longest accepted ``range`` / ``content-range`` values (SPEC §1.5).
MAX_RANGE_LEN = 39
MAX_CONTENT_RANGE_LEN = 56
#: Max hex digits in a chunk size (0xffffff < MAX_IO_SIZE < 0xfffffff).
MAX_CHUNK_SIZE_LEN = 7

#: request_body_framing()/response_body_framing() result for a chunked body.
CHUNKED = -1

_METHODS = {b"GET": "GET", b"HEAD": "HEAD", b"PUT": "PUT", b"POST": "POST",
            b"DELETE": "DELETE"}  # fmt: skip
_PROTOCOL = b" HTTP/1.1"
# Keep-alive peers send the same preambles over and over (same URI, same
# headers), and parsing is a pure function of the bytes: remember the last
# results, as immutable parts, so a repeat costs one dict lookup plus copies
# of the mutable parts (path list, headers dict).  Errors are never cached.
#: Preambles at most this long are remembered.
PREAMBLE_CACHE_MAX_LEN = 512
#: At most this many request (and as many response) preambles; then start over.
PREAMBLE_CACHE_SIZE = 128
_requests: dict[bytes, tuple[Any, ...]] = {}
_responses: dict[bytes, tuple[Any, ...]] = {}
#: Remember this many valid raw header names (names repeat across messages).
KNOWN_NAMES_MAX = 256
_known_names: dict[bytes, str] = {}
# Header block characters: values, CR and LF (names are a subset of values).
_BLOCK_CHARS = VALUE_CHARS + b"\r\n"
_SPECIAL = frozenset(["content-length", "transfer-encoding", "range", "content-range"])


def _decimal(src: bytes) -> int:
    """1-16 digits, no leading zero unless exactly ``0``; else -1."""
    if (
        not src
        or len(src) > MAX_CL_LEN
        or src.translate(None, _DIGITS)
        or (src[0] == 0x30 and len(src) > 1)
    ):
        return -1
    return int(src)


def parse_content_length(src: bytes) -> int:
    """Parse a ``content-length`` value (SPEC §1.5)."""
    # Digits are checked before the length so that only a real number too big
    # for MAX_LENGTH reads as "too long" (the server answers it with 413).
    if not src or src.translate(None, _DIGITS):
        raise ValueError(f"bad bytes in content-length: {src!r}")
    if len(src) > MAX_CL_LEN:
        raise ValueError(f"content-length too long: {src[:MAX_CL_LEN]!r}...")
    if src[0] == 0x30 and len(src) > 1:
        raise ValueError(f"content-length has leading zero: {src!r}")
    return int(src)


def parse_range(src: bytes) -> Range:
    """Parse ``bytes=START-END`` into ``Range(START, END + 1)``."""
    if len(src) <= MAX_RANGE_LEN and src[:6] == b"bytes=":
        a, sep, b = src[6:].partition(b"-")
        start, end = _decimal(a), _decimal(b)
        if sep and 0 <= start <= end < MAX_LENGTH:
            return Range(start, end + 1)
    raise ValueError(f"bad range: {src!r}")


def parse_content_range(src: bytes) -> ContentRange:
    """Parse ``bytes START-END/TOTAL`` into ``ContentRange(START, END+1, TOTAL)``."""
    if len(src) <= MAX_CONTENT_RANGE_LEN and src[:6] == b"bytes ":
        span, sep1, t = src[6:].partition(b"/")
        a, sep2, b = span.partition(b"-")
        start, end, total = _decimal(a), _decimal(b), _decimal(t)
        if sep1 and sep2 and 0 <= start <= end < total <= MAX_LENGTH:
            return ContentRange(start, end + 1, total)
    raise ValueError(f"bad content-range: {src!r}")


def _header_line(line: bytes) -> tuple[str, bytes]:
    """Split one ``Name: Value`` line; return (lowercase name, raw value)."""
    if len(line) < 4:
        raise ValueError("header line too short")
    i = line.find(b": ")
    if i < 1 or i + 2 == len(line):
        raise ValueError("bad header line")
    if i > SCRATCH_LEN:
        raise ValueError(f"header name too long: {line[:SCRATCH_LEN]!r}...")
    name = line[:i]
    if name.translate(None, NAME_CHARS):
        raise ValueError(f"bad bytes in header name: {name!r}")
    value = line[i + 2 :]
    if value.translate(None, VALUE_CHARS):
        raise ValueError(f"bad bytes in header value: {value!r}")
    key = name.decode().lower()
    if len(_known_names) < KNOWN_NAMES_MAX:
        _known_names[bytes(name)] = key
    return key, value


def parse_headers(src: bytes, *, isresponse: bool = False) -> dict[str, Any]:
    """Parse CRLF-separated header lines (no trailing CRLF) into a dict.

    ``isresponse`` selects the response rules: ``range`` is refused there,
    ``content-range`` is refused in a request (SPEC §1.5).
    """
    headers: dict[str, Any] = {}
    if not src:
        return headers
    if src.count(b"\n") >= MAX_INCOMING_HEADERS:
        raise ValueError(f"more than {MAX_INCOMING_HEADERS} header lines")
    lines = src.split(b"\r\n")
    # Hot path (one C pass instead of one per line): when the whole block is
    # value characters plus exactly the CRLFs we split on, every value is
    # clean and only names still need a look.
    crlfs = len(lines) - 1
    clean = (
        not src.translate(None, _BLOCK_CHARS)
        and src.count(b"\r") == crlfs
        and src.count(b"\n") == crlfs
    )
    names = _known_names
    for line in lines:
        i = line.find(b": ")
        key = names.get(line[:i]) if i > 0 else None
        if key is None or i + 2 == len(line) or not clean:
            key, value = _header_line(line)
        else:
            value = line[i + 2 :]
        if key in headers:
            # Refused by name, whatever the values (SPEC §14 item 13).
            raise ValueError(f"duplicate header: {line!r}")
        if key in _SPECIAL:
            if key == "content-length":
                headers[key] = parse_content_length(value)
            elif key == "transfer-encoding":
                if value != b"chunked":
                    raise ValueError(f"bad transfer-encoding: {value!r}")
                headers[key] = "chunked"
            elif key == "range":
                if isresponse:
                    raise ValueError("response cannot include a 'range' header")
                headers[key] = parse_range(value)
            else:
                if not isresponse:
                    raise ValueError("request cannot include a 'content-range' header")
                headers[key] = parse_content_range(value)
        else:
            headers[key] = value.decode()
    if "content-length" in headers:
        if "transfer-encoding" in headers:
            raise ValueError(
                "cannot have both content-length and transfer-encoding headers"
            )
        if "range" in headers:
            raise ValueError("cannot include range header and content-length")
    elif "range" in headers and "transfer-encoding" in headers:
        raise ValueError("cannot include range header and transfer-encoding")
    return headers


def parse_request_line(line: bytes) -> tuple[str, str, list[str], str | None]:
    """Parse ``METHOD SP URI SP HTTP/1.1`` into (method, uri, path, query)."""
    if len(line) < 14:
        raise ValueError(f"request line too short: {line!r}")
    if line[-9:] != _PROTOCOL:
        raise ValueError(f"bad protocol in request line: {line[-9:]!r}")
    i = line.find(b" /")
    if i < 1:
        raise ValueError(f"bad request line: {line!r}")
    method = _METHODS.get(line[:i])
    if method is None:
        raise ValueError(f"bad HTTP method: {line[:i]!r}")
    src = line[i + 1 : -9]
    if src.translate(None, URI_CHARS):
        raise ValueError(f"bad bytes in uri: {src!r}")
    uri = src.decode()
    q = src.find(b"?")
    path_src = src if q < 0 else src[:q]
    if b"//" in path_src:
        raise ValueError(f"'//' in path: {path_src!r}")
    if path_src.translate(None, _PATH_SLASH):
        raise ValueError(f"bad bytes in path: {path_src!r}")
    path = uri[1 : q if q >= 0 else None].split("/") if len(path_src) > 1 else []
    if ".." in path:
        raise ValueError(f"'..' in path: {path_src!r}")
    query: str | None = None
    if q >= 0:
        query_src = src[q + 1 :]
        if query_src.translate(None, QUERY_CHARS):
            raise ValueError(f"bad bytes in query: {query_src!r}")
        query = uri[q + 1 :]
    return method, uri, path, query


def parse_response_line(line: bytes) -> tuple[int, str]:
    """Parse ``HTTP/1.1 SP STATUS SP REASON`` into (status, reason)."""
    if len(line) < 15 or line[:9] != b"HTTP/1.1 " or line[12] != 0x20:
        raise ValueError(f"bad response line: {line!r}")
    digits = line[9:12]
    if digits.translate(None, _DIGITS) or not b"100" <= digits <= b"599":
        raise ValueError(f"bad status: {digits!r}")
    reason = line[13:]
    if reason.translate(None, REASON_CHARS):
        raise ValueError(f"bad reason: {reason!r}")
    return int(digits), reason.decode()


def parse_request(
    preamble: bytes,
) -> tuple[str, str, list[str], str | None, dict[str, Any]]:
    """Parse a request preamble (without CRLFCRLF): request line + headers."""
    hit = _requests.get(preamble)
    if hit is not None:
        method, uri, path, query, headers = hit
        return method, uri, list(path), query, headers.copy()
    line, _, rest = preamble.partition(b"\r\n")
    method, uri, path, query = parse_request_line(line)
    headers = parse_headers(rest) if rest else {}
    if len(preamble) <= PREAMBLE_CACHE_MAX_LEN:
        if len(_requests) >= PREAMBLE_CACHE_SIZE:
            _requests.clear()
        _requests[preamble] = (method, uri, tuple(path), query, headers.copy())
    return method, uri, path, query, headers


def parse_response(preamble: bytes) -> tuple[int, str, dict[str, Any]]:
    """Parse a response preamble (without CRLFCRLF): status line + headers."""
    hit = _responses.get(preamble)
    if hit is not None:
        return hit[0], hit[1], hit[2].copy()
    line, _, rest = preamble.partition(b"\r\n")
    status, reason = parse_response_line(line)
    headers = parse_headers(rest, isresponse=True) if rest else {}
    if len(preamble) <= PREAMBLE_CACHE_MAX_LEN:
        if len(_responses) >= PREAMBLE_CACHE_SIZE:
            _responses.clear()
        _responses[preamble] = (status, reason, headers.copy())
    return status, reason, headers


def request_body_framing(method: str, headers: dict[str, Any]) -> int | None:
    """Decide a request body (SPEC §1.6): None, a length, or ``CHUNKED``."""
    if "content-length" in headers:
        if method == "PUT" or method == "POST":
            n: int = headers["content-length"]
            return n
        raise ValueError(f"{method!r} request with a 'content-length' header")
    if "transfer-encoding" in headers:
        if method == "PUT" or method == "POST":
            return CHUNKED
        raise ValueError(f"{method!r} request with a 'transfer-encoding' header")
    return None


def response_body_framing(
    method: str, status: int, headers: dict[str, Any]
) -> int | None:
    """Decide a response body: None, a length, or ``CHUNKED``.

    A response to HEAD, a 1xx, a 204 and a 304 end with their preamble,
    whatever framing headers they carry (RFC 9112 §6.3).
    """
    if method == "HEAD" or status < 200 or status == 204 or status == 304:
        return None
    n: int | None = headers.get("content-length")
    if n is not None:
        return n
    if "transfer-encoding" in headers:
        return CHUNKED
    return None


def parse_chunk_line(line: bytes) -> tuple[int, tuple[str, str] | None]:
    """Parse ``SIZE[;KEY=VALUE]CRLF`` into (size, extension) (SPEC §1.7)."""
    if line[-2:] != b"\r\n":
        raise ValueError(f"bad chunk line termination: {line[-2:]!r}")
    size_src, sep, ext_src = line[:-2].partition(b";")
    if len(size_src) > MAX_CHUNK_SIZE_LEN:
        raise ValueError("chunk_size is too long")
    if (
        not size_src
        or size_src.translate(None, _HEX)
        or (size_src[0] == 0x30 and len(size_src) > 1)
    ):
        raise ValueError("bad chunk_size")
    size = int(size_src, 16)
    if size > MAX_IO_SIZE:
        raise ValueError(f"need chunk_size <= {MAX_IO_SIZE}; got {size}")
    if not sep:
        return size, None
    key, _eq, value = ext_src.partition(b"=")
    if (
        not key
        or not value
        or key.translate(None, EXT_KEY_CHARS)
        or value.translate(None, EXT_VALUE_CHARS)
    ):
        raise ValueError("bad chunk extension")
    return size, (key.decode(), value.decode())


def request_error_status(error: ValueError) -> int:
    """The status the server answers a refused request with (SPEC §14 item 10).

    Keyed on the messages raised above, so the mapping lives next to them.
    """
    message = str(error)
    if message.startswith("bad HTTP method"):
        return 501
    if message.startswith("bad protocol in request line"):
        return 505
    if message.startswith("content-length too long"):
        return 413
    if message.startswith(f"more than {MAX_INCOMING_HEADERS} header lines"):
        return 431
    return 400
