"""An embedded HTTP/1.1 server speaking RGI.

``Server`` binds in its constructor and serves with ``serve_forever()``.  The
I/O loop (``degu._loop``) accepts and holds every connection with no request
running, so an idle connection costs a descriptor, not a thread; its leader
thread runs ready requests itself, while the thread in ``serve_forever()``
stands by to replace a leader stuck in an app, and worker threads
(``degu._pool``) take what the leader cannot: at most ``max_connections``
requests run at once (docs/explanation/connections.rst).  The request loop is
in ``degu._serving``, the grammar in ``degu._parsing`` / ``degu._rendering``.
``shutdown()`` works from any thread and from a signal handler running in the
serving thread itself (docs/reference/server.rst).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable

from degu._checks import TYPE_ERROR, address_family, check_int, check_positive
from degu._common import TYPE_CHECKING
from degu._limits import DEFAULT_MIN_RATE
from degu._log import LazyLogger
from degu._request import MAX_REQUESTS_LIMIT, Request, Session

if TYPE_CHECKING:
    import logging
    import ssl
    from collections.abc import Mapping
    from typing import Any, Unpack

    from degu._loop import ServerLoop
    from degu._sslctx import build_server_sslctx as build_server_sslctx
    from degu.typehints import Address, RGIApp, ServerAddress, ServerOptions

__all__ = ("Server", "SSLServer", "Session", "Request")  # noqa: RUF022 (0.19 order)

#: Listen backlog: a burst of connections is accepted without SYN retries.
LISTEN_BACKLOG = 1024
DEFAULT_OPTIONS: dict[str, Any] = {
    "max_connections": 50,
    "max_requests": 1000,
    "timeout": 30,
    "max_open_connections": None,
    "min_rate": DEFAULT_MIN_RATE,
    "access_log": None,
}

# Imports logging only for a record that could be printed (degu/_log.py).
_log = LazyLogger("degu.server")


def _logger() -> LazyLogger:
    return _log


def _check_options(cls_name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise TypeError(f"unsupported {cls_name}() **options: {', '.join(unknown)}")
    values = dict(DEFAULT_OPTIONS, **options)
    conns = values["max_connections"]
    if type(conns) is not int:
        raise TypeError(TYPE_ERROR.format("max_connections", int, type(conns), conns))
    if conns <= 0:
        raise ValueError(f"need max_connections > 0; got {conns}")
    check_int("max_requests", values["max_requests"], 1, MAX_REQUESTS_LIMIT)
    check_positive("timeout", values["timeout"])
    check_positive("min_rate", values["min_rate"])
    max_open = values["max_open_connections"]
    if max_open is not None:
        if type(max_open) is not int:
            raise TypeError(
                TYPE_ERROR.format("max_open_connections", int, type(max_open), max_open)
            )
        if max_open < conns:
            raise ValueError(
                f"need max_open_connections >= max_connections ({conns}); "
                f"got {max_open}"
            )
    access_log = values["access_log"]
    if access_log is not None:
        import logging

        if not isinstance(access_log, logging.Logger):
            raise TypeError(
                TYPE_ERROR.format(
                    "access_log", logging.Logger, type(access_log), access_log
                )
            )
    return values


def _bind(address: Any) -> socket.socket:
    if isinstance(address, socket.socket):
        return address
    family = address_family(address)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def _app_name(app: Any) -> str:
    name = getattr(app, "__qualname__", None)
    if isinstance(name, str):
        return f"{app.__module__}.{name}"
    cls = type(app)
    return f"{cls.__module__}.{cls.__qualname__}(<...>)"


class Server:
    """An HTTP server bound to *address*, serving the RGI *app*."""

    #: What the listening socket is bound to (its ``getsockname()``).
    address: Address

    def __init__(
        self, address: ServerAddress, app: RGIApp, **options: Unpack[ServerOptions]
    ) -> None:
        if not callable(app):
            raise TypeError(f"app: not callable: {app!r}")
        on_connect = getattr(app, "on_connect", None)
        if on_connect is not None and not callable(on_connect):
            raise TypeError(f"app.on_connect: not callable: {app!r}")
        values = _check_options(type(self).__name__, options)
        self.app = app
        self.options = options
        #: Requests running at once: one worker thread each.
        self.max_connections: int = values["max_connections"]
        self.max_requests: int = values["max_requests"]
        self.timeout: float = values["timeout"]
        #: Bytes per second a body must average once ``timeout`` is spent.
        self.min_rate: float = values["min_rate"]
        from degu._loop import default_max_open

        max_open, nofile = default_max_open(self.max_connections)
        if values["max_open_connections"] is not None:
            max_open = values["max_open_connections"]
        #: Connections open at once, idle ones included.
        self.max_open_connections: int = max_open
        #: Where requests no app answered are logged, or None.
        self.access_log: logging.Logger | None = values["access_log"]
        self.sock = _bind(address)
        self.address = self.sock.getsockname()
        # The socket file this server removes when it stops.  Internal
        # interface of degu._cli: ``--workers`` sets it to None in each
        # worker, and its supervisor removes the file once, at the end.
        self._unlink = address if type(address) is str else None
        self._on_connect = on_connect
        self._lock = threading.RLock()
        self._serving: int | None = None
        self._stopping = False
        self._listener_closed = False
        self._shutdown_timeout: float = self.timeout
        self._done = threading.Event()
        self._loop: ServerLoop | None = None
        log = _logger()
        log.info("%r: options %r", self, options)
        log.info(
            "%r: at most %d requests at once, %d open connections "
            "(RLIMIT_NOFILE soft limit: %d)",
            self,
            self.max_connections,
            self.max_open_connections,
            nofile,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address!r}, {_app_name(self.app)})"

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def _stopping_now(self) -> bool:
        return self._stopping

    def _get_shutdown_timeout(self) -> float:
        return self._shutdown_timeout

    def serve_forever(self) -> None:
        """Accept and serve connections until ``shutdown()`` (or an error)."""
        from degu._loop import ServerLoop
        from degu._serving import ServingRules

        with self._lock:
            if self._serving is not None:
                raise RuntimeError("serve_forever() is already running")
            # Set before the check: a signal handler calling shutdown() from
            # here on only flags the stop, and never closes the socket under us.
            self._serving = threading.get_ident()
            if self._stopping:
                self._serving = None
                self._close_listener()
                return
            self.sock.setblocking(False)
            rules = ServingRules(
                self.app,
                self._on_connect,
                self.timeout,
                self.min_rate,
                self._stopping_now,
            )
            loop = self._loop = ServerLoop(
                self.sock,
                rules,
                workers=self.max_connections,
                max_open=self.max_open_connections,
                max_requests=self.max_requests,
                wrap=self._wrap_socket,
                log=_logger(),
                access_log=self.access_log,
            )
        try:
            loop.run(self._stopping_now, self._get_shutdown_timeout)
        finally:
            self._stopping = True
            with self._lock:
                self._close_listener()
            self._done.set()

    #: Wraps each accepted socket (TLS), or None for plain HTTP.
    _wrap_socket: Callable[[socket.socket], Any] | None = None

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting, let requests in progress finish, then close.

        Waits at most *timeout* seconds (default: ``self.timeout``) for
        requests in progress; idle keep-alive connections close at once.
        Safe from any thread, and from a signal handler in the thread running
        ``serve_forever()`` (which then returns once connections are done).
        """
        if timeout is not None:
            if type(timeout) is not int and type(timeout) is not float:
                raise TypeError(
                    TYPE_ERROR.format("timeout", (int, float), type(timeout), timeout)
                )
            if not timeout >= 0:
                raise ValueError(f"need timeout >= 0; got {timeout!r}")
            self._shutdown_timeout = timeout
        self._stopping = True
        if self._serving == threading.get_ident():
            # A signal handler inside serve_forever(): the loop finishes up.
            if self._loop is not None:
                self._loop.wake()
            return
        with self._lock:
            serving = self._serving is not None
            loop = self._loop
            if not serving:
                self._close_listener()
        if loop is not None:
            loop.wake()
        if serving:
            from degu._loop import SHUTDOWN_FORCE_GRACE

            self._done.wait(self._shutdown_timeout + 2 * SHUTDOWN_FORCE_GRACE)

    def _close_listener(self) -> None:
        if self._listener_closed:
            return
        self._listener_closed = True
        self.sock.close()
        if self._unlink is not None:
            try:
                os.unlink(self._unlink)
            except FileNotFoundError:
                pass


