"""Render outgoing preambles and chunk lines (docs/explanation/wire.rst).

The inverse of ``degu._parsing``: values to ``bytes``, no socket calls here;
``send_message()`` only decides how a rendered message is cut into sends,
handing them to the stream it is given.
Outgoing validation is stricter than 0.19 on purpose: nothing Degu writes
contains a control character (``< 0x20`` or ``0x7f``), so header and response
splitting through a value is impossible, and Degu never emits what its own
parser would refuse.
"""

from __future__ import annotations

from degu._checks import check_tuple, type_error
from degu._common import TYPE_CHECKING
from degu._errors import ParseError
from degu._limits import (
    BUF_LEN,
    JOIN_BODY_MAX,
    MAX_HEADER_COUNT,
    MAX_IO_SIZE,
    METHODS,
    SCRATCH_LEN,
)
from degu._parsing import EXT_KEY_CHARS, EXT_VALUE_CHARS, OUT_NAME_CHARS
from degu._targets import check_target

if TYPE_CHECKING:
    from typing import Any

    from degu._stream import Budget, Stream
    from degu.typehints import OutputBody

__all__ = [
    "ERROR_REASONS",
    "check_chunk",
    "render_chunk",
    "render_chunk_line",
    "render_error_response",
    "render_request",
    "render_response",
    "send_message",
]

# Caches of exact ``str`` values already validated (a lookup is guarded by
# ``type(x) is str``: a str subclass is never trusted, its __format__ could
# inject CRLF).  Measured on a 2-vCPU VM, median of 7:
# a known header name costs 49 ns instead of 499 ns in _check_key(), a known
# URI 58 ns instead of 1631 ns in check_target().  A response reason is not
# cached: checking it costs 70 ns, a lookup 29 ns.
#: Remember this many validated header names; they repeat across messages.
KEY_CACHE_SIZE = 256
_good_keys: set[str] = set()
#: Validated request URIs up to this long are remembered (KEY_CACHE_SIZE many).
URI_CACHE_MAX_LEN = 256
_good_uris: set[str] = set()

# Rendered response preambles, keyed on what alone determines their bytes:
# status, reason and the header items, all of exact types (str, or int for
# a value), so equal keys render equal bytes, and only after _render() has
# accepted them (errors are never cached).  Apps answer with the same few
# preambles again and again.  Measured on a 2-vCPU VM (timeit, best of 7):
# render_response(200, "OK", {"content-length": 12}) 370 ns instead of 570 ns.
#: Response preambles with at most this many headers ...
RESPONSE_CACHE_HEADERS = 4
#: ... and at most this long are remembered (so an app echoing what peers
#: send into its headers keeps the cache under 256 KiB, keys included) ...
RESPONSE_CACHE_MAX_LEN = 512
#: ... this many of them; then the cache starts over.
RESPONSE_CACHE_SIZE = 256
_responses: dict[tuple[Any, ...], bytes] = {}

