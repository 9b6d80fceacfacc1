"""pytest fixtures for testing RGI apps on a real Degu server (opt-in plugin).

Nothing registers this module with pytest: a test suite opts in with one
line in its top-level ``conftest.py`` (or in a test module)::

    pytest_plugins = ["degu.pytest_plugin"]

and then defines a ``degu_app`` fixture returning the app under test.  The
how-to is docs/howto/pytest-fixtures.rst.  Servers listen on loopback or on a
Unix socket in a fresh private directory, never on a public interface, and
every one a test started is stopped when the test ends, with a bound.

This module imports pytest, so it is imported only by test suites; degu-core
itself does not depend on pytest.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from degu.client import Client, SSLClient
from degu.server import Server, SSLServer

if TYPE_CHECKING:
    from degu._temppki import TempPKI

__all__ = [
    "SERVER_MODES",
    "STOP_TIMEOUT",
    "RunningServer",
    "degu_app",
    "degu_client",
    "degu_pki",
    "degu_server",
    "degu_server_mode",
    "degu_server_options",
    "degu_ssl_client",
    "degu_ssl_server",
    "degu_start",
    "degu_unix_server",
]

#: Where a fixture's server may run: a thread of the test process, or a
#: child process (then the app must be picklable under ``spawn``).
SERVER_MODES = ("thread", "process")

#: Seconds a stopped server's thread may take to finish.
STOP_TIMEOUT = 10.0

# Address shorthands degu_start() accepts besides any Degu address.
_LOOPBACK = {"tcp": ("127.0.0.1", 0), "tcp6": ("::1", 0, 0, 0)}


class RunningServer:
    """A Degu server started by :func:`degu_start`: where it is and how to reach it.

    Attributes:
        address: the bound address (``(host, port)``, ``(host, port, 0, 0)``
            or a Unix socket path).
        mode: ``"thread"`` or ``"process"``.
        pki: the :class:`degu.misc.TempPKI` of a TLS server, else ``None``.
        server: the :class:`degu.server.Server` (thread mode) or the
            :class:`degu.misc.TempServer` (process mode) behind it.
    """

    def __init__(
        self,
        server: Any,
        mode: str,
        pki: TempPKI | None,
        *,
        thread: threading.Thread | None = None,
        socket_dir: str | None = None,
    ) -> None:
        self.server = server
        self.address: Any = server.address
        self.mode = mode
        self.pki = pki
        self._thread = thread
        self._socket_dir = socket_dir
        self._stopped = False

    def __repr__(self) -> str:
        tls = ", TLS" if self.pki is not None else ""
        return f"<RunningServer {self.address!r} in a {self.mode}{tls}>"

    @property
    def url(self) -> str:
        """``http://host:port/`` (``https``: with TLS) for a TCP server.

        Raises:
            ValueError: the server listens on a Unix socket.
        """
        if not isinstance(self.address, tuple):
            raise ValueError(f"no URL for a Unix socket server: {self.address!r}")
        host = self.address[0]
        if ":" in host:
            host = f"[{host}]"
        scheme = "http" if self.pki is None else "https"
        return f"{scheme}://{host}:{self.address[1]}/"

    def client(self, **options: Any) -> Client:
        """A new :class:`~degu.client.Client` for this server.

        For a TLS server it is an :class:`~degu.client.SSLClient` presenting
        the PKI's client certificate.  *options* go to the client.
        """
        if self.pki is None:
            return Client(self.address, **options)
        return SSLClient(self.pki.client_sslconfig, self.address, **options)

    def stop(self) -> None:
        """Stop the server (idempotent); the fixture does it after the test.

        Raises:
            RuntimeError: a thread-mode server did not stop within
                :data:`STOP_TIMEOUT` seconds.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            if self._thread is None:
                self.server.terminate()
            else:
                self.server.shutdown()
                self._thread.join(STOP_TIMEOUT)
                if self._thread.is_alive():
                    raise RuntimeError(
                        f"{self!r} still running {STOP_TIMEOUT} s after shutdown()"
                    )
        finally:
            if self._socket_dir is not None:
                shutil.rmtree(self._socket_dir, ignore_errors=True)


def _resolve_address(address: Any) -> tuple[Any, str | None]:
    """(a Degu address, the private directory made for a Unix socket or None)."""
    if isinstance(address, str) and address in _LOOPBACK:
        return _LOOPBACK[address], None
    if address == "unix":
        # A short path: Unix socket paths are limited to 107 bytes on Linux.
        socket_dir = tempfile.mkdtemp(prefix="degu-")
        return os.path.join(socket_dir, "server.sock"), socket_dir
    if isinstance(address, str) and not address.startswith("/"):
        raise ValueError(
            f"address: need 'tcp', 'tcp6', 'unix' or a Degu address; got {address!r}"
        )
    return address, None