class SSLServer(Server):
    """A ``Server`` speaking HTTPS; *sslctx* is an SSLContext or sslconfig dict."""

    def __init__(
        self,
        sslctx: ssl.SSLContext | dict[str, Any],
        address: ServerAddress,
        app: RGIApp,
        **options: Unpack[ServerOptions],
    ) -> None:
        # Imported here so that plain HTTP never pays for the ssl module.
        from degu._sslctx import get_server_sslctx

        self.sslctx: ssl.SSLContext = get_server_sslctx(sslctx)
        super().__init__(address, app, **options)

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(<sslctx>, {self.address!r}, {_app_name(self.app)})"

    def _wrap_socket(self, sock: socket.socket) -> Any:
        # The handshake runs in the I/O loop, step by step as the peer's
        # bytes arrive, within ``timeout``: a silent or trickling peer holds
        # no thread (docs/explanation/limits.rst).
        tls = self.sslctx.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        )
        tls.setblocking(False)
        return tls


def __getattr__(name: str) -> Any:
    # build_server_sslctx lives in degu._sslctx; fetched lazily so that
    # importing degu.server does not import ssl.
    if name == "build_server_sslctx":
        from degu._sslctx import build_server_sslctx

        return build_server_sslctx
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    from degu._cli import main

    raise SystemExit(main())
