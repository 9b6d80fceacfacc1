"""Parse HTTP/1.1 preambles and chunk lines (RFC 9112, RFC 9110 §5).

Pure functions over ``bytes``: no socket calls and no buffering here (that is
``degu._reader``).  Every violation raises ``degu._errors.ParseError`` (a
``ValueError``) carrying the status a server answers it with; the grammar is
written out, with its RFC sections, in docs/explanation/limits.rst.
Charsets are checked with ``bytes.translate(None, ALLOWED)``: deleting every
allowed byte leaves ``b''`` exactly when the input is clean, and runs in C
instead of a Python loop.
"""

from __future__ import annotations

from degu._common import TYPE_CHECKING
from degu._errors import ParseError
from degu._limits import (
    MAX_CL_LEN,
    MAX_INCOMING_HEADERS,
    MAX_IO_SIZE,
    MAX_LENGTH,
    SCRATCH_LEN,
)
from degu._ranges import ContentRange, OpenRange, Range, SuffixRange
from degu._targets import check_target, split_target

if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "CHUNKED",
    "parse_chunk_line",
    "parse_content_length",
    "parse_content_range",
    "parse_framed_request",
    "parse_framed_response",
    "parse_headers",
    "parse_range",
    "parse_range_list",
    "parse_request",
    "parse_request_line",
    "parse_response",
    "parse_response_line",
    "request_body_framing",
    "response_body_framing",
    "wants_close",
]

# Character groups (docs/explanation/limits.rst).
_LOWER = b"abcdefghijklmnopqrstuvwxyz0123456789-"
#: The header-name characters Degu writes: lowercase only
#: (docs/explanation/wire.rst); it reads uppercase too (``NAME_CHARS``).
OUT_NAME_CHARS = _LOWER
_UPPER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PATH = b"+.:_~"
_SPACE = b" "
_VALUE = b"\"'()*,;<>[]"

# Allowed sets, used as the delete argument of bytes.translate().
NAME_CHARS = OUT_NAME_CHARS + _UPPER
#: RFC 9110 §5.5 field-vchar without obs-text (VCHAR), plus SP and HTAB inside a
#: value.  obs-text (0x80-0xff) stays refused: RFC 9110 §5.5 asks senders to
#: keep to US-ASCII, and a ``str`` value then never depends on a guessed charset.
VALUE_CHARS = bytes(range(0x21, 0x7F)) + b" \t"
REASON_CHARS = _LOWER + _UPPER + _SPACE
EXT_KEY_CHARS = _LOWER + _UPPER
EXT_VALUE_CHARS = _LOWER + _UPPER + _PATH + _VALUE
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"

#: Longest single byte range (``bytes=`` + two 16-digit positions and ``-``).
MAX_RANGE_LEN = 39
#: Longest ``content-range`` value accepted in a response.
MAX_CONTENT_RANGE_LEN = 56
#: Max hex digits in a chunk size (0xffffff < MAX_IO_SIZE < 0xfffffff).
MAX_CHUNK_SIZE_LEN = 7

#: request_body_framing()/response_body_framing() result for a chunked body.
CHUNKED = -1

_METHODS = {b"GET": "GET", b"HEAD": "HEAD", b"PUT": "PUT", b"POST": "POST",
            b"DELETE": "DELETE", b"OPTIONS": "OPTIONS", b"PATCH": "PATCH"}  # fmt: skip
