"""Live tests of degu.server over 127.0.0.1, ::1, Unix paths and abstract names."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from typing import Any

import pytest

from degu._stream import ObjectStream
from degu.base import Body, BodyIter, ChunkedBodyIter, Request, Response, Session
from degu.client import Client
from degu.server import Server


def hello_app(session: Session, request: Request, api: Any) -> Any:
    if request.body is not None:
        return (200, "OK", {}, request.body.read())
    return (200, "OK", {}, b"hello, world")


def raw_exchange(address: Any, data: bytes, timeout: float = 5) -> bytes:
    """Send *data* on a raw socket and read until the server closes."""
    family = (
        socket.AF_UNIX
        if isinstance(address, str | bytes)
        else (socket.AF_INET6 if len(address) == 4 else socket.AF_INET)
    )
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_Server_serves_every_address_family(live_server: Any, tmp_path: Any) -> None:
    has_ipv6 = socket.has_ipv6
    addresses: list[Any] = [("127.0.0.1", 0), str(tmp_path / "s.sock"), b""]
    if has_ipv6:
        addresses.append(("::1", 0, 0, 0))
    for address in addresses:
        live = live_server(address, hello_app)
        with Client(live.address).connect() as conn:
            r = conn.get("/", {})
            assert (r.status, r.reason, r.body.read()) == (200, "OK", b"hello, world")
            r = conn.post("/", {}, b"x" * 108)
            assert r.body.read() == b"x" * 108
        if isinstance(address, str):
            assert live.address == address
            live.stop()
            assert not os.path.exists(address)
        if address == b"":
            assert isinstance(live.address, bytes) and live.address[0] == 0


def test_Server_address_and_option_validation(tmp_path: Any) -> None:
    with pytest.raises(ValueError) as info:
        Server(("127.0.0.1", 0, 0), hello_app)
    assert str(info.value) == "address: must have 2 or 4 items; got ('127.0.0.1', 0, 0)"
    with pytest.raises(ValueError) as info:
        Server("relative.sock", hello_app)
    assert str(info.value) == "address: bad socket filename: 'relative.sock'"
    with pytest.raises(TypeError) as tinfo:
        Server(["127.0.0.1", 0], hello_app)
    assert str(tinfo.value) == (
        "address: need a (<class 'tuple'>, <class 'str'>, <class 'bytes'>); "
        "got a <class 'list'>: ['127.0.0.1', 0]"
    )
    with pytest.raises(TypeError, match="^app: not callable: 17$"):
        Server(("127.0.0.1", 0), 17)

    class BadApp:
        on_connect = 3

        def __call__(self, *args: Any) -> None:
            pass

    with pytest.raises(TypeError, match="^app.on_connect: not callable: "):
        Server(("127.0.0.1", 0), BadApp())
    with pytest.raises(TypeError) as tinfo:
        Server(("127.0.0.1", 0), hello_app, foo=1, bar=2)
    assert str(tinfo.value) == "unsupported Server() **options: bar, foo"
    for options, exc in [
        ({"max_connections": 0}, ValueError),
        ({"max_connections": True}, TypeError),
        ({"max_requests": 0}, ValueError),
        ({"max_requests": 75001}, ValueError),
        ({"max_requests": 1.0}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"timeout": float("nan")}, ValueError),
        ({"timeout": "1"}, TypeError),
    ]:
        with pytest.raises(exc):
            Server(("127.0.0.1", 0), hello_app, **options)
    with Server(("127.0.0.1", 0), hello_app, max_requests=75000, timeout=0.5) as s:
        assert (s.max_connections, s.max_requests, s.timeout) == (50, 75000, 0.5)
        assert s.options == {"max_requests": 75000, "timeout": 0.5}
        assert repr(s) == f"Server({s.address!r}, {__name__}.hello_app)"
        assert s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1


def test_Server_accepts_an_existing_socket(live_server: Any) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    live = live_server(sock, hello_app)
    assert live.server.sock is sock
    with Client(live.address).connect() as conn:
        assert conn.get("/", {}).body.read() == b"hello, world"


@pytest.mark.parametrize(
    ("request_bytes", "status_line"),
    [
        (b"GET /foo HTTP/1.0\r\n\r\n", b"HTTP/1.1 505 HTTP Version Not Supported"),
        (b"TRACE /foo HTTP/1.1\r\n\r\n", b"HTTP/1.1 501 Not Implemented"),
        (b"GET //foo HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (b"GET / HTTP/1.1\r\nA: 1\r\na: 1\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (b"PUT / HTTP/1.1\r\nContent-Length: 10000000000000000\r\n\r\n",
         b"HTTP/1.1 413 Content Too Large"),
        (b"GET / HTTP/1.1\r\nx: " + b"v" * 32768 + b"\r\n\r\n",
         b"HTTP/1.1 431 Request Header Fields Too Large"),
    ],
)  # fmt: skip
def test_Server_error_responses_on_the_wire(
    live_server: Any, request_bytes: bytes, status_line: bytes
) -> None:
    calls = []

    def app(session: Session, request: Request, api: Any) -> Any:
        calls.append(request)
        return (200, "OK", {}, None)

    live = live_server(("127.0.0.1", 0), app)
    reply = raw_exchange(live.address, request_bytes)
    assert reply == status_line + b"\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
    assert calls == []
    # The server keeps serving.
    assert raw_exchange(
        live.address, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"
    ) == (b"HTTP/1.1 200 OK\r\n\r\n")


def test_Server_preamble_size_edge(live_server: Any) -> None:
    live = live_server(("127.0.0.1", 0), lambda s, r, a: (200, "OK", {}, None))
    head = b"GET / HTTP/1.1\r\nconnection: close\r\nx: "
    fill = 32768 - len(head) - 4
    ok = raw_exchange(live.address, head + b"v" * fill + b"\r\n\r\n")
    assert ok == b"HTTP/1.1 200 OK\r\n\r\n"
    too_big = raw_exchange(live.address, head + b"v" * (fill + 1) + b"\r\n\r\n")
    assert too_big.startswith(b"HTTP/1.1 431 ")


def bad_response_apps() -> list[Any]:
    def raises(s: Any, r: Any, a: Any) -> Any:
        raise RuntimeError("boom")

    def not_tuple(s: Any, r: Any, a: Any) -> Any:
        return [200, "OK", {}, None]

    def three(s: Any, r: Any, a: Any) -> Any:
        return (200, "OK", {})

    def interim(s: Any, r: Any, a: Any) -> Any:
        return (100, "Continue", {}, None)

    def body_204(s: Any, r: Any, a: Any) -> Any:
        return (204, "No Content", {}, b"x")

    def both(s: Any, r: Any, a: Any) -> Any:
        return (200, "OK", {"content-length": 1, "transfer-encoding": "chunked"}, None)

    def te_with_bytes(s: Any, r: Any, a: Any) -> Any:
        return (200, "OK", {"transfer-encoding": "chunked"}, b"x")

    def bad_header(s: Any, r: Any, a: Any) -> Any:
        return (200, "OK", {"x": "a\r\nset-cookie: evil"}, None)

    def bytearray_body(s: Any, r: Any, a: Any) -> Any:
        return (200, "OK", {}, bytearray(b"x"))

    def unconsumed(s: Any, r: Any, a: Any) -> Any:
        return (200, "OK", {}, None)

    return [raises, not_tuple, three, interim, body_204, both, te_with_bytes,
            bad_header, bytearray_body, unconsumed]  # fmt: skip


@pytest.mark.parametrize("app", bad_response_apps(), ids=lambda f: f.__name__)
def test_Server_answers_500_for_app_failures(live_server: Any, app: Any) -> None:
    live = live_server(("127.0.0.1", 0), app)
    reply = raw_exchange(
        live.address, b"PUT / HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc"
    )
    assert reply == (
        b"HTTP/1.1 500 Internal Server Error\r\n"
        b"connection: close\r\ncontent-length: 0\r\n\r\n"
    )


def test_Server_HEAD_with_body_is_500_and_HEAD_headers_pass(live_server: Any) -> None:
    def app(s: Any, r: Request, a: Any) -> Any:
        if r.path == ["bad"]:
            return (200, "OK", {}, b"x")
        return (200, "OK", {"content-length": 5}, None)

    live = live_server(("127.0.0.1", 0), app)
    with Client(live.address).connect() as conn:
        r = conn.head("/", {})
        assert (r.status, r.headers, r.body) == (200, {"content-length": 5}, None)
        r = conn.head("/bad", {})
        assert r.status == 500
        assert conn.closed


def test_Server_BodyIter_overrun_closes_without_writing_it(live_server: Any) -> None:
    def app(s: Any, r: Request, a: Any) -> Any:
        return (200, "OK", {}, BodyIter([b"abc", b"defg"], 5))

    live = live_server(("127.0.0.1", 0), app)
    reply = raw_exchange(live.address, b"GET / HTTP/1.1\r\n\r\n")
    assert reply == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabc"


def test_Server_connection_close_is_honoured(live_server: Any) -> None:
    live = live_server(("127.0.0.1", 0), hello_app)
    reply = raw_exchange(
        live.address,
        b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n",
    )
    assert reply == b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\nhello, world"


@pytest.mark.parametrize("value", [b"Close", b"CLOSE", b"keep-alive, close"])
def test_Server_connection_close_is_a_case_insensitive_token(
    live_server: Any, value: bytes
) -> None:
    """RFC 9110 §7.6.1: connection options are case-insensitive list tokens."""
    live = live_server(("127.0.0.1", 0), hello_app)
    reply = raw_exchange(
        live.address,
        b"GET / HTTP/1.1\r\nConnection: " + value + b"\r\n\r\nGET / HTTP/1.1\r\n\r\n",
    )
    assert reply == b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\nhello, world"


def test_Server_app_may_skip_the_body_with_connection_close(live_server: Any) -> None:
    """An unread body is fine when the response says connection: close."""
    sessions: list[Session] = []

    def app(session: Session, request: Request, api: Any) -> Any:
        sessions.append(session)
        if request.path == ["keep"]:
            return (403, "Forbidden", {}, None)  # unread and no close: 500
        return (403, "Forbidden", {"connection": "close"}, b"no thanks")

    live = live_server(("127.0.0.1", 0), app)
    preamble = b"PUT /x HTTP/1.1\r\ncontent-length: 5000000\r\n\r\n"
    # Part of the body in flight, followed by a pipelined request that must
    # never be parsed; the response still arrives before the close.
    reply = raw_exchange(
        live.address, preamble + b"b" * 100000 + b"GET /x HTTP/1.1\r\n\r\n"
    )
    assert reply == (
        b"HTTP/1.1 403 Forbidden\r\nconnection: close\r\n"
        b"content-length: 9\r\n\r\nno thanks"
    )
    assert sessions[-1].closed and sessions[-1].message == "connection: close"
    reply = raw_exchange(
        live.address, b"PUT /keep HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc"
    )
    assert reply.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    # Our client: the response is read whole, then the connection is closed.
    with Client(live.address).connect() as conn:
        response = conn.put("/x", {}, b"small body")
        assert (response.status, response.body.read()) == (403, b"no thanks")
        assert conn.closed


def test_Server_closes_after_max_requests(live_server: Any) -> None:
    sessions: list[Session] = []

    def app(session: Session, request: Request, api: Any) -> Any:
        sessions.append(session)
        return (200, "OK", {}, None)

    live = live_server(("127.0.0.1", 0), app, max_requests=3)
    reply = raw_exchange(live.address, b"GET / HTTP/1.1\r\n\r\n" * 5)
    assert reply == b"HTTP/1.1 200 OK\r\n\r\n" * 3
    assert sessions[0].requests == 3 and sessions[0].message == "max_requests"
    assert sessions[0].max_requests == 3


def test_Server_closes_session_after_error_status(live_server: Any) -> None:
    def app(session: Session, request: Request, api: Any) -> Any:
        status = int(request.path[0])
        return (status, "Some Reason", {}, None)

    live = live_server(("127.0.0.1", 0), app)
    reply = raw_exchange(
        live.address,
        b"GET /404 HTTP/1.1\r\n\r\n" * 2 + b"GET /400 HTTP/1.1\r\n\r\n" * 2,
    )
    assert (
        reply
        == b"HTTP/1.1 404 Some Reason\r\n\r\n" * 2 + b"HTTP/1.1 400 Some Reason\r\n\r\n"
    )


def test_Server_timeout_cuts_off_a_trickling_client(live_server: Any) -> None:
    """One byte per 0.1 s keeps every recv busy, but the preamble deadline hits."""
    live = live_server(("127.0.0.1", 0), hello_app, timeout=0.5)
    with socket.create_connection(live.address, timeout=0.1) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        closed = False
        for _ in range(40):  # bounded: at most ~4 s
            try:
                sock.sendall(b"x")
                closed = sock.recv(1) == b""
            except TimeoutError:
                continue
            except OSError:
                closed = True
            if closed:
                break
        assert closed


def test_Server_small_response_to_a_non_reading_client_is_cut_off(
    live_server: Any,
) -> None:
    """The one-send fast path stays bounded when the socket buffer fills up."""

    class App:
        def __call__(self, session: Session, request: Request, api: Any) -> Any:
            if request.path == ["big"]:
                return (200, "OK", {}, b"z" * 65536)  # joined to its preamble
            return (200, "OK", {}, b"hello")

        def on_connect(self, session: Session, sock: Any) -> bool:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            return True

    live = live_server(("127.0.0.1", 0), App(), timeout=0.3, max_connections=1)
    with socket.socket() as lazy:
        lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lazy.settimeout(5)
        lazy.connect(live.address)
        lazy.sendall(b"GET /big HTTP/1.1\r\n\r\n")
        # Never read.  With one slot, the next client is only served (within
        # the 2 s slot wait) because the stuck send gave up after ~2 timeouts.
        with Client(live.address, timeout=5).connect() as conn:
            assert conn.get("/", {}).body.read() == b"hello"


def test_Server_unix_trickling_reader_of_a_big_body_is_cut_off(
    live_server: Any, tmp_path: Any
) -> None:
    """A reader slower than min_rate is cut off mid-body, on AF_UNIX too."""
    finished = threading.Event()

    def pieces() -> Any:
        try:
            for _ in range(256):
                yield b"p" * (1 << 20)
        finally:
            finished.set()

    def app(session: Session, request: Request, api: Any) -> Any:
        return (200, "OK", {}, BodyIter(pieces(), 256 << 20))

    live = live_server(str(tmp_path / "s.sock"), app, timeout=0.5, min_rate=1 << 20)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(live.address)
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        pace = threading.Event()
        # ~200 KB/s, far below min_rate (1 MiB/s); for at most ~4 s.
        for _ in range(200):
            if finished.is_set() or pace.wait(0.02):
                break
            try:
                if not sock.recv(4096):
                    break
            except OSError:
                break
        # Given up while the peer was still reading, not after it stopped.
        assert finished.wait(0.5)


def test_Server_unix_credentials_and_on_connect(
    live_server: Any, tmp_path: Any
) -> None:
    seen: list[Any] = []

    class App:
        def __call__(self, session: Session, request: Request, api: Any) -> Any:
            seen.append((session.credentials, session.store.get("_hi")))
            return (200, "OK", {}, None)

        def on_connect(self, session: Session, sock: Any) -> bool:
            session.store["_hi"] = "there"
            return True

    live = live_server(str(tmp_path / "c.sock"), App())
    with Client(live.address).connect() as conn:
        conn.get("/", {})
    assert seen == [((os.getpid(), os.getuid(), os.getgid()), "there")]


def test_Server_on_connect_rejection_closes(live_server: Any) -> None:
    class App:
        def __call__(self, *args: Any) -> Any:
            return (200, "OK", {}, None)

        def on_connect(self, session: Session, sock: Any) -> Any:
            return 1

    live = live_server(("127.0.0.1", 0), App())
    try:
        reply = raw_exchange(live.address, b"GET / HTTP/1.1\r\n\r\n")
    except ConnectionResetError:
        reply = b""  # closed with our request unread: RST instead of FIN
    assert reply == b""


def test_Server_max_connections_bounds_requests_running_at_once(
    live_server: Any,
) -> None:
    """With one worker a second request waits its turn, then is served."""
    release = threading.Event()
    started = threading.Semaphore(0)
    running = []

    def app(session: Session, request: Request, api: Any) -> Any:
        running.append(1)
        assert len(running) == 1
        started.release()
        release.wait(10)
        running.pop()
        return (200, "OK", {}, None)

    live = live_server(("127.0.0.1", 0), app, max_connections=1)
    first = socket.create_connection(live.address, timeout=10)
    second = socket.create_connection(live.address, timeout=10)
    with first, second:
        first.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert started.acquire(timeout=5)
        second.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert not started.acquire(timeout=0.2)  # queued, not running
        release.set()
        assert first.recv(100) == b"HTTP/1.1 200 OK\r\n\r\n"
        assert second.recv(100) == b"HTTP/1.1 200 OK\r\n\r\n"


def test_Server_shutdown_closes_idle_and_finishes_busy(live_server: Any) -> None:
    started = threading.Event()
    release = threading.Event()

    def app(session: Session, request: Request, api: Any) -> Any:
        if request.path == ["slow"]:
            started.set()
            release.wait(10)
        return (200, "OK", {}, b"done")

    live = live_server(("127.0.0.1", 0), app)
    idle = Client(live.address).connect()
    assert idle.get("/", {}).body.read() == b"done"
    busy = socket.create_connection(live.address, timeout=10)
    busy.sendall(b"GET /slow HTTP/1.1\r\n\r\n")
    assert started.wait(10)
    stopper = threading.Thread(target=live.stop, kwargs={"timeout": 10})
    stopper.start()
    with idle:
        # The idle keep-alive connection is closed by the server at once.
        assert idle.sock.recv(1) == b""
    release.set()
    with busy:
        reply = b""
        while chunk := busy.recv(100):
            reply += chunk
    assert reply == b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ndone"
    stopper.join(10)
    assert not stopper.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(live.address, timeout=2).close()


def test_Server_shutdown_from_signal_handler_in_serving_thread() -> None:
    import signal

    server = Server(("127.0.0.1", 0), hello_app)
    old = signal.signal(signal.SIGUSR1, lambda *a: server.shutdown())
    try:
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1))
        timer.start()
        server.serve_forever()  # returns once the handler ran
        timer.join()
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert server.sock.fileno() == -1


def test_Server_shutdown_before_serve_forever() -> None:
    server = Server(("127.0.0.1", 0), hello_app)
    server.shutdown()
    server.serve_forever()  # returns at once
    assert server.sock.fileno() == -1


def test_Server_streams_request_and_response_bodies(live_server: Any) -> None:
    def app(session: Session, request: Request, api: Any) -> Any:
        body = request.body
        if body.chunked:
            chunks = list(body)
            return (200, "OK", {}, api.ChunkedBodyIter(chunks))
        total = sum(len(piece) for piece in body)
        return (200, "OK", {}, api.BodyIter([b"%d" % total], len(b"%d" % total)))

    live = live_server(("127.0.0.1", 0), app)
    with Client(live.address).connect() as conn:
        size = 3 * 1024 * 1024 + 7
        r = conn.put("/", {}, BodyIter([b"x" * (size - 7), b"y" * 7], size))
        assert r.body.read() == b"%d" % size
        chunks = [(None, b"hello"), (("k", "v"), b"world"), (None, b"")]
        r = conn.post("/", {}, conn.api.ChunkedBodyIter(chunks))
        assert r.headers == {"transfer-encoding": "chunked"}
        assert list(r.body) == chunks
        r = conn.put("/", {}, Body(__import__("io").BytesIO(b"abc"), 3))
        assert r.body.read() == b"3"


def test_Server_logs_a_refused_request_as_one_warning_without_traceback(
    live_server, caplog
):
    """A peer's bad request is its mistake: one line, not an ERROR traceback."""
    import logging

    live = live_server(("127.0.0.1", 0), lambda s, r, a: (200, "OK", {}, b""))
    with caplog.at_level(logging.INFO, logger="degu.server"):
        with socket.create_connection(live.server.address, timeout=5) as sock:
            sock.sendall(b"GET /a//b HTTP/1.1\r\n\r\n")
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            "Handled" in r.getMessage() for r in caplog.records
        ):
            time.sleep(0.01)
    refused = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(refused) == 1
    assert refused[0].levelno == logging.WARNING
    assert "refused request" in refused[0].getMessage()
    assert refused[0].exc_info is None
    assert "400:" in refused[0].getMessage()


