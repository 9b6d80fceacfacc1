"""Tests of degu.client: Client options, Connection checks, strict responses."""

from __future__ import annotations

import io
import re
import socket
import threading
import time
from typing import Any

import pytest

from degu import base, client, server
from degu.base import Range
from degu.client import Client, Connection


def test_client_and_server_reexport_base_objects() -> None:
    for name in ("Connection", "Response"):
        assert getattr(client, name) is getattr(base, name)
    for name in ("Session", "Request"):
        assert getattr(server, name) is getattr(base, name)
    assert base.bodies is base.api and base.APIType is base.API
    assert base.ResponseType is base.Response


def test_server_and_client_all_follow_the_spec_order() -> None:
    # docs/reference/client.rst gives __all__ exactly.
    assert server.__all__ == ("Server", "SSLServer", "Session", "Request")
    assert client.__all__ == ("Client", "SSLClient", "Connection", "Response")


def test_Connection_request_headers_must_be_an_exact_dict(fake_socket: Any) -> None:
    # docs/explanation/wire.rst: headers is an exact dict (TYPE_ERROR),
    # whatever the body and base headers.
    for headers, body, base_headers in [
        (None, b"x", None),
        ([], b"x", None),
        (None, None, (("host", "a"),)),
        ((), None, (("host", "a"),)),
    ]:
        sock = fake_socket(b"")
        conn = Connection(sock, base_headers)
        with pytest.raises(TypeError) as info:
            conn.request("PUT", "/", headers, body)
        assert str(info.value) == (
            f"headers: need a {dict!r}; got a {type(headers)!r}: {headers!r}"
        )
        assert conn.closed and sock.closed and sock.sent == b""


def test_Connection_methods_take_positional_arguments_only(fake_socket: Any) -> None:
    # docs/reference/client.rst: request() and its shortcuts take positional arguments only.
    conn = Connection(fake_socket(b""), None)
    calls = [
        lambda: conn.request("GET", "/", headers={}, body=None),
        lambda: conn.get("/", headers={}),
        lambda: conn.head(uri="/", headers={}),
        lambda: conn.delete("/", headers={}),
        lambda: conn.put("/", {}, body=b""),
        lambda: conn.post("/", {}, body=b""),
        lambda: conn.get_range("/", {}, 0, stop=1),
    ]
    for call in calls:
        with pytest.raises(TypeError, match="positional-only"):
            call()
    assert not conn.closed and conn.sock.sent == b""


def test_Connection_refuses_a_used_body_before_sending(fake_socket: Any) -> None:
    # docs/reference/base.rst: write_to() needs READY; checked before the preamble goes out
    # so the server never sees a request cut short.
    from degu.base import BodyIter

    body = BodyIter([b"ab"], 2)
    body.write_to(io.BytesIO())
    sock = fake_socket(b"")
    conn = Connection(sock, None)
    with pytest.raises(ValueError) as info:
        conn.put("/", {}, body)
    assert str(info.value) == "BodyIter.state == BODY_CONSUMED, already consumed"
    assert conn.closed and sock.sent == b""


def test_Client_default_host_and_base_headers() -> None:
    assert Client(("192.168.1.171", 5984)).host == "192.168.1.171:5984"
    assert Client(("en.wikipedia.org", 80)).host == "en.wikipedia.org"
    assert Client(("::1", 443, 0, 0)).host == "[::1]:443"
    assert Client("/tmp/x.sock").host is None
    c = Client(("example.com", 80), authorization="Basic x")
    assert c.base_headers == (("authorization", "Basic x"), ("host", "example.com"))
    c.set_base_header("host", None)
    c.set_base_header("authorization", None)
    assert c.base_headers is None
    c.set_base_header("x-a", "1")
    assert c.base_headers == (("x-a", "1"),)
    assert Client(("a", 1), host=None).base_headers is None
    assert repr(Client(b"\x00abc")) == "Client(b'\\x00abc')"


def test_Client_refuses_bad_addresses_and_options() -> None:
    with pytest.raises(
        ValueError, match=r"^address: must have 2 or 4 items; got \('a',\)$"
    ):
        Client(("a",))
    with pytest.raises(ValueError, match="^address: bad socket filename: 'a/b'$"):
        Client("a/b")
    with pytest.raises(TypeError, match="^host: need a <class 'str'>"):
        Client((b"a", 1))
    with pytest.raises(TypeError, match="^port: need a <class 'int'>"):
        Client(("a", "1"), host="x")
    with pytest.raises(TypeError, match=r"^unsupported Client\(\) \*\*options: bad$"):
        Client(("a", 1), bad=1)
    with pytest.raises(TypeError, match="^on_connect: not callable: 1$"):
        Client(("a", 1), on_connect=1)
    with pytest.raises(ValueError):
        Client(("a", 1), timeout=0)
    assert Client(("a", 1), timeout=None).timeout is None
    assert Client(("a", 1)).timeout == 65


