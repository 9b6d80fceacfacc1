"""Test fixtures, helpers and logging middleware for Degu servers and RGI apps.

The temporary servers and the throw-away PKI (docs/reference/misc.rst) need
``multiprocessing``, ``tempfile`` and the TLS helpers; they are imported on
first use (module ``__getattr__``, PEP 562), so that a production program can
import :class:`AccessLogger` from here without paying for them.

The wire helpers here (``format_*``, ``parse_headers``, ``write_chunk``) use
the very parser and renderer the server and client use, so what a test builds
with them is exactly what Degu would send or accept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from degu._bodies import failed_read_answer as _failed_read_answer
from degu._checks import type_error as _type_error
from degu._middleware import Middleware as _Middleware
from degu._parsing import parse_headers as _parse_headers
from degu._rendering import render_chunk
from degu._targets import check_percents as _check_percents
from degu._targets import decode_segment as _decode_segment
from degu.base import Request

if TYPE_CHECKING:
    from degu._processes import TempServer, TempSSLServer
    from degu._temppki import TempPKI
    from degu.base import API, Session
    from degu.typehints import ResponseTuple, RGIApp

__all__ = (
    "AccessLogger",
    "RequestLogger",
    "TempPKI",
    "TempSSLServer",
    "TempServer",
    "format_access_line",
    "format_headers",
    "format_request",
    "format_response",
    "mkreq",
    "mkuri",
    "parse_headers",
    "write_chunk",
)

log = logging.getLogger("degu.misc")

# Where each lazily imported name lives.
_LAZY = {
    "TempServer": "degu._processes",
    "TempSSLServer": "degu._processes",
    "TempPKI": "degu._temppki",
}


def __getattr__(name: str) -> Any:
    """Import ``TempServer``, ``TempSSLServer`` and ``TempPKI`` when first used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def mkuri(*path: str, query: str | None = None) -> str:
    """Build a URI from path components and an optional query.

    >>> mkuri('foo', 'bar', query='k=v')
    '/foo/bar?k=v'
    """
    uri = "/" + "/".join(path)
    return uri if query is None else f"{uri}?{query}"


def mkreq(
    method: str,
    uri: str,
    headers: dict[str, Any] | None = None,
    body: Any = None,
    shift: int = 0,
    cls: Callable[..., Any] = Request,
) -> Any:
    """Build a request object from a URI, the way the server would split it.

    Path components are percent-decoded as the server decodes them
    (``'/my%20file'`` gives ``path == ['my file']``), and ``shift`` of them
    are moved from ``path`` to ``mount``, as if a router had already
    consumed them.  Beyond that, nothing is validated here: the ``cls``
    constructor does that.

    >>> mkreq('GET', '/a/my%20file?x=%20', shift=1).path
    ['my file']

    Raises:
        TypeError: ``shift`` is not an ``int``.
        ValueError: ``shift`` is negative or exceeds the number of components,
            or a component's percent-encoding is one the server refuses.
    """
    if type(shift) is not int:
        _type_error("shift", int, shift)
    path_part, sep, query_part = uri.partition("?")
    path = [] if path_part == "/" else path_part.split("/")[1:]
    if "%" in path_part:
        _check_percents(path_part.encode(), "path")
        path = [_decode_segment(p) for p in path]
    if not 0 <= shift <= len(path):
        raise ValueError(f"need 0 <= shift <= {len(path)}; got {shift}")
    return cls(
        method,
        uri,
        {} if headers is None else headers,
        body,
        path[:shift],
        path[shift:],
        query_part if sep else None,
    )


def format_headers(headers: Mapping[str, Any]) -> bytes:
    """Render ``name: value`` lines sorted by name, CRLF-joined, no trailing CRLF.

    Nothing is validated, so tests can build malformed input on purpose.

    >>> format_headers({'One': 'two', 'FOO': 'bar'})
    b'FOO: bar\\r\\nOne: two'
    """
    return "\r\n".join(f"{k}: {headers[k]}" for k in sorted(headers)).encode()


def _with_headers(first_line: str, headers: Mapping[str, Any]) -> bytes:
    lines = [first_line] + [f"{k}: {headers[k]}" for k in sorted(headers)]
    return "\r\n".join(lines).encode()


def format_request(method: str, uri: str, headers: Mapping[str, Any]) -> bytes:
    """Render a request line plus header lines (no trailing CRLF, no validation)."""
    return _with_headers(f"{method} {uri} HTTP/1.1", headers)


def format_response(status: int, reason: str, headers: Mapping[str, Any]) -> bytes:
    """Render a status line plus header lines (no trailing CRLF, no validation)."""
    return _with_headers(f"HTTP/1.1 {status} {reason}", headers)


def parse_headers(src: bytes, isresponse: bool = False) -> dict[str, Any]:
    """Parse CRLF-separated header lines with the rules Degu applies on the wire.

    Those rules are described in docs/reference/misc.rst (``parse_headers``).

    ``isresponse`` selects the response rules (``content-range`` allowed,
    ``range`` refused); it must be exactly a ``bool``.

    >>> parse_headers(b'Content-Length: 17\\r\\nX-Foo: bar')
    {'content-length': 17, 'x-foo': 'bar'}
    """
    if type(isresponse) is not bool:
        _type_error("isresponse", bool, isresponse)
    return _parse_headers(src, isresponse=isresponse)