#: Methods whose requests may carry a body (RFC 9110 §9.3.3, §9.3.4; RFC 5789).
_BODY_METHODS = frozenset(["PUT", "POST", "PATCH"])
#: Methods that accept ``content-length: 0`` as "no body" (what ``requests``
#: and other clients send for DELETE and OPTIONS); the header is then dropped.
_EMPTY_BODY_METHODS = frozenset(["DELETE", "OPTIONS"])
_PROTOCOL = b" HTTP/1.1"
# Keep-alive peers send the same preambles over and over (same URI, same
# headers), and parsing is a pure function of the bytes: remember the last
# results, as immutable parts, so a repeat costs one dict lookup plus copies
# of the mutable parts (path list, headers dict).  Errors are never cached.
# Measured on a 2-vCPU VM, median of 7: a repeated 3-header response costs
# 139 ns instead of 5.1 us, a repeated 3-header request 224 ns instead of
# 9.3 us.  The keys are the exact bytes received.
#: Preambles at most this long are remembered.
PREAMBLE_CACHE_MAX_LEN = 512
#: At most this many request (and as many response) preambles; then start over.
PREAMBLE_CACHE_SIZE = 128
# parse_framed_request()'s (the server's) and parse_framed_response()'s (the
# client's): each entry with its body framing.
_requests: dict[bytes, tuple[Any, ...]] = {}
_responses: dict[bytes, tuple[Any, ...]] = {}
#: Remember this many valid raw header names (names repeat across messages):
#: 3 known names make parse_headers() 3.8 us instead of 10.5 us (same VM).
KNOWN_NAMES_MAX = 256
_known_names: dict[bytes, str] = {}
# Header block characters: values, CR and LF (names are a subset of values).
_BLOCK_CHARS = VALUE_CHARS + b"\r\n"
# Whitespace that may not start or end a value (RFC 9112 §5.1 OWS).
_WS = (0x20, 0x09)
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
    """Parse a ``content-length`` value (docs/explanation/limits.rst)."""
    # Digits are checked before the length so that only a real number too big
    # for MAX_LENGTH reads as "too long" (the server answers it with 413).
    if not src or src.translate(None, _DIGITS):
        raise ParseError(400, f"bad bytes in content-length: {src!r}")
    if len(src) > MAX_CL_LEN:
        # RFC 9110 §15.5.14: a body too large for us, whatever it contains.
        raise ParseError(413, f"content-length too long: {src[:MAX_CL_LEN]!r}...")
    if src[0] == 0x30 and len(src) > 1:
        raise ParseError(400, f"content-length has leading zero: {src!r}")
    return int(src)


def _byte_range(spec: bytes) -> Range | OpenRange | SuffixRange | None:
    """One RFC 9110 §14.1.2 int-range or suffix-range; ``None`` if invalid."""
    if len(spec) > MAX_RANGE_LEN - 6:
        return None
    a, sep, b = spec.partition(b"-")
    if not sep:
        return None
    if not a:
        length = _decimal(b)
        return SuffixRange(length) if length >= 0 else None
    start = _decimal(a)
    if not 0 <= start < MAX_LENGTH:
        return None
    if not b:
        return OpenRange(start)
    end = _decimal(b)
    if start <= end < MAX_LENGTH:
        return Range(start, end + 1)
    return None


def parse_range(src: bytes) -> Range | OpenRange | SuffixRange | str:
    """Parse a ``range`` value (RFC 9110 §14.2).

    One byte range gives a ``Range`` (``bytes=FIRST-LAST``), an ``OpenRange``
    (``bytes=FIRST-``) or a ``SuffixRange`` (``bytes=-LENGTH``).  A valid
    list of several byte ranges, or another range unit (which RFC 9110 §14.2
    says to ignore), is returned as the ``str`` it is.  An invalid ``bytes``
    range set raises ``ParseError`` (400).
    """
    if src[:6].lower() != b"bytes=":
        return src.decode()
    spec = src[6:]
    if b"," not in spec:
        one = _byte_range(spec)
        if one is not None:
            return one
    elif parse_range_list(src) is not None:
        return src.decode()
    raise ParseError(400, f"bad range: {src!r}")


def parse_range_list(
    src: bytes,
) -> list[Range | OpenRange | SuffixRange] | None:
    """The byte ranges of a ``bytes=`` range set, in order; ``None`` if invalid.

    RFC 9110 §14.1.1: ``1#range-spec``, with OWS around the commas.  A value
    with another range unit is ``None`` too.
    """
    if src[:6].lower() != b"bytes=":
        return None
    ranges = []
    for part in src[6:].split(b","):
        one = _byte_range(part.strip(b" \t"))
        if one is None:
            return None
        ranges.append(one)
    return ranges


def parse_content_range(src: bytes) -> ContentRange | str:
    """Parse ``bytes START-END/TOTAL`` into ``ContentRange(START, END+1, TOTAL)``.

    The unsatisfied-range form ``bytes */TOTAL`` of a 416 (RFC 9110 §14.4)
    is returned as the ``str`` it is.
    """
    if src[:8] == b"bytes */" and 0 <= _decimal(src[8:]) <= MAX_LENGTH:
        return src.decode()
    if len(src) <= MAX_CONTENT_RANGE_LEN and src[:6] == b"bytes ":
        span, sep1, t = src[6:].partition(b"/")
        a, sep2, b = span.partition(b"-")
        start, end, total = _decimal(a), _decimal(b), _decimal(t)
        if sep1 and sep2 and 0 <= start <= end < total <= MAX_LENGTH:
            return ContentRange(start, end + 1, total)
    raise ParseError(400, f"bad content-range: {src!r}")