def test_Server_survives_a_failure_setting_up_one_connection(
    live_server: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    """A per-connection setup error (here SO_PEERCRED) must not end serve_forever."""
    import degu._loop

    real = degu._loop._peer_credentials
    calls = []

    def flaky(sock: socket.socket) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("simulated getsockopt failure")
        return real(sock)

    monkeypatch.setattr(degu._loop, "_peer_credentials", flaky)
    live = live_server(str(tmp_path / "s.sock"), hello_app, max_connections=1)
    with socket.socket(socket.AF_UNIX) as first:
        first.settimeout(5)
        first.connect(live.address)
        try:
            assert first.recv(100) == b""  # closed unanswered
        except ConnectionResetError:
            pass
    # The server still serves, and the failed connection gave its slot back.
    with Client(live.address).connect() as conn:
        assert conn.get("/", {}).body.read() == b"hello, world"
    assert live.thread.is_alive()


def test_Server_and_Client_options_reject_bool_and_keep_their_edges() -> None:
    # docs/reference/server.rst: TypeError for a wrong type (bool is not an int here),
    # ValueError out of range; docs/reference/server.rst and client.rst give the defaults and edges.
    for name in ("max_connections", "max_requests", "timeout"):
        for flag in (True, False):
            with pytest.raises(TypeError, match=f"^{name}: need a "):
                Server(("127.0.0.1", 0), hello_app, **{name: flag})
    with pytest.raises(TypeError, match="^timeout: need a "):
        Client(("127.0.0.1", 1), timeout=True)
    for bad in (-1, 0, 0.0, -0.5, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            Client(("127.0.0.1", 1), timeout=bad)
        with pytest.raises(ValueError):
            Server(("127.0.0.1", 0), hello_app, timeout=bad)
    with pytest.raises(ValueError, match="^need 1 <= max_requests <= 75000; got 0$"):
        Server(("127.0.0.1", 0), hello_app, max_requests=0)
    with Server(("127.0.0.1", 0), hello_app) as s:
        assert (s.max_connections, s.max_requests, s.timeout) == (50, 1000, 30)
        assert s.options == {}
    with Server(("127.0.0.1", 0), hello_app, max_connections=1, max_requests=1) as s:
        assert (s.max_connections, s.max_requests) == (1, 1)
    assert Client(("127.0.0.1", 1), timeout=0.001).timeout == 0.001


def test_invalid_responses_raise_the_documented_errors(fake_socket: Any) -> None:
    # docs/reference/server.rst (Error responses): the exceptions behind the
    # 500s (logged by the server).
    from degu._reader import Reader
    from degu._serving import _check_response

    with pytest.raises(TypeError, match="^response: need a <class 'tuple'>"):
        _check_response([200, "OK", {}, None], "GET", None)
    with pytest.raises(ValueError) as info:
        _check_response((200, "OK", {}), "GET", None)
    assert str(info.value) == "response: need a 4-tuple; got a 3-tuple"
    with pytest.raises(TypeError) as tinfo:
        _check_response((200, "OK", {}, b"x"), "HEAD", None)
    assert str(tinfo.value) == (
        "request method is HEAD, but response body is not None: <class 'bytes'>"
    )
    body = Body._new(Reader(ObjectStream(fake_socket(b"abc"))), 3)
    with pytest.raises(ValueError) as info:
        _check_response((200, "OK", {}, None), "PUT", body)
    assert str(info.value) == "request body not consumed: Body(<reader>, 3)"
    # Checked before the HEAD rule (docs/reference/server.rst).
    with pytest.raises(ValueError, match="^request body not consumed"):
        _check_response((200, "OK", {}, b"x"), "HEAD", body)
    ok = (200, "OK", {"connection": "close"}, None)
    assert _check_response(ok, "PUT", body) is ok  # documented departure
    assert _check_response(Response(404, "Not Found", {}, None), "GET", None) == (
        404,
        "Not Found",
        {},
        None,
    )


def test_server_logs_each_connection_in_the_documented_format(
    live_server: Any, caplog: Any
) -> None:
    # docs/reference/server.rst (Logging): per connection, never per request.
    import logging

    def wait_for(text: str) -> list[logging.LogRecord]:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = [r for r in caplog.records if text in r.getMessage()]
            if found:
                return found
            time.sleep(0.01)
        raise AssertionError(f"no log record with {text!r}")

    with caplog.at_level(logging.INFO, logger="degu.server"):
        live = live_server(("127.0.0.1", 0), hello_app, max_requests=2)
        with Client(live.address).connect() as conn:
            peer = repr(conn.sock.getsockname())
            for _ in range(2):
                assert conn.get("/", {}).body.read() == b"hello, world"
            done = wait_for("Handled")
        infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
        assert f"+ {peer} New connection" in infos
        assert [r.getMessage() for r in done] == [
            f"- {peer} Handled 2 requests: max_requests"
        ]
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_Server_answers_500_for_a_response_body_already_used(live_server: Any) -> None:
    # docs/reference/base.rst (write_to needs READY), docs/explanation/wire.rst: a body that cannot be
    # written is refused before the preamble, so the peer gets a clean 500
    # instead of a preamble promising bytes that never come.
    used = BodyIter([b"hi"], 2)
    used.write_to(io.BytesIO())
    chunked = ChunkedBodyIter([(None, b"")])
    chunked.write_to(io.BytesIO())
    bodies = [used, chunked]

    def app(session: Session, request: Request, api: Any) -> Any:
        return (200, "OK", {}, bodies.pop(0))

    live = live_server(("127.0.0.1", 0), app)
    for _ in range(2):
        reply = raw_exchange(live.address, b"GET / HTTP/1.1\r\n\r\n")
        assert reply == (
            b"HTTP/1.1 500 Internal Server Error\r\n"
            b"connection: close\r\ncontent-length: 0\r\n\r\n"
        )
