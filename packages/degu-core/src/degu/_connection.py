"""``Connection``: one client connection to an HTTP server.

Requests are strictly sequential.  The response side is as strict as the
server is about requests: a response is only ever handed to the request that
caused it, and anything that could desynchronise the stream closes the
connection instead (docs/reference/client.rst).

Time is bounded per message, as on the server (docs/explanation/limits.rst):
``timeout`` bounds the whole response preamble, and a request or response
body may keep us waiting ``timeout`` plus one second per ``min_rate`` bytes.
"""

from __future__ import annotations

import socket

from degu._bodies import (
    BODY_CONSUMED,
    Body,
    ChunkedBody,
    Response,
    api,
    framing_without_body,
    set_output_framing,
)
from degu._checks import TYPE_ERROR2, refuse_method, type_error
from degu._common import TYPE_CHECKING
from degu._limits import BODY_METHODS, DEFAULT_MIN_RATE, METHODS
from degu._parsing import CHUNKED, parse_response, response_body_framing, wants_close
from degu._ranges import Range
from degu._reader import Reader
from degu._rendering import render_request, send_message
from degu._stream import FOREVER, Budget, make_stream

if TYPE_CHECKING:
    from typing import Any

    from degu.typehints import Headers, OutputBody

__all__ = ["MAX_INTERIM_RESPONSES", "Connection"]

#: Unsolicited 1xx responses skipped before the final one; more is an attack.
MAX_INTERIM_RESPONSES = 8


