"""Degu against independent HTTP implementations over every address family.

Peers: ``http.client`` (TCP, and Unix sockets through a small subclass),
``curl``, ``h11`` as a strict response parser, and the stdlib
``http.server`` as an independent server for our client.
"""

from __future__ import annotations

import http.client
import http.server
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import h11
import pytest

from degu.base import Request, Session
from degu.client import Client


def echo_app(session: Session, request: Request, api: Any) -> Any:
    """Answer with what arrived; /chunked answers chunked, /head-cl for HEAD."""
    data = b"" if request.body is None else request.body.read()
    text = f"{request.method} {request.uri} {len(data)} {session.requests}".encode()
    if request.path == ["chunked"]:
        chunks = [(None, text), (None, data), (None, b"")]
        return (200, "OK", {"x-kind": "chunked"}, api.ChunkedBodyIter(chunks))
    if request.path == ["missing"]:
        return (404, "Not Found", {}, b"nope")
    if request.method == "HEAD":
        return (200, "OK", {"content-length": len(text)}, None)
    return (200, "OK", {"x-kind": "length"}, text + data)


FAMILIES = ["ipv4", "ipv6", "unix", "abstract"]


def pick(tmp_path: Any, family: str) -> Any:
    if family == "ipv6" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    return {
        "ipv4": ("127.0.0.1", 0),
        "ipv6": ("::1", 0, 0, 0),
        "unix": str(tmp_path / "interop.sock"),
        "abstract": b"",
    }[family]


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over an AF_UNIX path or abstract name."""

    def __init__(self, address: str | bytes, timeout: float = 5) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_address = address

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_address)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def http_client_for(address: Any) -> http.client.HTTPConnection:
    if isinstance(address, str | bytes):
        return UnixHTTPConnection(address)
    return http.client.HTTPConnection(address[0], address[1], timeout=5)


@pytest.mark.parametrize("family", FAMILIES)
def test_http_client_keep_alive_over_every_family(
    live_server: Any, tmp_path: Any, family: str
) -> None:
    live = live_server(pick(tmp_path, family), echo_app, timeout=5)
    conn = http_client_for(live.address)
    try:
        conn.request("GET", "/a?b=c")
        r = conn.getresponse()
        assert (r.status, r.reason, r.read()) == (200, "OK", b"GET /a?b=c 0 0")
        assert r.getheader("content-length") == "14" and not r.will_close
        conn.request("PUT", "/put", body=b"x" * 1000)
        r = conn.getresponse()
        assert r.read() == b"PUT /put 1000 1" + b"x" * 1000
        conn.request("POST", "/chunked", body=iter([b"ab", b"cd"]), encode_chunked=True)
        r = conn.getresponse()
        assert r.getheader("transfer-encoding") == "chunked"
        assert r.read() == b"POST /chunked 4 2abcd"
        conn.request("HEAD", "/h")
        r = conn.getresponse()
        assert (r.status, r.getheader("content-length"), r.read()) == (200, "11", b"")
        conn.request("GET", "/missing")
        r = conn.getresponse()
        assert (r.status, r.reason, r.read()) == (404, "Not Found", b"nope")
        # One connection served all six (session.requests went 0..5).
        conn.request("DELETE", "/d")
        assert conn.getresponse().read() == b"DELETE /d 0 5"
    finally:
        conn.close()


def test_http_client_sees_error_responses_and_close(live_server: Any) -> None:
    live = live_server(("127.0.0.1", 0), echo_app, timeout=5)
    conn = http.client.HTTPConnection(*live.address, timeout=5)
    try:
        # http.client allows '_' in names; Degu refuses it (docs/explanation/limits.rst).
        conn.request("GET", "/", headers={"X_Under": "1"})
        r = conn.getresponse()
        assert (r.status, r.reason, r.read()) == (400, "Bad Request", b"")
        assert r.will_close and r.getheader("connection") == "close"
    finally:
        conn.close()


CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


def run_curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    assert CURL is not None
    return subprocess.run(
        [CURL, "--silent", "--show-error", "--http1.1", "--max-time", "10", *args],
        capture_output=True,
        timeout=20,
        check=False,
    )


def curl_target(address: Any) -> tuple[list[str], str]:
    if isinstance(address, str):
        return ["--unix-socket", address], "http://localhost"
    if isinstance(address, bytes):
        return ["--abstract-unix-socket", address[1:].decode()], "http://localhost"
    if len(address) == 4:
        return ["-6"], f"http://[{address[0]}]:{address[1]}"
    return ["-4"], f"http://{address[0]}:{address[1]}"


@needs_curl
@pytest.mark.parametrize("family", FAMILIES)
def test_curl_over_every_family(live_server: Any, tmp_path: Any, family: str) -> None:
    live = live_server(pick(tmp_path, family), echo_app, timeout=5)
    opts, base = curl_target(live.address)
    # Two URLs in one run reuse one keep-alive connection: requests 0 then 1.
    done = run_curl(*opts, f"{base}/one", f"{base}/two")
    assert done.returncode == 0, done.stderr
    if family == "abstract":
        # curl 7.88 does not reuse connections to abstract names.
        assert done.stdout in (b"GET /one 0 0GET /two 0 1", b"GET /one 0 0GET /two 0 0")
    else:
        assert done.stdout == b"GET /one 0 0GET /two 0 1"
    done = run_curl(*opts, "--data-binary", "hello", f"{base}/p")
    assert (done.returncode, done.stdout) == (0, b"POST /p 5 0hello")
    done = run_curl(*opts, "-H", "Transfer-Encoding: chunked", "--data-binary", "xyz",
                    f"{base}/chunked")  # fmt: skip
    assert (done.returncode, done.stdout) == (0, b"POST /chunked 3 0xyz")
    done = run_curl(*opts, "--head", f"{base}/h")
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.replace(b"\r\n", b"\n")
        == b"HTTP/1.1 200 OK\ncontent-length: 11\n\n"
    )


@needs_curl
def test_curl_reports_the_error_status(live_server: Any) -> None:
    live = live_server(("127.0.0.1", 0), echo_app, timeout=5)
    opts, base = curl_target(live.address)
    done = run_curl(*opts, "-X", "TRACE", "--include", f"{base}/x")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        b"HTTP/1.1 501 Not Implemented\r\n"
        b"connection: close\r\ncontent-length: 0\r\n\r\n"
    )
    done = run_curl(
        *opts, "-H", "X-Bad : 1", "--write-out", "%{http_code}", f"{base}/x"
    )
    assert (done.returncode, done.stdout) == (0, b"400")


def h11_request(method: str, target: str, headers: list[tuple[str, str]],
                body: bytes = b"") -> tuple[h11.Connection, bytes]:  # fmt: skip
    """Render a request with h11 itself; return the client and the bytes."""
    client = h11.Connection(h11.CLIENT)
    if body:
        headers = [*headers, ("content-length", str(len(body)))]
    data = client.send(h11.Request(method=method, target=target, headers=headers))
    assert data is not None
    if body:
        data += client.send(h11.Data(data=body)) or b""
    data += client.send(h11.EndOfMessage()) or b""
    return client, data


def h11_events(client: h11.Connection, sock: socket.socket) -> list[Any]:
    """Feed every byte from *sock* to *client* until one response is complete."""
    events: list[Any] = []
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            client.receive_data(sock.recv(65536))
            continue
        if isinstance(event, h11.Data) and events and isinstance(events[-1], h11.Data):
            events[-1] = h11.Data(data=events[-1].data + event.data)
            continue
        events.append(event)
        if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return events


def h11_pair(address: Any) -> socket.socket:
    family = socket.AF_INET6 if len(address) == 4 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(address)
    return sock


LENGTH = (b"x-kind", b"length")


def test_h11_parses_keep_alive_responses_strictly(live_server: Any) -> None:
    live = live_server(("127.0.0.1", 0), echo_app, timeout=5)
    with h11_pair(live.address) as sock:
        cases = [
            ("GET", "/x", b"", 200, [(b"content-length", b"10"), LENGTH],
             b"GET /x 0 0"),
            ("PUT", "/p", b"data", 200, [(b"content-length", b"14"), LENGTH],
             b"PUT /p 4 1data"),
            ("POST", "/chunked", b"zz", 200,
             [(b"transfer-encoding", b"chunked"), (b"x-kind", b"chunked")],
             b"POST /chunked 2 2zz"),
            ("HEAD", "/h", b"", 200, [(b"content-length", b"11")], None),
            ("GET", "/missing", b"", 404, [(b"content-length", b"4")], b"nope"),
        ]  # fmt: skip
        for method, target, body, status, headers, content in cases:
            client, data = h11_request(method, target, [("Host", "x")], body)
            sock.sendall(data)
            events = h11_events(client, sock)
            response = events[0]
            assert type(response) is h11.Response
            assert (response.status_code, response.http_version) == (status, b"1.1")
            assert list(response.headers) == headers
            if content is None:
                assert [type(e) for e in events[1:]] == [h11.EndOfMessage]
            else:
                assert [type(e) for e in events[1:]] == [h11.Data, h11.EndOfMessage]
                assert events[1].data == content
            assert client.our_state is h11.DONE and client.their_state is h11.DONE


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
        (b"PUT / HTTP/1.1\r\nContent-Length: 99999999999999999\r\n\r\n", 413),
        (b"GET / HTTP/1.1\r\nx: " + b"y" * 40000 + b"\r\n\r\n", 431),
        (b"BREW / HTTP/1.1\r\n\r\n", 501),
        (b"GET / HTTP/1.0\r\n\r\n", 505),
    ],
)
def test_h11_parses_error_responses(live_server: Any, raw: bytes, status: int) -> None:
    live = live_server(("127.0.0.1", 0), echo_app, timeout=5)
    client, _ = h11_request("GET", "/", [("Host", "x")])
    with h11_pair(live.address) as sock:
        try:
            sock.sendall(raw)
        except ConnectionResetError:
            pass
        events = h11_events(client, sock)
        assert type(events[0]) is h11.Response
        assert events[0].status_code == status
        assert list(events[0].headers) == [(b"connection", b"close"),
                                           (b"content-length", b"0")]  # fmt: skip
        assert type(events[1]) is h11.EndOfMessage
        assert client.their_state is h11.MUST_CLOSE
        client.receive_data(sock.recv(100))  # the server closed: b""
        assert type(client.next_event()) is h11.ConnectionClosed


# --- our client against the stdlib http.server ------------------------------


class StdlibHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, body: bytes, *, chunked: bool = False) -> None:
        self.send_response(200)
        self.send_header("X-Peer-Port", str(self.client_address[1]))
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (body[:3], body[3:]):
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply(f"{self.command} {self.path}".encode(), chunked=self.path == "/c")

    do_HEAD = do_GET

    def do_PUT(self) -> None:
        n = int(self.headers["Content-Length"])
        self._reply(self.rfile.read(n)[::-1], chunked=self.path == "/c")


@pytest.fixture
def stdlib_server() -> Iterator[tuple[str, int]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StdlibHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_Client_against_stdlib_http_server(stdlib_server: tuple[str, int]) -> None:
    with Client(stdlib_server, timeout=5).connect() as conn:
        r = conn.get("/plain", {})
        assert (r.status, r.reason) == (200, "OK")
        assert r.headers["content-length"] == 10
        assert r.body.chunked is False and r.body.read() == b"GET /plain"
        port = r.headers["x-peer-port"]
        r = conn.get("/c", {})
        assert r.headers["transfer-encoding"] == "chunked"
        assert list(r.body) == [(None, b"GET"), (None, b" /c"), (None, b"")]
        r = conn.head("/plain", {})
        assert (r.headers["content-length"], r.body) == (11, None)
        r = conn.put("/c", {}, b"abcdef")
        assert r.body.read() == b"fedcba"
        r = conn.put("/x", {}, conn.api.BodyIter([b"12", b"345"], 5))
        assert r.body.read() == b"54321"
        # Keep-alive: every answer came over the same client connection.
        assert r.headers["x-peer-port"] == port
        assert {"date", "server"} <= set(r.headers)