def test_Connection_order_of_checks(fake_socket: Any) -> None:
    sock = fake_socket(b"")
    conn = Connection(sock, None)
    assert conn.api is base.api and conn.bodies is base.api
    with pytest.raises(ValueError, match="^bad method: 'TRACE'$"):
        conn.request("TRACE", "/", {}, None)
    assert not conn.closed
    with pytest.raises(ValueError) as info:
        conn.request("GET", "/", {}, b"x")
    assert (
        str(info.value)
        == "when method is 'GET', body must be None; got a <class 'bytes'>"
    )
    assert conn.closed and sock.closed
    with pytest.raises(ValueError, match="^Connection is closed$"):
        conn.request("GET", "/", {}, None)
    with pytest.raises(TypeError, match="^base_headers: need a <class 'tuple'>"):
        Connection(sock, [])


def test_Connection_get_range_checks_do_not_close(fake_socket: Any) -> None:
    conn = Connection(
        fake_socket(b"HTTP/1.1 206 Partial Content\r\ncontent-length: 0\r\n\r\n"), None
    )
    with pytest.raises(ValueError, match="^need start < stop; got 5 >= 5$"):
        conn.get_range("/", {}, 5, 5)
    with pytest.raises(ValueError, match="^'range' mismatch: "):
        conn.get_range("/", {"range": "bytes=0-0"}, 5, 6)
    assert not conn.closed
    headers: dict[str, Any] = {}
    r = conn.get_range("/", headers, 0, 10)
    assert headers == {"range": Range(0, 10)}
    assert conn.sock.sent == b"GET / HTTP/1.1\r\nrange: bytes=0-9\r\n\r\n"
    assert r.status == 206 and r.body.read() == b""


