"""An HTTP/1.1 client: ``Client`` says where a server is, ``Connection`` talks.

``Client`` and ``SSLClient`` are stateless and thread-safe: they hold no socket
and only know how to make one (docs/reference/client.rst).  Each ``connect()`` returns a
new ``Connection`` (``degu._connection``), which is not thread-safe.
"""

from __future__ import annotations

import socket

from degu._checks import TYPE_ERROR, address_family, check_positive
from degu._common import TYPE_CHECKING
from degu._limits import DEFAULT_MIN_RATE, SCRATCH_LEN
from degu._parsing import OUT_NAME_CHARS
from degu.base import Connection, Response

if TYPE_CHECKING:
    import ssl
    from typing import Any, Unpack

    from degu._sslctx import build_client_sslctx as build_client_sslctx
    from degu.typehints import Address, ClientOnConnect, ClientOptions, SSLClientOptions

__all__ = ("Client", "SSLClient", "Connection", "Response")  # noqa: RUF022

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