def _header_line(line: bytes) -> tuple[str, bytes]:
    """Split one ``Name: Value`` line; return (lowercase name, raw value)."""
    if len(line) < 4:
        raise ParseError(400, "header line too short")
    i = line.find(b": ")
    if i < 1 or i + 2 == len(line):
        raise ParseError(400, "bad header line")
    if i > SCRATCH_LEN:
        raise ParseError(400, f"header name too long: {line[:SCRATCH_LEN]!r}...")
    name = line[:i]
    if name.translate(None, NAME_CHARS):
        raise ParseError(400, f"bad bytes in header name: {name!r}")
    value = line[i + 2 :]
    if value.translate(None, VALUE_CHARS):
        raise ParseError(400, f"bad bytes in header value: {value!r}")
    if value[0] in _WS or value[-1] in _WS:
        # Exactly one SP after the colon, none at the end (RFC 9112 §5.1):
        # a peer that strips OWS would otherwise read another value than ours.
        raise ParseError(400, f"whitespace around header value: {value!r}")
    key = name.decode().lower()
    if len(_known_names) < KNOWN_NAMES_MAX:
        _known_names[bytes(name)] = key
    return key, value


def parse_headers(src: bytes, *, isresponse: bool = False) -> dict[str, Any]:
    """Parse CRLF-separated header lines (no trailing CRLF) into a dict.

    ``isresponse`` selects the response rules: ``range`` is refused there,
    ``content-range`` is refused in a request (docs/explanation/limits.rst).
    """
    if not src:
        return {}
    # Split on LF, a one-byte separator: over a 32 KiB block that is 12 us
    # where splitting on CRLF is 30 us (bench/bench_peers.py, "preamble").
    lines = src.split(b"\n")
    if len(lines) > MAX_INCOMING_HEADERS:
        raise ParseError(431, f"more than {MAX_INCOMING_HEADERS} header lines")
    # Hot path, one C pass over the block: when it holds only value
    # characters plus one CR per LF, and every line ends in that CR (checked
    # per line below), the CRs and LFs are exactly the CRLFs and every value
    # is clean; only names still need a look.
    if src.count(b"\r") != len(lines) - 1 or src.translate(None, _BLOCK_CHARS):
        return _checked_headers(src.split(b"\r\n"), isresponse)
    lines[-1] += b"\r"
    headers: dict[str, Any] = {}
    names = _known_names
    try:
        for line in lines:
            i = line.find(b": ")
            key = names.get(line[:i]) if i > 0 else None
            if (
                key is None
                or line[-1] != 0x0D
                or i + 3 == len(line)
                or line[i + 2] in _WS
                or line[-2] in _WS
            ):
                if line[-1:] != b"\r":
                    # A bare LF: the checked path says which line.
                    return _checked_headers(src.split(b"\r\n"), isresponse)
                key, value = _header_line(line[:-1])
            else:
                value = line[i + 2 : -1]
            if key in headers or key in _SPECIAL:
                _store_special(headers, key, value, line[:-1], isresponse)
            else:
                headers[key] = value.decode()
    except ParseError:
        # Only an invalid block gets here; the checked path names its first
        # fault, as it would have without the hot path.
        return _checked_headers(src.split(b"\r\n"), isresponse)
    _check_framing_headers(headers)
    return headers


def _checked_headers(lines: list[bytes], isresponse: bool) -> dict[str, Any]:
    """Lines checked one by one, so an error names the faulty line."""
    headers: dict[str, Any] = {}
    for line in lines:
        key, value = _header_line(line)
        if key in headers or key in _SPECIAL:
            _store_special(headers, key, value, line, isresponse)
        else:
            headers[key] = value.decode()
    _check_framing_headers(headers)
    return headers


