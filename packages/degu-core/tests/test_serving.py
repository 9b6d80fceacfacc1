"""Tests of degu._serving: a worker's turn on one connection (serve_turn)."""

from __future__ import annotations

import socket
import threading
from time import monotonic
from typing import Any

import pytest

import degu._serving
from degu._request import Session
from degu._serving import (
    ServerConnection,
    ServingRules,
    Verdict,
    advance,
    serve_turn,
)
from degu._stream import SocketStream

GET = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"
REPLY = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"


def app(session: Any, request: Any, api: Any) -> Any:
    return (200, "OK", {}, b"hi")


def turn(sock: socket.socket, crowded: bool) -> tuple[int, float]:
    """Run serve_turn on *sock* (one GET buffered); return (verdict, seconds)."""
    rules = ServingRules(app, None, 5, 16384, lambda: False)
    rules.crowded = lambda: crowded
    conn = ServerConnection(sock, Session(("x", 1), None, 100))
    conn.attach(SocketStream(sock, 5))
    conn.connected = True
    assert conn.reader is not None
    conn.reader.fill_within(5)
    start = monotonic()
    verdict = serve_turn(conn, rules)
    return verdict, monotonic() - start


def read_replies(sock: socket.socket, count: int) -> bytes:
    data = b""
    sock.settimeout(5)
    while len(data) < count * len(REPLY):
        data += sock.recv(4096)
    return data


@pytest.fixture
def long_hot_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    # Long enough that waiting, or not, is plain to see.
    monkeypatch.setattr(degu._serving, "HOT_WAIT", 3.0)


def test_serve_turn_alone_waits_for_the_next_request(long_hot_wait: None) -> None:
    a, b = socket.socketpair()
    with a, b:
        b.sendall(GET)
        later = threading.Timer(0.2, b.sendall, (GET,))
        later.start()
        try:
            verdict, seconds = turn(a, crowded=False)
        finally:
            later.join(5)
        # Both requests answered on this turn, then the hot wait ran out.
        assert read_replies(b, 2) == REPLY * 2
        assert verdict == Verdict.IDLE
        assert 3.0 <= seconds < 3.0 + 3


def test_serve_turn_when_crowded_hands_back_at_once(long_hot_wait: None) -> None:
    a, b = socket.socketpair()
    with a, b:
        b.sendall(GET)
        verdict, seconds = turn(a, crowded=True)
        assert read_replies(b, 1) == REPLY
        assert verdict == Verdict.IDLE
        assert seconds < 1.5


def test_serve_turn_serves_pipelined_requests_even_when_crowded() -> None:
    a, b = socket.socketpair()
    with a, b:
        b.sendall(GET * 3)
        verdict, _ = turn(a, crowded=True)
        assert read_replies(b, 3) == REPLY * 3
        assert verdict == Verdict.IDLE


def test_serve_turn_peer_closing_during_the_hot_wait_closes() -> None:
    a, b = socket.socketpair()
    with a, b:
        b.sendall(GET)
        b.shutdown(socket.SHUT_WR)
        verdict, _ = turn(a, crowded=False)
        assert read_replies(b, 1) == REPLY
        assert verdict == Verdict.CLOSE


def connection(sock: socket.socket) -> ServerConnection:
    conn = ServerConnection(sock, Session(("x", 1), None, 100))
    conn.attach(SocketStream(sock, 5))
    conn.connected = True
    return conn


def receive(conn: ServerConnection, peer: socket.socket, data: bytes) -> None:
    """*peer* sends *data*; *conn* buffers it."""
    assert conn.reader is not None
    peer.sendall(data)
    got = 0
    while got < len(data):
        got += conn.reader.fill_within(5)


def test_advance_waits_for_a_small_body_whole_unless_told_to_run() -> None:
    a, b = socket.socketpair()
    with a, b:
        conn = connection(a)
        receive(conn, b, b"POST / HTTP/1.1\r\ncontent-length: 4\r\n\r\nab")
        assert advance(conn) == Verdict.READING
        assert conn.pending is not None and conn.pending[5] == 4
        conn.run_anyway = True  # the peer stalled: the app answers anyway
        assert advance(conn) == Verdict.READY
        conn.run_anyway = False
        receive(conn, b, b"cd")
        assert advance(conn) == Verdict.READY


def test_advance_waits_for_a_chunked_body_to_its_last_chunk() -> None:
    a, b = socket.socketpair()
    with a, b:
        conn = connection(a)
        receive(conn, b, b"PUT / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n")
        receive(conn, b, b"2\r\nab\r\n")
        assert advance(conn) == Verdict.READING
        receive(conn, b, b"0\r\n\r\n")
        assert advance(conn) == Verdict.READY


def test_advance_bodiless_request_is_ready_and_leaves_the_rest_buffered() -> None:
    a, b = socket.socketpair()
    with a, b:
        conn = connection(a)
        receive(conn, b, GET + b"GET /next")
        assert advance(conn) == Verdict.READY
        assert conn.pending == ("GET", "/", [], None, {"host": "x"}, None)
        assert conn.reader is not None
        assert conn.reader.buffered == len(b"GET /next")


def test_serve_turn_gives_each_message_a_fresh_budget() -> None:
    # One Budget object per connection and direction is reused, reset for
    # each message: no message inherits what an earlier one moved.
    moved: list[int] = []

    def echo(session: Any, request: Any, api: Any) -> Any:
        data = request.body.read()
        moved.append(request.body.rfile.budget.moved)
        return (200, "OK", {}, data)

    a, b = socket.socketpair()
    with a, b:
        post = b"POST / HTTP/1.1\r\ncontent-length: 2\r\n\r\nhi"
        b.sendall(post[:-1])
        rules = ServingRules(echo, None, 5, 16384, lambda: False)
        conn = connection(a)
        assert conn.reader is not None
        conn.reader.fill_within(5)
        # The first body's last byte is read under its budget, and the
        # second request arrives with it.
        b.sendall(post[-1:] + post)
        b.shutdown(socket.SHUT_WR)
        conn.run_anyway = True
        assert serve_turn(conn, rules) == Verdict.CLOSE
        assert read_replies(b, 2) == REPLY * 2
        assert moved == [1 + len(post), 0]
        assert conn.send_budget is not None
        assert conn.send_budget.moved == len(REPLY)  # the last response only