#: Reasons for the responses the server writes itself (RFC 9110 §15).
ERROR_REASONS = {
    400: "Bad Request",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


def _printable_ascii(obj: object) -> bool:
    # str.isprintable() is False for every code point < 0x20 and for 0x7f;
    # together with isascii() this is the rule of docs/explanation/wire.rst,
    # checked in C.
    return type(obj) is str and obj != "" and obj.isascii() and obj.isprintable()


def _check_key(key: object) -> None:
    if type(key) is not str:
        type_error("key", str, key)
    if len(key) > SCRATCH_LEN:
        raise ValueError(f"key is too long: {key!r}")
    if not key or not key.isascii() or key.encode().translate(None, OUT_NAME_CHARS):
        raise ValueError(f"bad key: {key!r}")
    if len(_good_keys) < KEY_CACHE_SIZE:
        _good_keys.add(key)


def _render(first: str, headers: dict[str, Any]) -> bytes:
    if type(headers) is not dict:
        type_error("headers", dict, headers)
    count = len(headers)
    if count > MAX_HEADER_COUNT:
        raise ValueError(f"need len(headers) <= {MAX_HEADER_COUNT}; got {count}")
    parts = [first]
    if count:
        for key in headers:
            # The type test first: a str subclass equal to a cached name must
            # not skip the exact-type check (its __format__ could inject CRLF).
            if type(key) is not str or key not in _good_keys:
                _check_key(key)
        for key in sorted(headers) if count > 1 else headers:
            value = headers[key]
            if type(value) is int:
                # Digits and maybe "-": always printable ASCII (content-length).
                parts.append(f"{key}: {value}")
                continue
            if type(value) is not str:
                value = str(value)
            # _printable_ascii(), inline: this runs for every header value.
            if (
                not value
                or not value.isascii()
                or not value.isprintable()
                or value[0] == " "
                or value[-1] == " "
            ):
                # No whitespace around a value either: our parser refuses it
                # (RFC 9112 §5.1), so we never write it.
                raise ValueError(f"bad val: {value!r}")
            parts.append(f"{key}: {value}")
    parts.append("\r\n")
    out = "\r\n".join(parts).encode()
    if len(out) > BUF_LEN:
        raise ValueError(f"output size exceeds {BUF_LEN}")
    return out


#: Rendered request preambles up to this long are remembered (KEY_CACHE_SIZE
#: many), by method and URI, with the headers they were rendered from.
PREAMBLE_CACHE_MAX_LEN = 1024
# Two caches, two keys, on purpose.  A hit on (method, URI) plus a dict
# comparison is the faster lookup for both kinds (1-header request 366 ns
# against 504 ns keyed on every item; 1-header response 332 ns against 550
# ns; timeit, best of 7, 2-vCPU VM), but it holds one header set per key: a
# server answers one status with many content-lengths, which would then
# miss every time, while a client repeats one request to one URI.
_preambles: dict[tuple[str, str], tuple[dict[str, Any], bytes]] = {}


def render_request(method: str, uri: str, headers: dict[str, Any]) -> bytes:
    """Render a request preamble, CRLFCRLF included."""
    if type(method) is str and type(uri) is str and type(headers) is dict:
        # A client sends the same request over and over: remember the last
        # preamble per method and URI, with the headers it was made of, when
        # every name is a str and every value a str or an int (exact types:
        # True == 1 and a str subclass equals its value, yet each renders
        # otherwise).  GET with one header: 200-280 ns instead of 530-580;
        # POST with two: 250-320 ns instead of 850-920 (2-vCPU VM, best of 5).
        for key, value in headers.items():
            if type(key) is not str or (
                type(value) is not str and type(value) is not int
            ):
                break
        else:
            hit = _preambles.get((method, uri))
            if hit is not None and hit[0] == headers:
                out: bytes = hit[1]
                return out
            out = _render_request(method, uri, headers)
            if len(out) <= PREAMBLE_CACHE_MAX_LEN:
                if len(_preambles) >= KEY_CACHE_SIZE:
                    _preambles.clear()
                _preambles[(method, uri)] = (headers.copy(), out)
            return out
    return _render_request(method, uri, headers)


def _render_request(method: str, uri: str, headers: dict[str, Any]) -> bytes:
    if (type(method) is not str or method not in METHODS) and not _printable_ascii(
        method
    ):
        raise ValueError(f"bad method: {method!r}")
    if type(uri) is not str or uri not in _good_uris:
        if not _printable_ascii(uri) or " " in uri:
            raise ValueError(f"bad uri: {uri!r}")
        # Origin-form only (RFC 9112 §3.2.1), by the grammar our server reads:
        # 'a' or 'http://x/' would be refused there, so refuse it here.
        try:
            check_target(uri.encode())
        except ParseError as e:
            raise ValueError(f"bad uri: {uri!r} ({e})") from None
        if len(uri) <= URI_CACHE_MAX_LEN:
            if len(_good_uris) >= KEY_CACHE_SIZE:
                _good_uris.clear()
            _good_uris.add(uri)
    return _render(f"{method} {uri} HTTP/1.1", headers)


def render_response(status: int, reason: str, headers: dict[str, Any]) -> bytes:
    """Render a response preamble, CRLFCRLF included."""
    if (
        type(headers) is dict
        and len(headers) <= RESPONSE_CACHE_HEADERS
        and type(status) is int
        and type(reason) is str
    ):
        # Exact types before the lookup: a subclass could compare equal to
        # a cached value and so skip the checks _render() makes.
        for key, value in headers.items():
            if type(key) is not str or (
                type(value) is not str and type(value) is not int
            ):
                break
        else:
            cache_key = (status, reason, *headers.items())
            out = _responses.get(cache_key)
            if out is None:
                out = _render_response(status, reason, headers)
                if len(out) <= RESPONSE_CACHE_MAX_LEN:
                    if len(_responses) >= RESPONSE_CACHE_SIZE:
                        _responses.clear()
                    _responses[cache_key] = out
            return out
    return _render_response(status, reason, headers)


def _render_response(status: int, reason: str, headers: dict[str, Any]) -> bytes:
    if type(status) is not int:
        type_error("status", int, status)
    if not 100 <= status <= 599:
        raise ValueError(f"need 100 <= status <= 599; got {status}")
    if not _printable_ascii(reason):
        raise ValueError(f"bad reason: {reason!r}")
    return _render(f"HTTP/1.1 {status} {reason}", headers)


def render_error_response(status: int) -> bytes:
    """The whole response the server sends when it refuses.

    Its form is in docs/reference/server.rst (Error responses).
    """
    reason = ERROR_REASONS[status]
    return _render(
        f"HTTP/1.1 {status} {reason}", {"content-length": 0, "connection": "close"}
    )


def _check_ext_part(name: str, obj: object, allowed: bytes) -> str:
    if type(obj) is not str:
        type_error(name, str, obj)
    if not obj or not obj.isascii() or obj.encode().translate(None, allowed):
        raise ValueError(f"bad chunk extension {name}: {obj!r}")
    return obj


def check_chunk(chunk: object) -> tuple[tuple[str, str] | None, bytes]:
    """Validate one ``(extension, data)`` chunk; return it as a typed pair."""
    ext, data = check_tuple("chunk", chunk, 2)
    if ext is not None:
        key, value = check_tuple("extension", ext, 2)
        _check_ext_part("key", key, EXT_KEY_CHARS)
        _check_ext_part("value", value, EXT_VALUE_CHARS)
    if type(data) is not bytes:
        type_error("data", bytes, data)
    if len(data) > MAX_IO_SIZE:
        raise ValueError(f"need len(data) <= {MAX_IO_SIZE}; got {len(data)}")
    return ext, data


def render_chunk_line(size: int, ext: tuple[str, str] | None) -> bytes:
    """``SIZE[;KEY=VALUE]CRLF`` with the size in lowercase hex (RFC 9112 §7.1)."""
    if ext is None:
        return b"%x\r\n" % size
    return f"{size:x};{ext[0]}={ext[1]}\r\n".encode()


def render_chunk(chunk: tuple[Any, ...]) -> bytes:
    """One ``(extension, data)`` chunk in wire form, validated like ChunkedBodyIter."""
    ext, data = check_chunk(chunk)
    return render_chunk_line(len(data), ext) + data + b"\r\n"


class _Writer:
    """The ``wfile`` an output body writes to: its message's stream and budget."""

    __slots__ = ("_budget", "_stream")

    def __init__(self, stream: Stream, budget: Budget) -> None:
        self._stream = stream
        self._budget = budget

    def write(self, buf: Any) -> int:
        self._stream.send_all(buf, self._budget)
        return len(buf)


def send_message(
    stream: Stream, preamble: bytes, body: OutputBody, budget: Budget
) -> None:
    """Send a rendered *preamble*, then *body*, on *stream* within *budget*.

    The one way requests and responses go out.  A ``bytes`` body up to
    ``JOIN_BODY_MAX`` goes in the same send as its preamble: one syscall, and
    no Nagle/delayed-ACK stall between two small writes.  *body* has passed
    ``set_output_framing()``, so a ``bytes`` body is exactly ``bytes``.
    """
    if body is None:
        stream.send_all(preamble, budget)
    elif type(body) is bytes:
        if len(body) <= JOIN_BODY_MAX:
            stream.send_all(preamble + body, budget)
        else:
            stream.send_all(preamble, budget)
            stream.send_all(body, budget)
    else:
        stream.send_all(preamble, budget)
        # `type(body) is bytes` leaves a bytes subclass possible here for
        # mypy; set_output_framing() refused one already.
        body.write_to(_Writer(stream, budget))  # type: ignore[union-attr]