def _start(
    app: Callable[..., Any],
    *,
    address: Any = "tcp",
    pki: TempPKI | None = None,
    mode: str = "thread",
    **options: Any,
) -> RunningServer:
    if mode not in SERVER_MODES:
        raise ValueError(f"mode: need one of {SERVER_MODES!r}; got {mode!r}")
    if not callable(app):
        raise TypeError(f"app: not callable: {app!r}")
    bound, socket_dir = _resolve_address(address)
    try:
        if mode == "process":
            from degu._processes import TempServer, TempSSLServer

            if pki is None:
                child: Any = TempServer(bound, app, **options)
            else:
                child = TempSSLServer(pki.server_sslconfig, bound, app, **options)
            return RunningServer(child, mode, pki, socket_dir=socket_dir)
        if pki is None:
            server = Server(bound, app, **options)
        else:
            server = SSLServer(pki.server_sslconfig, bound, app, **options)
    except BaseException:
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)
        raise
    thread = threading.Thread(
        target=server.serve_forever, name=f"degu-fixture-{bound!r}", daemon=True
    )
    thread.start()
    return RunningServer(server, mode, pki, thread=thread, socket_dir=socket_dir)


@pytest.fixture
def degu_start() -> Iterator[Callable[..., RunningServer]]:
    """Start Degu servers for one test: ``degu_start(app, **kwargs)``.

    Keyword arguments: *address* (``"tcp"``, the default, for 127.0.0.1 on
    a free port; ``"tcp6"`` for ::1; ``"unix"`` for a socket in a new private
    directory; or any Degu address), *pki* (a :class:`degu.misc.TempPKI`:
    serve mutual TLS with it), *mode* (``"thread"`` or ``"process"``); the
    rest are server options.  Every server started is stopped afterwards.
    """
    started: list[RunningServer] = []

    def start(app: Callable[..., Any], **kwargs: Any) -> RunningServer:
        running = _start(app, **kwargs)
        started.append(running)
        return running

    yield start
    errors = []
    for running in reversed(started):
        try:
            running.stop()
        except Exception as e:  # stop the others before reporting
            errors.append(e)
    if errors:
        raise errors[0]


@pytest.fixture
def degu_app() -> Callable[..., Any]:
    """The RGI app the server fixtures serve: override it in your tests."""
    pytest.fail(
        "define a fixture named degu_app that returns the RGI app to serve "
        "(see docs/howto/pytest-fixtures.rst)",
        pytrace=False,
    )


@pytest.fixture
def degu_server_mode() -> str:
    """``"thread"``; override it, or parametrize it, for ``"process"``."""
    return "thread"


@pytest.fixture
def degu_server_options() -> dict[str, Any]:
    """Server options for the server fixtures (none); override to set some."""
    return {}


@pytest.fixture(scope="session")
def degu_pki() -> TempPKI:
    """A throw-away PKI (server and client CAs and certificates) per session."""
    from degu._temppki import TempPKI

    return TempPKI()


@pytest.fixture
def degu_server(
    degu_start: Callable[..., RunningServer],
    degu_app: Callable[..., Any],
    degu_server_mode: str,
    degu_server_options: dict[str, Any],
) -> RunningServer:
    """A server running ``degu_app`` over HTTP on 127.0.0.1."""
    return degu_start(degu_app, mode=degu_server_mode, **degu_server_options)


@pytest.fixture
def degu_unix_server(
    degu_start: Callable[..., RunningServer],
    degu_app: Callable[..., Any],
    degu_server_mode: str,
    degu_server_options: dict[str, Any],
) -> RunningServer:
    """A server running ``degu_app`` over HTTP on a Unix socket."""
    return degu_start(
        degu_app, address="unix", mode=degu_server_mode, **degu_server_options
    )


@pytest.fixture
def degu_client(degu_server: RunningServer) -> Client:
    """A :class:`degu.client.Client` for :func:`degu_server`."""
    return degu_server.client()


@pytest.fixture
def degu_ssl_server(
    degu_start: Callable[..., RunningServer],
    degu_app: Callable[..., Any],
    degu_pki: TempPKI,
    degu_server_mode: str,
    degu_server_options: dict[str, Any],
) -> RunningServer:
    """A server running ``degu_app`` over mutual TLS on 127.0.0.1."""
    return degu_start(
        degu_app, pki=degu_pki, mode=degu_server_mode, **degu_server_options
    )


@pytest.fixture
def degu_ssl_client(degu_ssl_server: RunningServer) -> Client:
    """An :class:`degu.client.SSLClient` for :func:`degu_ssl_server`."""
    return degu_ssl_server.client()
