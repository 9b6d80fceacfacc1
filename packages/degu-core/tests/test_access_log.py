"""The ``access_log`` server option: what no app answers, as access lines.

Refused requests, 503s at ``max_open_connections`` and failed TLS handshakes
(docs/reference/server.rst, "Logging"), on real loopback sockets.  Waits are
bounded; nothing sleeps to let things settle.
"""

from __future__ import annotations

import errno
import itertools
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterator
from time import monotonic
from typing import Any

import pytest

from degu.base import Request, Session
from degu.misc import AccessLogger
from degu.server import Server

_names = itertools.count()
#: ``host - - [time] "request" status size``, the parts a test looks at.
LINE = re.compile(r'^(\S+) - - \[[^]]+\] "([^"]*)" (\d{3}|-) (\d+|-)$')


class Lines(logging.Handler):
    """Collects the messages of one logger; ``wait_for`` blocks (bounded)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self._cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._cond:
            self.lines.append(record.getMessage())
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10) -> list[str]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.lines) >= count, timeout)
            return list(self.lines)

    def parsed(self) -> list[tuple[str, ...]]:
        out = []
        for line in self.lines:
            match = LINE.match(line)
            assert match, line
            out.append(match.groups())
        return out


@pytest.fixture
def access() -> Iterator[tuple[logging.Logger, Lines]]:
    logger = logging.getLogger(f"test.access.{next(_names)}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = Lines()
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


def hello(session: Session, request: Request, api: Any) -> Any:
    if request.body is not None:
        request.body.read()
    return (200, "OK", {}, b"hello")


def exchange(address: Any, data: bytes) -> bytes:
    """Send *data*, half-close, return everything the server answers."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(data)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            # The server may have closed first with our bytes unread (a failed
            # TLS handshake): its RST leaves nothing to shut down.
            if e.errno != errno.ENOTCONN:
                raise
        got = b""
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except ConnectionResetError:
            pass
        return got


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.2\r\n\r\n", 505),
        (b"BREW / HTTP/1.1\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 40000 + b"\r\n\r\n", 431),
        (b"PUT / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nbad header\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n", 400),  # EOF in the preamble
    ],
)
def test_a_refused_request_is_one_access_line_with_the_status_sent(
    live_server: Callable[..., Any],
    access: tuple[logging.Logger, Lines],
    request_bytes: bytes,
    status: int,
) -> None:
    logger, lines = access
    live = live_server(("127.0.0.1", 0), AccessLogger(hello, logger), access_log=logger)
    answer = exchange(live.address, request_bytes)
    assert answer.startswith(b"HTTP/1.1 %d " % status)
    lines.wait_for(1)
    live.stop()
    assert lines.parsed() == [("127.0.0.1", "-", str(status), "0")]


