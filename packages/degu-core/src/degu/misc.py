"""Test fixtures and helpers for Degu servers, clients and RGI apps (SPEC §9).

Importing this module pulls in ``multiprocessing``, ``tempfile`` and the TLS
helpers, so keep it out of production import paths: it is meant for tests,
demos and interactive exploration.

The wire helpers here (``format_*``, ``parse_headers``, ``write_chunk``) use
the very parser and renderer the server and client use, so what a test builds
with them is exactly what Degu would send or accept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from degu._parsing import parse_headers as _parse_headers
from degu._processes import TempServer, TempSSLServer
from degu._rendering import render_chunk
from degu._targets import check_percents as _check_percents
from degu._targets import decode_segment as _decode_segment
from degu._temppki import TempPKI
from degu.base import Request

__all__ = (
    "RequestLogger",
    "TempPKI",
    "TempSSLServer",
    "TempServer",
    "format_headers",
    "format_request",
    "format_response",
    "mkreq",
    "mkuri",
    "parse_headers",
    "write_chunk",
)

log = logging.getLogger("degu.misc")


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
        raise TypeError(f"shift: need a {int!r}; got a {type(shift)!r}: {shift!r}")
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
    """Parse CRLF-separated header lines with the rules of SPEC §1.5.

    ``isresponse`` selects the response rules (``content-range`` allowed,
    ``range`` refused); it must be exactly a ``bool``.

    >>> parse_headers(b'Content-Length: 17\\r\\nX-Foo: bar')
    {'content-length': 17, 'x-foo': 'bar'}
    """
    if type(isresponse) is not bool:
        raise TypeError(
            f"isresponse: need a {bool!r}; got a {type(isresponse)!r}: {isresponse!r}"
        )
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


class RequestLogger:
    """Middleware logging one INFO line per request on logger ``degu.misc``.

    The line is ``[REQUESTS] METHOD URI --> STATUS REASON``; the response
    passes through unchanged, and the app's ``on_connect`` (if any) is kept.
    """

    def __init__(self, app: Callable[..., Any]) -> None:
        if not callable(app):
            raise TypeError(f"app: not callable: {app!r}")
        self.app = app
        on_connect = getattr(app, "on_connect", None)
        if on_connect is not None:
            self.on_connect = on_connect

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.app!r})"

    def __call__(self, session: Any, request: Any, api: Any) -> Any:
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