def test_Connection_skips_unsolicited_1xx_and_refuses_stray_bytes(
    fake_socket: Any,
) -> None:
    conn = Connection(
        fake_socket(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"), None
    )
    assert conn.get("/", {}).status == 200
    conn = Connection(
        fake_socket(b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"), None
    )
    with pytest.raises(
        ValueError, match="unexpected bytes after a response without a body"
    ):
        conn.get("/", {})
    assert conn.closed
    conn = Connection(fake_socket(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"), None)
    with pytest.raises(ValueError, match="^unexpected interim response: 101"):
        conn.get("/", {})
    conn = Connection(
        fake_socket(
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n\r\n"
        ),
        None,
    )
    r = conn.get("/", {})
    assert r.body.read() == b"x"
    with pytest.raises(
        ValueError, match="unexpected bytes after the previous response"
    ):
        conn.get("/", {})


def test_Connection_response_body_must_be_consumed(fake_socket: Any) -> None:
    data = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nab"
    conn = Connection(fake_socket(data), None)
    r = conn.get("/", {})
    with pytest.raises(ValueError) as info:
        conn.get("/", {})
    assert str(info.value) == f"response body not consumed: {r.body!r}"
    assert conn.closed


def test_Connection_closes_after_connection_close(fake_socket: Any) -> None:
    data = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nab"
    conn = Connection(fake_socket(data), None)
    r = conn.get("/", {})
    assert not conn.closed
    assert r.body.read() == b"ab"
    assert conn.closed


@pytest.mark.parametrize("value", [b"Close", b"upgrade, close"])
def test_Connection_connection_close_is_a_case_insensitive_token(
    fake_socket: Any, value: bytes
) -> None:
    data = b"HTTP/1.1 200 OK\r\nConnection: " + value + b"\r\ncontent-length: 0\r\n\r\n"
    conn = Connection(fake_socket(data), None)
    r = conn.get("/", {})
    assert r.body.read() == b""
    assert conn.closed


def test_Connection_bad_response_closes(fake_socket: Any) -> None:
    conn = Connection(fake_socket(b"HTTP/1.1 200 OK\r\nA: 1\r\na: 2\r\n\r\n"), None)
    with pytest.raises(ValueError, match="^duplicate header: "):
        conn.get("/", {})
    assert conn.closed
    conn = Connection(fake_socket(b""), None)
    with pytest.raises(base.EmptyPreambleError, match="^response preamble is empty$"):
        conn.get("/", {})


def test_Client_on_connect_and_live_server(live_server: Any) -> None:
    live = live_server(
        ("127.0.0.1", 0), lambda s, r, a: (200, "OK", {}, r.uri.encode())
    )
    seen = []

    def on_connect(conn: Connection) -> Any:
        seen.append(conn)
        return len(seen) == 1

    c = Client(live.address, on_connect=on_connect)
    with c.connect() as conn:
        assert conn.base_headers == (("host", f"127.0.0.1:{live.address[1]}"),)
        assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert conn.get("/a?b", {}).body.read() == b"/a?b"
    with pytest.raises(ValueError, match=r"^on_connect\(\) did not return True$"):
        c.connect()
    assert seen[1].closed


def test_Client_connections_from_many_threads(live_server: Any) -> None:
    live = live_server(("127.0.0.1", 0), lambda s, r, a: (200, "OK", {}, b"x"))
    c = Client(live.address)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with c.connect() as conn:
                for _ in range(20):
                    assert conn.get("/", {}).body.read() == b"x"
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []


def test_Client_timeout_bounds_a_silent_server_with_kernel_timeouts() -> None:
    """connect() moves the timeout into the kernel; expiry is still TimeoutError."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = Client(listener.getsockname(), timeout=0.3)
        with client.connect() as conn:
            assert conn.sock.gettimeout() is None  # blocking, SO_RCVTIMEO set
            start = time.monotonic()
            with pytest.raises(TimeoutError, match="^timed out$"):
                conn.get("/", {})
            assert 0.25 <= time.monotonic() - start < 3
            assert conn.closed
        listener.accept()[0].close()


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("x y", "1", "name: need 1-32 of a-z, 0-9 and '-'; got 'x y'"),
        ("x_y", "1", "name: need 1-32 of a-z, 0-9 and '-'; got 'x_y'"),
        ("x" * 33, "1", "name: need 1-32 of a-z, 0-9 and '-'; got '" + "x" * 33 + "'"),
        ("x-a", "", "value: need non-empty printable ASCII; got ''"),
        (
            "x-a",
            "a\r\nb: c",
            "value: need non-empty printable ASCII; got 'a\\r\\nb: c'",
        ),
        ("x-a", "caf\u00e9", "value: need non-empty printable ASCII; got 'caf\u00e9'"),
    ],
)
def test_Client_set_base_header_refuses_what_no_request_could_send(
    name: str, value: str, error: str
) -> None:
    c = Client(("127.0.0.1", 8080))
    with pytest.raises(ValueError) as e:
        c.set_base_header(name, value)
    assert str(e.value) == error
    assert c.base_headers == (("host", "127.0.0.1:8080"),)


def test_Client_set_base_header_accepts_the_longest_name() -> None:
    c = Client(("127.0.0.1", 8080), host=None)
    c.set_base_header("x" * 32, "v")
    assert c.base_headers == (("x" * 32, "v"),)


def _method_echo(session: Any, request: Any, api: Any) -> Any:
    data = b"" if request.body is None else request.body.read()
    text = f"{request.method} {request.path} {request.headers.get('range')}"
    return (200, "OK", {}, text.encode() + data)


def test_Connection_sends_OPTIONS_and_PATCH(live_server: Any) -> None:
    live = live_server(("127.0.0.1", 0), _method_echo)
    conn = Client(live.address).connect()
    try:
        assert conn.options("/a", {}).body.read() == b"OPTIONS ['a'] None"
        assert conn.patch("/a", {}, b"xy").body.read() == b"PATCH ['a'] Nonexy"
        with pytest.raises(ValueError, match="^when method is 'OPTIONS', body must"):
            conn.request("OPTIONS", "/a", {}, b"x")
    finally:
        conn.close()


def test_Connection_sends_one_sided_ranges_and_decoded_paths(
    live_server: Any,
) -> None:
    from degu.base import OpenRange, SuffixRange

    live = live_server(("127.0.0.1", 0), _method_echo)
    conn = Client(live.address).connect()
    try:
        r = conn.get("/my%20f%C3%A9", {"range": OpenRange(3)})
        assert r.body.read() == "GET ['my fé'] bytes=3-".encode()
        r = conn.get("/x", {"range": SuffixRange(3)})
        assert r.body.read() == b"GET ['x'] bytes=-3"
    finally:
        conn.close()


@pytest.mark.parametrize("uri", ["a", "", "*", "http://example.com/", "/a#b", "/%"])
def test_Connection_refuses_a_target_not_in_origin_form(
    fake_socket: Any, uri: str
) -> None:
    conn = Connection(fake_socket(b""), None)
    with pytest.raises(ValueError, match="^" + re.escape(f"bad uri: {uri!r}")):
        conn.get(uri, {})
    assert conn.closed  # a refused request closes, like every request error