def test_a_refused_request_after_a_good_one_is_logged_once_each(
    live_server: Callable[..., Any], access: tuple[logging.Logger, Lines]
) -> None:
    """On one connection: the app's request via AccessLogger, the refusal by the server."""
    logger, lines = access
    live = live_server(("127.0.0.1", 0), AccessLogger(hello, logger), access_log=logger)
    answer = exchange(live.address, b"GET /ok HTTP/1.1\r\n\r\nGET /ok HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"HTTP/1.1 505 " in answer
    lines.wait_for(2)
    live.stop()
    assert lines.parsed() == [
        ("127.0.0.1", "GET /ok HTTP/1.1", "200", "5"),
        ("127.0.0.1", "-", "505", "0"),
    ]


def test_normal_requests_are_logged_exactly_once(
    live_server: Callable[..., Any], access: tuple[logging.Logger, Lines]
) -> None:
    from degu.client import Client

    logger, lines = access
    live = live_server(("127.0.0.1", 0), AccessLogger(hello, logger), access_log=logger)
    with Client(live.address).connect() as conn:
        for uri in ("/a", "/b"):
            assert conn.get(uri, {}).body.read() == b"hello"
        assert conn.put("/c", {}, b"data").body.read() == b"hello"
    live.stop()
    assert [line[1:] for line in lines.parsed()] == [
        ("GET /a HTTP/1.1", "200", "5"),
        ("GET /b HTTP/1.1", "200", "5"),
        ("PUT /c HTTP/1.1", "200", "5"),
    ]


@pytest.mark.parametrize(
    ("request_bytes", "answer", "logged"),
    [
        # Bad chunk framing: the server answers 400 and so does the line.
        (
            b"PUT /up HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"400",
            "400",
        ),
        # The peer stops mid-body (more than the 32 KiB the server waits
        # for before running the app): nothing is sent, the line says "-".
        (
            b"PUT /up HTTP/1.1\r\ncontent-length: 100000\r\n\r\n" + b"x" * 40000,
            b"",
            "-",
        ),
    ],
)
def test_a_body_refused_while_the_app_reads_it_is_logged_once_with_what_was_sent(
    live_server: Callable[..., Any],
    access: tuple[logging.Logger, Lines],
    request_bytes: bytes,
    answer: bytes,
    logged: str,
) -> None:
    """AccessLogger saw the app raise; its line shows the peer's answer, and
    the server does not log that request again."""
    logger, lines = access
    live = live_server(("127.0.0.1", 0), AccessLogger(hello, logger), access_log=logger)
    got = exchange(live.address, request_bytes)
    assert got[9:12] == answer
    lines.wait_for(1)
    live.stop()
    assert [line[1:] for line in lines.parsed()] == [("PUT /up HTTP/1.1", logged, "-")]


def test_the_503_at_the_open_connection_bound_is_an_access_line(
    live_server: Callable[..., Any], access: tuple[logging.Logger, Lines]
) -> None:
    logger, lines = access
    started = threading.Event()
    release = threading.Event()

    def blocking(session: Session, request: Request, api: Any) -> Any:
        started.set()
        release.wait(10)
        return (200, "OK", {}, b"done")

    live = live_server(
        ("127.0.0.1", 0),
        blocking,
        max_connections=1,
        max_open_connections=1,
        access_log=logger,
    )
    with socket.create_connection(live.address, timeout=10) as busy:
        busy.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert started.wait(5)
        answer = exchange(live.address, b"")
        release.set()
        assert busy.recv(100).startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    lines.wait_for(1)
    live.stop()
    assert lines.parsed() == [("127.0.0.1", "-", "503", "0")]


def test_a_failed_tls_handshake_is_an_access_line_without_status(
    live_sslserver: Callable[..., Any], access: tuple[logging.Logger, Lines]
) -> None:
    from degu.client import SSLClient
    from degu.misc import TempPKI

    logger, lines = access
    pki = TempPKI()
    live = live_sslserver(
        pki.server_sslconfig,
        ("127.0.0.1", 0),
        AccessLogger(hello, logger),
        access_log=logger,
    )
    # Plain HTTP to a TLS port: the handshake fails at the first byte.
    exchange(live.address, b"GET / HTTP/1.1\r\n\r\n")
    assert lines.wait_for(1)
    with SSLClient(pki.client_sslconfig, live.address).connect() as conn:
        assert conn.get("/tls", {}).body.read() == b"hello"
    lines.wait_for(2)
    live.stop()
    assert [line[1:] for line in lines.parsed()] == [
        ("-", "-", "-"),
        ("GET /tls HTTP/1.1", "200", "5"),
    ]


def test_a_tls_handshake_that_times_out_is_an_access_line(
    live_sslserver: Callable[..., Any], access: tuple[logging.Logger, Lines]
) -> None:
    from degu.misc import TempPKI

    logger, lines = access
    pki = TempPKI()  # its files live as long as it does
    live = live_sslserver(
        pki.server_sslconfig,
        ("127.0.0.1", 0),
        hello,
        timeout=0.3,
        access_log=logger,
    )
    with socket.create_connection(live.address, timeout=10) as silent:
        assert silent.recv(100) == b""  # closed by the server
    lines.wait_for(1)
    live.stop()
    assert [line[1:] for line in lines.parsed()] == [("-", "-", "-")]


def test_without_access_log_nothing_is_logged_for_refusals(
    live_server: Callable[..., Any],
) -> None:
    logger = logging.getLogger("degu.access")
    handler = Lines()
    logger.addHandler(handler)
    try:
        live = live_server(("127.0.0.1", 0), hello)
        assert exchange(live.address, b"GET / HTTP/1.2\r\n\r\n").startswith(
            b"HTTP/1.1 505 "
        )
        live.stop()
    finally:
        logger.removeHandler(handler)
    assert handler.lines == []
    assert live.server.access_log is None


def test_the_access_log_option_must_be_a_logger() -> None:
    with pytest.raises(TypeError) as info:
        Server(("127.0.0.1", 0), hello, access_log="degu.access")
    assert str(info.value) == (
        "access_log: need a <class 'logging.Logger'>; got a <class 'str'>: "
        "'degu.access'"
    )
    logger = logging.getLogger("degu.access")
    with Server(("127.0.0.1", 0), hello, access_log=logger) as server:
        assert server.access_log is logger
        assert server.options == {"access_log": logger}


# --- shutdown drain (docs/reference/server.rst, shutdown()) ------------------


def test_shutdown_lets_a_running_request_finish_within_its_bound(
    live_server: Callable[..., Any],
) -> None:
    started = threading.Event()
    release = threading.Event()

    def slow(session: Session, request: Request, api: Any) -> Any:
        started.set()
        release.wait(10)
        return (200, "OK", {}, b"finished")

    live = live_server(("127.0.0.1", 0), slow)
    with socket.create_connection(live.address, timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert started.wait(5)
        stopper = threading.Thread(target=live.server.shutdown, args=(5,))
        stopper.start()
        # Not accepting any more, while the request still runs.
        deadline = monotonic() + 5
        while live.server.sock.fileno() != -1 and monotonic() < deadline:
            release.wait(0.01)
        assert live.server.sock.fileno() == -1
        release.set()
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        stopper.join(10)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nfinished")
    live.thread.join(10)
    assert not live.thread.is_alive()


def test_shutdown_cuts_a_request_that_outlives_its_bound_and_logs_it(
    live_server: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Cut after *timeout*; serve_forever() returns SHUTDOWN_FORCE_GRACE later."""
    from degu._loop import SHUTDOWN_FORCE_GRACE

    started = threading.Event()
    release = threading.Event()

    def stuck(session: Session, request: Request, api: Any) -> Any:
        started.set()
        release.wait(10)  # deaf to the cut: the worst case
        return (200, "OK", {}, b"too late")

    live = live_server(("127.0.0.1", 0), stuck)
    try:
        with socket.create_connection(live.address, timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert started.wait(5)
            start = monotonic()
            with caplog.at_level(logging.WARNING, logger="degu.server"):
                live.server.shutdown(0.2)
            elapsed = monotonic() - start
            assert sock.recv(100) == b""  # cut: no response
    finally:
        release.set()
    live.thread.join(5)
    assert not live.thread.is_alive()
    assert 0.2 + SHUTDOWN_FORCE_GRACE <= elapsed < 0.2 + SHUTDOWN_FORCE_GRACE + 3
    cut = [r for r in caplog.records if "cut short by shutdown" in r.getMessage()]
    assert len(cut) == 1
    assert cut[0].levelname == "WARNING"
    assert "127.0.0.1" in cut[0].getMessage()