def _store_special(
    headers: dict[str, Any], key: str, value: bytes, line: bytes, isresponse: bool
) -> None:
    """Store a header whose value Degu parses, or refuse a duplicate."""
    if key in headers:
        # Refused by name, whatever the values (RFC 9112 §6.3 item 5).
        raise ParseError(400, f"duplicate header: {line!r}")
    if key == "content-length":
        headers[key] = parse_content_length(value)
    elif key == "transfer-encoding":
        if value != b"chunked":
            raise ParseError(400, f"bad transfer-encoding: {value!r}")
        headers[key] = "chunked"
    elif key == "range":
        if isresponse:
            raise ParseError(400, "response cannot include a 'range' header")
        headers[key] = parse_range(value)
    elif key == "content-range":
        if not isresponse:
            raise ParseError(400, "request cannot include a 'content-range' header")
        headers[key] = parse_content_range(value)
    else:
        headers[key] = value.decode()


def _check_framing_headers(headers: dict[str, Any]) -> None:
    if "content-length" in headers:
        if "transfer-encoding" in headers:
            raise ParseError(
                400, "cannot have both content-length and transfer-encoding headers"
            )
        if "range" in headers:
            raise ParseError(400, "cannot include range header and content-length")
    elif "range" in headers and "transfer-encoding" in headers:
        raise ParseError(400, "cannot include range header and transfer-encoding")


def parse_request_line(line: bytes) -> tuple[str, str, list[str], str | None]:
    """Parse ``METHOD SP TARGET SP HTTP/1.1`` into (method, uri, path, query).

    The target is origin-form (RFC 9112 §3.2.1); ``path`` holds its segments
    percent-decoded, ``uri`` and ``query`` are as received (``degu._targets``).
    """
    if len(line) < 14:
        raise ParseError(400, f"request line too short: {line!r}")
    if line[-9:] != _PROTOCOL:
        # RFC 9110 §15.6.6: the only version Degu speaks is HTTP/1.1.
        raise ParseError(505, f"bad protocol in request line: {line[-9:]!r}")
    i = line.find(b" /")
    if i < 1:
        raise ParseError(400, f"bad request line: {line!r}")
    method = _METHODS.get(line[:i])
    if method is None:
        # RFC 9110 §9.1: a method the server does not implement gets 501.
        raise ParseError(501, f"bad HTTP method: {line[:i]!r}")
    src = line[i + 1 : -9]
    q = check_target(src)
    uri, path, query = split_target(src, q)
    return method, uri, path, query


def parse_response_line(line: bytes) -> tuple[int, str]:
    """Parse ``HTTP/1.1 SP STATUS SP REASON`` into (status, reason)."""
    if len(line) < 15 or line[:9] != b"HTTP/1.1 " or line[12] != 0x20:
        raise ParseError(400, f"bad response line: {line!r}")
    digits = line[9:12]
    if digits.translate(None, _DIGITS) or not b"100" <= digits <= b"599":
        raise ParseError(400, f"bad status: {digits!r}")
    reason = line[13:]
    if reason.translate(None, REASON_CHARS):
        raise ParseError(400, f"bad reason: {reason!r}")
    return int(digits), reason.decode()


def parse_request(
    preamble: bytes,
) -> tuple[str, str, list[str], str | None, dict[str, Any]]:
    """Parse a request preamble (without CRLFCRLF): request line + headers."""
    line, _, rest = preamble.partition(b"\r\n")
    method, uri, path, query = parse_request_line(line)
    headers = parse_headers(rest) if rest else {}
    return method, uri, path, query, headers


def parse_framed_request(
    preamble: bytes,
) -> tuple[str, str, list[str], str | None, dict[str, Any], int | None]:
    """``parse_request()`` plus ``request_body_framing()``, in one lookup.

    The server's per-request parse: a repeated preamble costs one cache hit
    for both (the framing is as much a function of the bytes as the rest):
    182 ns instead of 255 ns for a repeated 1-header GET, parse and framing
    apart (timeit, best of 7, 2-vCPU VM).
    Returns ``(method, uri, path, query, headers, framing)``.
    """
    hit = _requests.get(preamble)
    if hit is not None:
        method, uri, path, query, headers, framing = hit
        return method, uri, list(path), query, headers.copy(), framing
    method, uri, path, query, headers = parse_request(preamble)
    if "content-length" in headers or "transfer-encoding" in headers:
        framing = request_body_framing(method, headers)
    else:
        framing = None
    if len(preamble) <= PREAMBLE_CACHE_MAX_LEN:
        if len(_requests) >= PREAMBLE_CACHE_SIZE:
            _requests.clear()
        _requests[preamble] = (
            method, uri, tuple(path), query, headers.copy(), framing
        )  # fmt: skip
    return method, uri, path, query, headers, framing


