"""An HTTP/1.1 client: ``Client`` says where a server is, ``Connection`` talks.

``Client`` and ``SSLClient`` are stateless and thread-safe: they hold no socket
and only know how to make one (docs/reference/client.rst).  Each ``connect()``
returns a new ``Connection``, which is not thread-safe.

A connection's requests are strictly sequential.  The response side is as
strict as the server is about requests: a response is only ever handed to the
request that caused it, and anything that could desynchronise the stream
closes the connection instead.  Time is bounded per message, as on the server
(docs/explanation/limits.rst): ``timeout`` bounds the whole response preamble,
and a request or response body may keep us waiting ``timeout`` plus one second
per ``min_rate`` bytes.
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
from degu._checks import (
    TYPE_ERROR,
    TYPE_ERROR2,
    address_family,
    check_positive,
    refuse_method,
    type_error,
)
from degu._common import TYPE_CHECKING
from degu._limits import BODY_METHODS, DEFAULT_MIN_RATE, METHODS, SCRATCH_LEN
from degu._parsing import (
    CHUNKED,
    OUT_NAME_CHARS,
    parse_framed_response,
    parse_response,
    response_body_framing,
    wants_close,
)
from degu._ranges import Range
from degu._reader import Reader
from degu._rendering import render_request, send_message
from degu._stream import FOREVER, Budget, make_stream

if TYPE_CHECKING:
    import ssl
    from typing import Any, Unpack

    from degu._sslctx import build_client_sslctx as build_client_sslctx
    from degu.typehints import (
        Address,
        ClientOnConnect,
        ClientOptions,
        Headers,
        OutputBody,
        SSLClientOptions,
    )

__all__ = ("Client", "SSLClient", "Connection", "Response")  # noqa: RUF022

#: Unsolicited 1xx responses skipped before the final one; more is an attack.
MAX_INTERIM_RESPONSES = 8
_new_tuple = tuple.__new__


class Connection:
    """A client connection over *sock* (needs ``recv_into``, ``send``, ``close``)."""

    __slots__ = (
        "__weakref__",
        "_base_headers",
        "_base_items",
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
        # What request() adds to every request's headers: a dict when the
        # tuple makes one, as dict.update() takes a dict in 87 ns and the
        # tuple of one pair in 164 ns (timeit, best of 7, 2-vCPU VM); else
        # the tuple, so that update() raises its own error at request time.
        self._base_items: Any = base_headers
        if base_headers:
            try:
                self._base_items = dict(base_headers)
            except (TypeError, ValueError):
                pass
        self._reader = Reader(self._stream)
        self._response_body: Any = None
        # One Budget of each kind per connection, reset for each message:
        # requests are sequential, and a reset costs ~12 ns where a new
        # Budget costs ~130 ns (2-vCPU VM, median of 7).
        self._send_budget = Budget(self._timeout, min_rate)
        self._preamble_budget = Budget(self._timeout)
        self._body_budget = Budget(self._timeout, min_rate)
        self._reader.budget = self._body_budget

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
            # _state, not the state property: one attribute load, not a call.
            if prev is not None and prev._state != BODY_CONSUMED:
                raise ValueError(f"response body not consumed: {prev!r}")
            if reader.buffered:
                raise ValueError(
                    f"{reader.buffered} unexpected bytes after the previous response"
                )
            if type(headers) is not dict:
                type_error("headers", dict, headers)
            if self._base_items is not None:
                headers.update(self._base_items)
            if body is not None:
                set_output_framing(headers, body)
            elif "content-length" in headers or "transfer-encoding" in headers:
                _check_bodiless_framing(headers)
            preamble = render_request(method, uri, headers)
            budget = self._send_budget
            budget.moved = 0
            budget.waited = 0.0
            if body is None:
                # What send_message() does then, one call sooner.
                self._stream.send_all(preamble, budget)
            else:
                send_message(self._stream, preamble, body, budget)
            # One bound for the whole response preamble, interim responses
            # included.  The usual case first: the first receive brings the
            # whole final preamble; anything else is _read_preamble()'s.
            budget = self._preamble_budget
            budget.moved = 0
            budget.waited = 0.0
            received = reader.recv_preamble(budget)
            if received is not None:
                # Parse and framing in one cache lookup: the usual response.
                status, reason, rheaders, n = parse_framed_response(received, method)
            if received is None or status < 200:
                status, reason, rheaders = self._read_preamble(
                    budget, None if received is None else (status, reason, rheaders)
                )
                n = response_body_framing(method, status, rheaders)
            rbody: Body | ChunkedBody | None
            if n is None:
                rbody = None
                if reader.buffered:
                    # Bytes after an unframed response can only be garbage or
                    # an attempt to smuggle a second response.
                    raise ValueError(
                        f"{reader.buffered} unexpected bytes after a response "
                        "without a body"
                    )
            else:
                budget = self._body_budget  # the reader's, for every body
                budget.moved = 0
                budget.waited = 0.0
                rbody = ChunkedBody(reader) if n == CHUNKED else Body._new(reader, n)
            if ("connection" in rheaders and wants_close(rheaders)) or (
                "connection" in headers and wants_close(headers)
            ):
                if rbody is None:
                    reader.close()
                else:
                    reader.close_when_done = True
            self._response_body = rbody
            # tuple.__new__ skips the namedtuple's Python-level __new__:
            # 135 ns instead of 236 ns (2-vCPU VM, best of 5).
            return _new_tuple(Response, (status, reason, rheaders, rbody))
        except BaseException:
            self.close()
            raise

    def _read_preamble(
        self, budget: Budget, first: tuple[int, str, dict[str, Any]] | None
    ) -> tuple[int, str, dict[str, Any]]:
        """The final response preamble, read and parsed within *budget*.

        *first* is an interim response already parsed, if any.
        """
        reader = self._reader
        for _ in range(MAX_INTERIM_RESPONSES + 1):
            if first is None:
                preamble = reader.read_preamble("response preamble is empty", budget)
                status, reason, headers = parse_response(preamble)
            else:
                status, reason, headers = first
                first = None
            if status >= 200:
                return status, reason, headers
            # We never send "Expect" nor "Upgrade", so any 1xx is unsolicited:
            # skip it, unless it claims a body or switches protocols.
            if (
                status == 101
                or "content-length" in headers
                or "transfer-encoding" in headers
            ):
                raise ValueError(f"unexpected interim response: {status} {reason}")
        raise ValueError(f"more than {MAX_INTERIM_RESPONSES} interim responses")

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


#: Default Client timeout in seconds.
DEFAULT_TIMEOUT = 65
_OPTIONS = ("authorization", "host", "min_rate", "on_connect", "timeout")


def _default_host(address: Any, default_port: int) -> str | None:
    if type(address) is not tuple:
        return None
    host, port = address[0], address[1]
    if ":" in host:
        host = f"[{host}]"
    return host if port == default_port else f"{host}:{port}"


def _check_optional_str(name: str, value: object) -> str | None:
    if value is not None and type(value) is not str:
        raise TypeError(TYPE_ERROR.format(name, str, type(value), value))
    return value


class Client:
    """Where an HTTP server is and how to connect to it (holds no socket)."""

    _default_port = 80
    _extra_options: tuple[str, ...] = ()

    def __init__(self, address: Address, **options: Unpack[ClientOptions]) -> None:
        self._family = address_family(address)
        unknown = sorted(set(options) - set(_OPTIONS) - set(self._extra_options))
        if unknown:
            raise TypeError(
                f"unsupported {type(self).__name__}() **options: {', '.join(unknown)}"
            )
        self.address = address
        self.options = options
        if "host" in options:
            self.host = _check_optional_str("host", options["host"])
        else:
            self.host = _default_host(address, self._default_port)
        self.authorization = _check_optional_str(
            "authorization", options.get("authorization")
        )
        timeout = options.get("timeout", DEFAULT_TIMEOUT)
        if timeout is not None:
            check_positive("timeout", timeout)
        self.timeout: float | None = timeout
        #: Bytes per second a body must average once ``timeout`` is spent.
        self.min_rate: float = check_positive(
            "min_rate", options.get("min_rate", DEFAULT_MIN_RATE)
        )
        on_connect = options.get("on_connect")
        if on_connect is not None and not callable(on_connect):
            raise TypeError(f"on_connect: not callable: {on_connect!r}")
        self.on_connect: ClientOnConnect | None = on_connect
        self._headers: dict[str, str] = {}
        if self.authorization is not None:
            self._headers["authorization"] = self.authorization
        if self.host is not None:
            self._headers["host"] = self.host
        self.base_headers = self._build_base_headers()

    def _build_base_headers(self) -> tuple[tuple[str, str], ...] | None:
        return tuple(sorted(self._headers.items())) or None

    def set_base_header(self, name: str, value: str | None) -> None:
        """Add or replace (*value* a str) or remove (``None``) a base header."""
        if type(name) is not str:
            raise TypeError(TYPE_ERROR.format("name", str, type(name), name))
        if name != name.lower() or not name:
            raise ValueError(f"name must be lowercase; got {name!r}")
        # Checked now, as every request would check it: a bad base header
        # would otherwise make each later request fail and close.
        if (
            len(name) > SCRATCH_LEN
            or not name.isascii()
            or name.encode().translate(None, OUT_NAME_CHARS)
        ):
            raise ValueError(
                f"name: need 1-{SCRATCH_LEN} of a-z, 0-9 and '-'; got {name!r}"
            )
        if value is None:
            self._headers.pop(name, None)
        else:
            if type(value) is not str:
                raise TypeError(TYPE_ERROR.format("value", str, type(value), value))
            if not (value and value.isascii() and value.isprintable()):
                raise ValueError(
                    f"value: need non-empty printable ASCII; got {value!r}"
                )
            self._headers[name] = value
        self.base_headers = self._build_base_headers()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address!r})"

    def create_socket(self) -> socket.socket:
        """Return a new socket connected to ``address``, timeout applied."""
        address: Any = self.address  # its shape follows self._family
        if self._family == socket.AF_INET:
            sock = socket.create_connection(address[:2], self.timeout)
        else:
            sock = socket.socket(self._family, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                if self._family == socket.AF_UNIX:
                    # Makes Linux autobind us to an abstract name, so the
                    # server's Session.address identifies this client.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
                sock.connect(address)
            except BaseException:
                sock.close()
                raise
        if self._family != socket.AF_UNIX:
            # Nagle + delayed ACK would add ~40 ms to many requests.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def connect(self) -> Connection:
        """A new ``Connection`` over ``create_socket()``."""
        sock = self.create_socket()
        try:
            conn = Connection(sock, self.base_headers, min_rate=self.min_rate)
        except BaseException:
            sock.close()
            raise
        if self.on_connect is not None:
            try:
                result = self.on_connect(conn)
            except BaseException:
                conn.close()
                raise
            if result is not True:
                conn.close()
                raise ValueError("on_connect() did not return True")
        return conn


class SSLClient(Client):
    """A ``Client`` for HTTPS; *sslctx* is an SSLContext or sslconfig dict."""

    _default_port = 443
    _extra_options = ("ssl_host",)

    def __init__(
        self,
        sslctx: ssl.SSLContext | dict[str, Any],
        address: Address,
        **options: Unpack[SSLClientOptions],
    ) -> None:
        # Imported here so that plain HTTP never pays for the ssl module.
        from degu._sslctx import TLSSessions, get_client_sslctx

        self.sslctx: ssl.SSLContext = get_client_sslctx(sslctx)
        #: Sessions to resume on the next connections (docs/reference/tls.rst).
        self.tls_sessions = TLSSessions()
        # ssl_host is one of _extra_options, which Client accepts at run time.
        super().__init__(address, **options)  # type: ignore[misc]
        if "ssl_host" in options:
            self.ssl_host = _check_optional_str("ssl_host", options["ssl_host"])
        else:
            self.ssl_host = address[0] if type(address) is tuple else None
        if self.ssl_host is None and self.sslctx.check_hostname:
            # Fail here, not at every connect() with ssl's vaguer wording.
            raise ValueError(
                "ssl_host: None, but sslctx.check_hostname is True: pass "
                "ssl_host='<name in the server certificate>' (needed for a "
                "Unix socket address), or use check_hostname=False"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<sslctx>, {self.address!r})"

    def create_socket(self) -> ssl.SSLSocket:
        """A new TLS socket (``server_hostname=ssl_host``), handshake done.

        It resumes a session of an earlier connection when one is kept in
        ``tls_sessions``.
        """
        sock = super().create_socket()
        try:
            return self.tls_sessions.wrap(self.sslctx, sock, self.ssl_host)
        except BaseException:
            sock.close()
            raise


def __getattr__(name: str) -> Any:
    # build_client_sslctx lives in degu._sslctx; fetched lazily so that
    # importing degu.client does not import ssl.
    if name == "build_client_sslctx":
        from degu._sslctx import build_client_sslctx

        return build_client_sslctx
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