class Connection:
    """A client connection over *sock* (needs ``recv_into``, ``send``, ``close``)."""

    __slots__ = (
        "__weakref__",
        "_base_headers",
        "_body_budget",
        "_min_rate",
        "_preamble_budget",
        "_reader",
        "_response_body",
        "_send_budget",
        "_sock",
        "_stream",
        "_timeout",
    )

    api = api
    bodies = api

    def __init__(
        self,
        sock: Any,
        base_headers: tuple[Any, ...] | None,
        *,
        min_rate: float = DEFAULT_MIN_RATE,
    ) -> None:
        if base_headers is not None and type(base_headers) is not tuple:
            raise TypeError(
                TYPE_ERROR2.format("base_headers", tuple, type(base_headers))
            )
        # A real socket's timeout becomes the per-message bound; any other
        # socket-like object keeps its own timeouts.
        timeout = sock.gettimeout() if isinstance(sock, socket.socket) else None
        self._sock = sock
        self._timeout: float = timeout if timeout else FOREVER
        self._min_rate = min_rate
        try:  # looks up recv_into and send at once
            self._stream = make_stream(sock, self._timeout)
        except BaseException:
            # An object we cannot use is closed here, as Degu 0.19 does.
            close = getattr(sock, "close", None)
            if callable(close):
                close()
            raise
        self._base_headers = base_headers
        self._reader = Reader(self._stream)
        self._response_body: Any = None
        # One Budget of each kind per connection, reset for each message:
        # requests are sequential, and a reset costs ~12 ns where a new
        # Budget costs ~130 ns (2-vCPU VM, median of 7).
        self._send_budget = Budget(self._timeout, min_rate)
        self._preamble_budget = Budget(self._timeout)
        self._body_budget = Budget(self._timeout, min_rate)

    @property
    def sock(self) -> Any:
        """The socket-like object this connection talks over."""
        return self._sock

    @property
    def base_headers(self) -> tuple[Any, ...] | None:
        """Headers added to every request, or ``None``."""
        return self._base_headers

    @property
    def closed(self) -> bool:
        """True once the connection is closed (by you or after an error)."""
        return self._reader.closed

    def close(self) -> None:
        """Close the socket (``close()`` only, never ``shutdown()``); idempotent."""
        self._reader.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<degu Connection sock={self._sock!r}>"

    def request(
        self, method: str, uri: str, headers: Headers, body: OutputBody, /
    ) -> Response:
        """Send one request and return its ``Response``."""
        if type(method) is not str or method not in METHODS:
            refuse_method(method)
        reader = self._reader
        if reader.closed:
            raise ValueError("Connection is closed")
        try:
            if body is not None and method not in BODY_METHODS:
                raise ValueError(
                    f"when method is {method!r}, body must be None; "
                    f"got a {type(body)!r}"
                )
            prev = self._response_body
            if prev is not None and prev.state != BODY_CONSUMED:
                raise ValueError(f"response body not consumed: {prev!r}")
            if reader.buffered:
                raise ValueError(
                    f"{reader.buffered} unexpected bytes after the previous response"
                )
            if type(headers) is not dict:
                type_error("headers", dict, headers)
            if self._base_headers is not None:
                headers.update(self._base_headers)
            if body is not None:
                set_output_framing(headers, body)
            elif "content-length" in headers or "transfer-encoding" in headers:
                _check_bodiless_framing(headers)
            preamble = render_request(method, uri, headers)
            self._response_body = None
            stream = self._stream
            budget = self._send_budget
            budget.moved = 0
            budget.waited = 0.0
            send_message(stream, preamble, body, budget)
            return self._read_response(method, headers)
        except BaseException:
            self.close()
            raise

    def _read_response(self, method: str, req_headers: dict[str, Any]) -> Response:
        reader = self._reader
        # One bound for the whole response preamble, interim responses included.
        budget = self._preamble_budget
        budget.moved = 0
        budget.waited = 0.0
        for _ in range(MAX_INTERIM_RESPONSES + 1):
            # The usual case first: nothing buffered yet, and the first
            # receive brings the whole preamble.  Anything else (or EOF) is
            # read_preamble()'s to finish or refuse.
            end = -1
            if not reader.buffered and reader.fill(budget):
                end = reader.preamble_end()
            if end >= 0:
                preamble = reader.take_preamble(end)
            else:
                preamble = reader.read_preamble("response preamble is empty", budget)
            status, reason, headers = parse_response(preamble)
            if status >= 200:
                break
            # We never send "Expect" nor "Upgrade", so any 1xx is unsolicited:
            # skip it, unless it claims a body or switches protocols.
            if (
                status == 101
                or "content-length" in headers
                or "transfer-encoding" in headers
            ):
                raise ValueError(f"unexpected interim response: {status} {reason}")
        else:
            raise ValueError(f"more than {MAX_INTERIM_RESPONSES} interim responses")
        n = response_body_framing(method, status, headers)
        body: Body | ChunkedBody | None
        if n is None:
            body = None
            if reader.buffered:
                # Bytes after an unframed response can only be garbage or an
                # attempt to smuggle a second response.
                raise ValueError(
                    f"{reader.buffered} unexpected bytes after a response "
                    "without a body"
                )
        else:
            reader.budget = budget = self._body_budget
            budget.moved = 0
            budget.waited = 0.0
            body = ChunkedBody(reader) if n == CHUNKED else Body._new(reader, n)
        if ("connection" in headers and wants_close(headers)) or (
            "connection" in req_headers and wants_close(req_headers)
        ):
            if body is None:
                reader.close()
            else:
                reader.close_when_done = True
        self._response_body = body
        return Response(status, reason, headers, body)

    def get(self, uri: str, headers: Headers, /) -> Response:
        """``request('GET', uri, headers, None)``."""
        return self.request("GET", uri, headers, None)

    def head(self, uri: str, headers: Headers, /) -> Response:
        """``request('HEAD', uri, headers, None)``."""
        return self.request("HEAD", uri, headers, None)

    def delete(self, uri: str, headers: Headers, /) -> Response:
        """``request('DELETE', uri, headers, None)``."""
        return self.request("DELETE", uri, headers, None)

    def put(self, uri: str, headers: Headers, body: OutputBody, /) -> Response:
        """``request('PUT', uri, headers, body)``."""
        return self.request("PUT", uri, headers, body)

    def post(self, uri: str, headers: Headers, body: OutputBody, /) -> Response:
        """``request('POST', uri, headers, body)``."""
        return self.request("POST", uri, headers, body)

    def options(self, uri: str, headers: Headers, /) -> Response:
        """``request('OPTIONS', uri, headers, None)``."""
        return self.request("OPTIONS", uri, headers, None)

    def patch(self, uri: str, headers: Headers, body: OutputBody, /) -> Response:
        """``request('PATCH', uri, headers, body)``."""
        return self.request("PATCH", uri, headers, body)

    def get_range(
        self, uri: str, headers: Headers, start: int, stop: int, /
    ) -> Response:
        """GET with ``headers['range'] = Range(start, stop)``."""
        value = Range(start, stop)
        if "range" in headers and headers["range"] != value:
            raise ValueError(f"'range' mismatch: {value!r} != {headers['range']!r}")
        headers["range"] = value
        return self.request("GET", uri, headers, None)


def _check_bodiless_framing(headers: Any) -> None:
    # Framing headers with no body would make the server wait for a body
    # that never comes (or read our next request as this one's body).
    if type(headers) is not dict:
        return  # refused with its own message by set_output_framing()
    found = framing_without_body(headers)
    if found is not None:
        raise ValueError(f"{found} with no body")