def parse_response(preamble: bytes) -> tuple[int, str, dict[str, Any]]:
    """Parse a response preamble (without CRLFCRLF): status line + headers."""
    status, reason, headers, _framing = parse_framed_response(preamble, "GET")
    return status, reason, headers


def parse_framed_response(
    preamble: bytes, method: str
) -> tuple[int, str, dict[str, Any], int | None]:
    """``parse_response()`` plus ``response_body_framing()``, in one lookup.

    The client's per-response parse, as ``parse_framed_request()`` is the
    server's: a repeated preamble costs one cache hit for both: 149 ns
    instead of 212 ns for a repeated 1-header response, parse and framing
    apart (timeit, best of 7, 2-vCPU VM).
    Returns ``(status, reason, headers, framing)``; *method* is the request's.
    """
    hit = _responses.get(preamble)
    if hit is not None:
        status, reason, headers, framing = hit
        headers = headers.copy()
    else:
        line, _, rest = preamble.partition(b"\r\n")
        status, reason = parse_response_line(line)
        headers = parse_headers(rest, isresponse=True) if rest else {}
        # The framing for any method but HEAD (RFC 9112 §6.3) is a function
        # of the bytes alone, so it is remembered with them.
        framing = response_body_framing("", status, headers)
        if len(preamble) <= PREAMBLE_CACHE_MAX_LEN:
            if len(_responses) >= PREAMBLE_CACHE_SIZE:
                _responses.clear()
            _responses[preamble] = (status, reason, headers.copy(), framing)
    if method == "HEAD":
        framing = None
    return status, reason, headers, framing


def request_body_framing(method: str, headers: dict[str, Any]) -> int | None:
    """Decide a request body (RFC 9112 §6.3): None, a length, or ``CHUNKED``.

    Only PUT, POST and PATCH carry a body.  A DELETE or OPTIONS request with
    ``content-length: 0`` has none, and that header is removed from *headers*.
    """
    if "content-length" in headers:
        if method in _BODY_METHODS:
            n: int = headers["content-length"]
            return n
        if method in _EMPTY_BODY_METHODS and headers["content-length"] == 0:
            del headers["content-length"]
            return None
        raise ParseError(400, f"{method!r} request with a 'content-length' header")
    if "transfer-encoding" in headers:
        if method in _BODY_METHODS:
            return CHUNKED
        raise ParseError(400, f"{method!r} request with a 'transfer-encoding' header")
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
    """Parse ``SIZE[;KEY=VALUE]CRLF`` into (size, extension) (RFC 9112 §7.1)."""
    if line[-2:] != b"\r\n":
        raise ParseError(400, f"bad chunk line termination: {line[-2:]!r}")
    size_src, sep, ext_src = line[:-2].partition(b";")
    if len(size_src) > MAX_CHUNK_SIZE_LEN:
        raise ParseError(400, "chunk_size is too long")
    if (
        not size_src
        or size_src.translate(None, _HEX)
        or (size_src[0] == 0x30 and len(size_src) > 1)
    ):
        raise ParseError(400, "bad chunk_size")
    size = int(size_src, 16)
    if size > MAX_IO_SIZE:
        raise ParseError(400, f"need chunk_size <= {MAX_IO_SIZE}; got {size}")
    if not sep:
        return size, None
    key, _eq, value = ext_src.partition(b"=")
    if (
        not key
        or not value
        or key.translate(None, EXT_KEY_CHARS)
        or value.translate(None, EXT_VALUE_CHARS)
    ):
        raise ParseError(400, "bad chunk extension")
    return size, (key.decode(), value.decode())


def wants_close(headers: dict[str, Any]) -> bool:
    """Whether a ``connection`` header asks to close the connection.

    Connection options are case-insensitive tokens in a comma-separated list
    (RFC 9110 §7.6.1), so ``Close`` and ``keep-alive, close`` count too.
    """
    value = headers.get("connection")
    if value == "close":  # the usual spelling, without splitting
        return True
    if type(value) is not str:
        return False
    return "close" in (token.strip().lower() for token in value.split(","))