def write_chunk(wfile: Any, chunk: tuple[Any, Any]) -> int:
    """Write one ``(extension, data)`` chunk in wire form; return bytes written.

    The chunk is validated as ``ChunkedBodyIter`` validates its items.

    Raises:
        ValueError: ``wfile.write()`` returned 0 or an impossible count.
    """
    data = render_chunk(chunk)
    view = memoryview(data)
    total = 0
    # Bounded: each pass writes at least one byte or raises.
    while total < len(data):
        written = wfile.write(view[total:])
        if type(written) is not int or not 0 < written <= len(data) - total:
            raise ValueError(
                f"wfile.write() returned {written!r}; expected 1 to {len(data) - total}"
            )
        total += written
    return total


class RequestLogger(_Middleware):
    """Middleware logging one INFO line per request on logger ``degu.misc``.

    The line is ``[REQUESTS] METHOD URI --> STATUS REASON``; the response
    passes through unchanged, and the app's ``on_connect`` (if any) is kept.
    """

    def __call__(self, session: Session, request: Request, api: API) -> ResponseTuple:
        """Call the app and log the request with the status it answered."""
        response = self.app(session, request, api)
        log.info(
            "[%d] %s %s --> %s %s",
            session.requests,
            request.method,
            request.uri,
            response[0],
            response[1],
        )
        return response


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip


def _clf_time(when: float) -> str:
    """``10/Oct/2000:13:55:36 -0700``: local time with its UTC offset."""
    t = time.localtime(when)
    offset = t.tm_gmtoff or 0
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {sign}{hours:02d}{minutes:02d}"
    )


def _clf_escape(text: str) -> str:
    """Escape quotes, backslashes and unprintables: no request forges a log line."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isascii() and ch.isprintable():
            out.append(ch)
        else:
            out.append("".join(f"\\x{b:02x}" for b in ch.encode("utf-8")))
    return "".join(out)


def _optional(name: str, value: object, kind: type) -> None:
    if value is not None and (type(value) is not kind):
        got = f"{type(value)!r}: {value!r}"
        raise TypeError(f"{name}: need a {kind!r} or None; got a {got}")


def format_access_line(
    address: Any,
    method: str | None,
    uri: str | None,
    status: int | None,
    size: int | None,
    *,
    when: float | None = None,
) -> str:
    """One Common Log Format line: ``host - - [time] "request" status size``.

    *address* is the peer address (a tuple's first item is the host; a Unix
    socket gives ``-``).  ``None`` for *method* or *uri* logs the request as
    ``"-"``; ``None`` for *status* or *size* logs ``-``.  *when* (seconds
    since the epoch, default now) is written in local time.

    >>> format_access_line(('127.0.0.1', 5000), 'GET', '/a', 200, 12, when=0.0)[:11]
    '127.0.0.1 -'

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: *status* is not 100 to 999, or *size* is negative.
    """
    _optional("method", method, str)
    _optional("uri", uri, str)
    _optional("status", status, int)
    _optional("size", size, int)
    if when is not None and type(when) not in (int, float):
        raise TypeError(f"when: need a {float!r} or None; got {when!r}")
    if status is not None and not 100 <= status <= 999:
        raise ValueError(f"status: need 100 <= status <= 999; got {status!r}")
    if size is not None and size < 0:
        raise ValueError(f"size: need size >= 0; got {size!r}")
    host = address[0] if isinstance(address, tuple) and address else "-"
    if method is None or uri is None:
        request = "-"
    else:
        request = f"{_clf_escape(method)} {_clf_escape(uri)} HTTP/1.1"
    stamp = _clf_time(time.time() if when is None else when)
    code = "-" if status is None else str(status)
    length = "-" if size is None else str(size)
    return f'{_clf_escape(str(host))} - - [{stamp}] "{request}" {code} {length}'


class AccessLogger(_Middleware):
    """Middleware logging one Common Log Format line per request.

    Each line (see :func:`format_access_line`) goes to *logger* at INFO,
    by default the logger ``degu.access``.  It is written when the app
    returns, with the response's ``content-length`` (or the length of a
    ``bytes`` body) as the size; when the app raises, with status 500 and the
    exception propagating, so that the server answers 500 as usual.  The
    app's ``on_connect`` (if any) is kept.  ``python -m degu.server`` logs
    through this class.
    """

    def __init__(self, app: RGIApp, logger: logging.Logger | None = None) -> None:
        super().__init__(app)
        if logger is not None and not isinstance(logger, logging.Logger):
            raise TypeError(f"logger: need a {logging.Logger!r}; got {logger!r}")
        self.logger = logging.getLogger("degu.access") if logger is None else logger

    def _log(self, session: Any, request: Any, status: Any, size: Any) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        status = status if type(status) is int and 100 <= status <= 999 else None
        size = size if type(size) is int and size >= 0 else None
        line = format_access_line(
            session.address, request.method, request.uri, status, size
        )
        self.logger.info("%s", line)

    def __call__(self, session: Session, request: Request, api: API) -> ResponseTuple:
        """Call the app, then log the request with the status it answered."""
        try:
            response = self.app(session, request, api)
        except Exception:
            # A body the server refused while the app read it gets the 400
            # or 413 the server sends (or nothing), not the app's 500.
            sent = _failed_read_answer(getattr(request, "body", None))
            self._log(session, request, 500 if sent is None else sent, None)
            raise
        # An untyped app may return anything: what is logged is checked.
        status: object
        size: object
        try:
            status, headers, body = response[0], response[2], response[3]
            size = headers.get("content-length") if isinstance(headers, dict) else None
            if size is None and isinstance(body, bytes):
                size = len(body)
        except Exception:  # a malformed response is the server's to report
            status = size = None
        self._log(session, request, status, size)
        return response
