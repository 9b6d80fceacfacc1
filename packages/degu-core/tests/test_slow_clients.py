"""Slow and stalled peers are cut off by the server's ``timeout``.

Each test runs with ``max_connections=1`` where it matters: a second client
can only be served once the slow client's thread has been released, so
"served meanwhile / afterwards" proves the thread was freed
(docs/explanation/connections.rst).  Every wait is bounded; no sleeps.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from time import monotonic
from typing import Any

from degu.base import BodyIter, Request, Session
from degu.client import Client

TIMEOUT = 0.5
#: Generous upper bound for "cut off after TIMEOUT" on a noisy 2-core machine.
CUTOFF_BOUND = TIMEOUT + 4.0


def hello(session: Session, request: Request, api: Any) -> Any:
    if request.body is not None:
        request.body.read()
    return (200, "OK", {}, b"hello")


def served(address: Any) -> bytes:
    with Client(address, timeout=5).connect() as conn:
        body: bytes = conn.get("/", {}).body.read()
        return body


def wait_closed(sock: socket.socket, deadline: float, trickle: bytes = b"") -> bytes:
    """Read until EOF or reset, sending *trickle* one byte per 0.1 s meanwhile."""
    received = b""
    sock.settimeout(0.1)  # paces the trickle; not a settle-sleep
    i = 0
    while monotonic() < deadline:
        try:
            if i < len(trickle):
                sock.sendall(trickle[i : i + 1])
                i += 1
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return received
        if not data:
            return received
        received += data
    raise AssertionError(f"not closed before the deadline; got {received!r}")


def test_trickling_preamble_is_cut_off_and_others_are_served(live_server: Any) -> None:
    live = live_server(("127.0.0.1", 0), hello, timeout=TIMEOUT, max_connections=2)
    with socket.create_connection(live.address, timeout=5) as slow:
        start = monotonic()
        slow.sendall(b"G")
        # Meanwhile the server answers someone else.
        assert served(live.address) == b"hello"
        reply = wait_closed(
            slow, start + CUTOFF_BOUND, b"ET / HTTP/1.1\r\nx: " + b"y" * 100
        )
        elapsed = monotonic() - start
    assert reply == b""  # a timeout just closes (docs/explanation/limits.rst)
    assert TIMEOUT * 0.9 <= elapsed < CUTOFF_BOUND


def test_silent_client_releases_its_slot(live_server: Any) -> None:
    live = live_server(("127.0.0.1", 0), hello, timeout=TIMEOUT, max_connections=1)
    with socket.create_connection(live.address, timeout=5) as silent:
        start = monotonic()
        assert wait_closed(silent, start + CUTOFF_BOUND) == b""
    assert served(live.address) == b"hello"


def test_client_stalling_mid_body_is_cut_off(live_server: Any) -> None:
    errors: list[BaseException] = []
    done = threading.Event()

    def app(session: Session, request: Request, api: Any) -> Any:
        if request.body is None:
            return (200, "OK", {}, b"hello")
        try:
            request.body.read()
        except BaseException as e:
            errors.append(e)
            raise
        finally:
            done.set()
        return (200, "OK", {}, b"whole")

    live = live_server(("127.0.0.1", 0), app, timeout=TIMEOUT, max_connections=1)
    with socket.create_connection(live.address, timeout=5) as stalled:
        start = monotonic()
        stalled.sendall(b"PUT / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        reply = wait_closed(stalled, start + CUTOFF_BOUND)
    assert done.wait(5)
    assert len(errors) == 1 and isinstance(errors[0], TimeoutError)
    assert reply == b""  # the connection is unusable: no 500 after a read error
    assert served(live.address) == b"hello"


def test_chunked_body_stalling_mid_chunk_is_cut_off(live_server: Any) -> None:
    live = live_server(("127.0.0.1", 0), hello, timeout=TIMEOUT, max_connections=1)
    with socket.create_connection(live.address, timeout=5) as stalled:
        start = monotonic()
        stalled.sendall(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc"
        )
        assert wait_closed(stalled, start + CUTOFF_BOUND) == b""
    assert served(live.address) == b"hello"


def test_client_that_never_reads_is_cut_off_by_the_write_timeout(
    live_server: Any,
) -> None:
    """A big response to a peer that never reads: sendall times out, slot freed."""
    finished = threading.Event()
    size = 256 * 1024 * 1024  # far more than any socket buffer on loopback

    def pieces() -> Iterator[bytes]:
        piece = b"z" * (1 << 20)
        try:
            for _ in range(size >> 20):
                yield piece
        finally:
            finished.set()

    def app(session: Session, request: Request, api: Any) -> Any:
        if request.path == ["big"]:
            return (200, "OK", {}, BodyIter(pieces(), size))
        return (200, "OK", {}, b"hello")

    live = live_server(("127.0.0.1", 0), app, timeout=TIMEOUT, max_connections=1)
    with socket.socket() as lazy:
        lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lazy.settimeout(5)
        lazy.connect(live.address)
        lazy.sendall(b"GET /big HTTP/1.1\r\n\r\n")
        # Never read: the generator is closed once the server gives up.
        assert finished.wait(CUTOFF_BOUND)
        # With one slot, this is only served because the thread was released.
        assert served(live.address) == b"hello"
