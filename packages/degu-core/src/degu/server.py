"""An embedded HTTP/1.1 server speaking RGI (SPEC §4).

``Server`` binds in its constructor and serves with ``serve_forever()``: one
daemon thread per connection, at most ``max_connections`` at once.  The accept
loop waits in ``poll()`` on the listening socket *and* a wake-up socketpair, so
``shutdown()`` can stop it from any thread or from a signal handler running in
the serving thread itself (SPEC §14 item 12).  The request loop is in
``degu._serving``; the grammar in ``degu._parsing`` / ``degu._rendering``.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from time import monotonic

from degu._common import TYPE_ERROR, check_int
from degu._request import MAX_REQUESTS_LIMIT
from degu._serving import ConnectionState, RequestRefused, serve_requests
from degu.base import Request, Session

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~6 ms
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    import logging
    import ssl

__all__ = ("Server", "SSLServer", "Session", "Request")  # noqa: RUF022 (SPEC order)

#: Listen backlog: a burst of connections is accepted without SYN retries.
LISTEN_BACKLOG = 1024
#: How long a new connection waits for a free max_connections slot (SPEC §4.1).
SLOT_WAIT = 2.0
#: After shutdown's timeout, how long to wait for forcibly closed connections.
SHUTDOWN_FORCE_GRACE = 2.0
DEFAULT_OPTIONS = {"max_connections": 50, "max_requests": 1000, "timeout": 30}

_log: logging.Logger | None = None


def _logger() -> logging.Logger:
    # logging costs ~10 ms to import; only a running server needs it.
    global _log
    if _log is None:
        import logging

        _log = logging.getLogger("degu.server")
    return _log


def _check_options(cls_name: str, options: dict[str, Any]) -> dict[str, Any]:
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
    timeout = values["timeout"]
    if type(timeout) is not int and type(timeout) is not float:
        raise TypeError(
            TYPE_ERROR.format("timeout", (int, float), type(timeout), timeout)
        )
    if not 0 < timeout < float("inf"):
        raise ValueError(f"need 0 < timeout < inf; got {timeout!r}")
    return values


def _bind(address: Any) -> socket.socket:
    if isinstance(address, socket.socket):
        return address
    if type(address) is tuple:
        if len(address) == 2:
            family = socket.AF_INET
        elif len(address) == 4:
            family = socket.AF_INET6
        else:
            raise ValueError(f"address: must have 2 or 4 items; got {address!r}")
    elif type(address) is str:
        if address != os.path.abspath(address):
            raise ValueError(f"address: bad socket filename: {address!r}")
        family = socket.AF_UNIX
    elif type(address) is bytes:
        family = socket.AF_UNIX
    else:
        raise TypeError(
            TYPE_ERROR.format("address", (tuple, str, bytes), type(address), address)
        )
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


def _force_shutdown(sock: Any) -> None:
    # The plain-socket method on purpose: on an SSLSocket it wakes the thread
    # blocked in recv without touching TLS state from this thread.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class Server:
    """An HTTP server bound to *address*, serving the RGI *app*."""

    def __init__(self, address: Any, app: Callable[..., Any], **options: Any) -> None:
        if not callable(app):
            raise TypeError(f"app: not callable: {app!r}")
        on_connect = getattr(app, "on_connect", None)
        if on_connect is not None and not callable(on_connect):
            raise TypeError(f"app.on_connect: not callable: {app!r}")
        values = _check_options(type(self).__name__, options)
        self.app = app
        self.options = options
        self.max_connections: int = values["max_connections"]
        self.max_requests: int = values["max_requests"]
        self.timeout: float = values["timeout"]
        self.sock = _bind(address)
        self.address = self.sock.getsockname()
        self._unlink = address if type(address) is str else None
        self._on_connect = on_connect
        self._tcp = self.sock.family in (socket.AF_INET, socket.AF_INET6)
        self._unix = self.sock.family == socket.AF_UNIX
        self._slots = threading.Semaphore(self.max_connections)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._conns: set[ConnectionState] = set()
        self._serving: int | None = None
        self._stopping = False
        self._listener_closed = False
        self._shutdown_timeout: float = self.timeout
        self._done = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        _logger().info("%r: options %r", self, options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address!r}, {_app_name(self.app)})"

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def _stopping_now(self) -> bool:
        return self._stopping

    def serve_forever(self) -> None:
        """Accept and serve connections until ``shutdown()`` (or an error)."""
        with self._lock:
            if self._serving is not None:
                raise RuntimeError("serve_forever() is already running")
            if self._stopping:
                return
            self._serving = threading.get_ident()
        try:
            self._accept_loop()
        finally:
            self._stopping = True
            self._finish()

    def _accept_loop(self) -> None:
        import select

        lsock = self.sock
        lsock.setblocking(False)
        poller = select.poll()
        poller.register(lsock, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while not self._stopping:
            poller.poll()
            while not self._stopping:
                try:
                    sock, address = lsock.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    break
                except OSError as e:
                    # Out of file descriptors and the like: back off briefly
                    # instead of spinning (a wake-up still ends the wait).
                    _logger().warning("accept() failed: %r", e)
                    poller.poll(100)
                    break
                self._start_connection(sock, address)

    def _start_connection(self, sock: socket.socket, address: Any) -> None:
        if not self._slots.acquire(timeout=SLOT_WAIT):
            _logger().warning("Too many connections, rejecting %r", address)
            sock.close()
            return
        state: ConnectionState | None = None
        try:
            sock.settimeout(self.timeout)
            credentials = None
            if self._tcp:
                # Nagle + delayed ACK would add ~40 ms to many responses.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            elif self._unix:
                credentials = _peer_credentials(sock)
            session = Session(address, credentials, self.max_requests)
            state = ConnectionState(sock)
            with self._lock:
                self._conns.add(state)
            thread = threading.Thread(
                target=self._run_connection, args=(sock, session, state), daemon=True
            )
            thread.start()
        except BaseException as e:
            if state is not None:
                with self._lock:
                    self._conns.discard(state)
            self._slots.release()
            sock.close()
            if not isinstance(e, Exception):
                raise
            # One connection's set-up failing (a peer reset before a
            # setsockopt, no thread left to start...) must not end
            # serve_forever() for every other client.
            _logger().warning("Could not start connection %r: %r", address, e)

    def _wrap_socket(self, sock: socket.socket) -> Any:
        return sock

    def _run_connection(
        self, sock: socket.socket, session: Session, state: ConnectionState
    ) -> None:
        log = _logger()
        conn: Any = sock
        try:
            conn = self._wrap_socket(sock)
            state.sock = conn
            log.info("+ %s New connection", session)
            on_connect = self._on_connect
            if on_connect is not None and on_connect(session, conn) is not True:
                log.warning("rejected by app.on_connect(): %s", session)
                session._close("rejected by on_connect")
            else:
                serve_requests(
                    self.app, conn, session, self.timeout, state, self._stopping_now
                )
        except (OSError, EOFError) as e:
            # Timeouts, resets, a peer that closed, TLS failures: not bugs.
            session._close(f"{type(e).__name__}: {e}")
        except RequestRefused as e:
            log.warning("%s: refused request: %s", session, e)
            session._close(f"refused request: {e}")
        except Exception as e:
            log.exception("%s: error serving connection", session)
            session._close(f"{type(e).__name__}: {e}")
        finally:
            try:
                conn.close()
            finally:
                log.info(
                    "- %s Handled %d requests: %s",
                    session,
                    session.requests,
                    session.message,
                )
                with self._cond:
                    self._conns.discard(state)
                    self._cond.notify_all()
                self._slots.release()

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
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._serving == threading.get_ident():
            return  # a signal handler inside serve_forever(): it finishes up
        with self._lock:
            serving = self._serving is not None
            if not serving:
                self._close_listener()
        if serving:
            self._done.wait(self._shutdown_timeout + 2 * SHUTDOWN_FORCE_GRACE)

    def _close_listener(self) -> None:
        if self._listener_closed:
            return
        self._listener_closed = True
        self.sock.close()
        self._wake_r.close()
        self._wake_w.close()
        if self._unlink is not None:
            try:
                os.unlink(self._unlink)
            except FileNotFoundError:
                pass

    def _finish(self) -> None:
        with self._cond:
            self._close_listener()
            deadline = monotonic() + self._shutdown_timeout
            for state in self._conns:
                if not state.busy:
                    _force_shutdown(state.sock)
            while self._conns and (left := deadline - monotonic()) > 0:
                self._cond.wait(left)
            for state in self._conns:
                _force_shutdown(state.sock)
            deadline = monotonic() + SHUTDOWN_FORCE_GRACE
            while self._conns and (left := deadline - monotonic()) > 0:
                self._cond.wait(left)
        self._done.set()


def _peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    import struct

    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


class SSLServer(Server):
    """A ``Server`` speaking HTTPS; *sslctx* is an SSLContext or sslconfig dict."""

    def __init__(
        self,
        sslctx: ssl.SSLContext | dict[str, Any],
        address: Any,
        app: Callable[..., Any],
        **options: Any,
    ) -> None:
        # Imported here so that plain HTTP never pays for the ssl module.
        from degu._sslctx import get_server_sslctx

        self.sslctx: ssl.SSLContext = get_server_sslctx(sslctx)
        super().__init__(address, app, **options)

    def __repr__(self) -> str:
        return f"SSLServer(<sslctx>, {self.address!r}, {_app_name(self.app)})"

    def _wrap_socket(self, sock: socket.socket) -> Any:
        # The handshake runs here, in the connection's thread, bounded by the
        # timeout already set on the socket (TEAM contract 1).
        return self.sslctx.wrap_socket(sock, server_side=True)


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
