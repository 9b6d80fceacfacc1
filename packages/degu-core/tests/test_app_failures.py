"""Apps that fail or return invalid responses, seen through a strict parser.

docs/reference/server.rst (Error responses): a failure found before the first response byte is
answered with exactly a 500 and a close; a failure found while streaming can
only close the connection, and then the peer must be able to tell that the
message is incomplete.  Every byte the server sends is fed to
``h11.Connection(h11.CLIENT)``, which refuses anything a peer could misread.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import h11
import pytest

from degu.base import BodyIter, ChunkedBodyIter, Response

REQUEST = b"PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
ERROR_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\n"
    b"connection: close\r\ncontent-length: 0\r\n\r\n"
)


def read_all(address: Any, data: bytes) -> bytes:
    """Send *data* and read until the server closes (a reset ends it too)."""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)


def h11_parse(reply: bytes) -> list[Any]:
    """Events h11 reads from *reply* to our PUT, through EOF."""
    client = h11.Connection(h11.CLIENT)
    headers = [("Host", "a"), ("Content-Length", "3")]
    client.send(h11.Request(method="PUT", target="/x", headers=headers))
    client.send(h11.Data(data=b"abc"))
    client.send(h11.EndOfMessage())
    client.receive_data(reply)
    client.receive_data(b"")
    events: list[Any] = []
    while True:
        event = client.next_event()
        assert event is not h11.NEED_DATA
        events.append(event)
        if type(event) is h11.ConnectionClosed:
            return events


def before_any_byte() -> list[Any]:
    """(id, response) pairs that must be refused with a 500."""
    long_name = "n" * 33
    many = {f"h{i}": "v" for i in range(20)}  # + content-length = 21 > 20
    return [
        ("status-99", (99, "Odd", {}, None)),
        ("status-600", (600, "Odd", {}, None)),
        ("status-str", ("200", "OK", {}, None)),
        ("status-bool", (True, "OK", {}, None)),
        ("status-float", (200.0, "OK", {}, None)),
        ("reason-crlf", (200, "OK\r\nx-evil: 1", {}, None)),
        ("reason-lf", (200, "OK\nHTTP/1.1 200 OK", {}, None)),
        ("reason-nul", (200, "O\x00K", {}, None)),
        ("reason-empty", (200, "", {}, None)),
        ("reason-bytes", (200, b"OK", {}, None)),
        ("header-value-crlf", (200, "OK", {"x": "1\r\n\r\nHTTP/1.1 200 OK"}, None)),
        ("header-value-nul", (200, "OK", {"x": "a\x00b"}, None)),
        ("header-value-cr", (200, "OK", {"x": "a\rb"}, None)),
        ("header-value-empty", (200, "OK", {"x": ""}, None)),
        ("header-value-non-ascii", (200, "OK", {"x": "caf\xe9"}, None)),
        ("header-name-upper", (200, "OK", {"X-Foo": "1"}, None)),
        ("header-name-space", (200, "OK", {"x foo": "1"}, None)),
        ("header-name-colon", (200, "OK", {"x:": "1"}, None)),
        ("header-name-33", (200, "OK", {long_name: "1"}, None)),
        ("header-name-bytes", (200, "OK", {b"x": "1"}, None)),
        ("headers-not-dict", (200, "OK", [("x", "1")], None)),
        ("headers-21", (200, "OK", many, b"x")),
        ("cl-disagrees-bytes", (200, "OK", {"content-length": 5}, b"abc")),
        ("cl-str-disagrees", (200, "OK", {"content-length": "3"}, b"abc")),
        ("cl-disagrees-bodyiter", (200, "OK", {"content-length": 4},
                                   BodyIter([b"abc"], 3))),
        ("te-with-bodyiter", (200, "OK", {"transfer-encoding": "chunked"},
                              BodyIter([b"abc"], 3))),
        ("cl-with-chunked", (200, "OK", {"content-length": 3},
                             ChunkedBodyIter([(None, b"abc"), (None, b"")]))),
        ("body-str", (200, "OK", {}, "abc")),
        ("body-list", (200, "OK", {}, [b"abc"])),
        ("body-on-304", (304, "Not Modified", {}, b"x")),
        ("status-101", (101, "Switching Protocols", {"upgrade": "h2c"}, None)),
        ("none", None),
        ("five-tuple", (200, "OK", {}, None, None)),
        ("response-bad-body", Response(200, "OK", {}, 17)),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "response", [pytest.param(r, id=name) for name, r in before_any_byte()]
)
def test_invalid_response_is_a_500_and_a_close(live_server: Any, response: Any) -> None:
    calls = []

    def app(session: Any, request: Any, api: Any) -> Any:
        calls.append(request.path)
        request.body.read()
        if request.path == ["ok"]:
            return (200, "OK", {}, b"fine")
        return response

    live = live_server(("127.0.0.1", 0), app, timeout=5)
    reply = read_all(live.address, REQUEST)
    assert reply == ERROR_500
    events = h11_parse(reply)
    assert [type(e) for e in events] == [h11.Response, h11.EndOfMessage,
                                         h11.ConnectionClosed]  # fmt: skip
    assert events[0].status_code == 500
    assert calls == [["x"]]
    again = read_all(live.address, REQUEST.replace(b"/x", b"/ok").replace(
        b"Host: a", b"Connection: close"))  # fmt: skip
    assert again == b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nfine"


def exploding(pieces: list[bytes]) -> Iterator[bytes]:
    yield from pieces
    raise RuntimeError("the source failed mid-stream")


def while_streaming() -> list[Any]:
    """(id, body, bytes a peer may see) for failures after the preamble."""
    return [
        ("bodyiter-underrun", BodyIter([b"abc"], 5),
         b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabc"),
        ("bodyiter-overrun", BodyIter([b"abc", b"defgh"], 5),
         b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabc"),
        ("bodyiter-raises", BodyIter(exploding([b"ab"]), 5),
         b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab"),
        ("bodyiter-bad-item", BodyIter([b"ab", "cde"], 5),
         b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab"),
        ("chunked-bad-item", ChunkedBodyIter([(None, b"ab"), b"cd", (None, b"")]),
         b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n"),
        ("chunked-no-final", ChunkedBodyIter([(None, b"ab")]),
         b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n"),
        ("chunked-raises", ChunkedBodyIter(iter(exploding([]))),
         b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"),
        ("chunked-bad-ext", ChunkedBodyIter([(None, b"ab"), (("k", "a\r\nb"), b"c"),
                                             (None, b"")]),
         b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "expected"),
    [pytest.param(body, seen, id=name) for name, body, seen in while_streaming()],
)
def test_failure_while_streaming_closes_and_is_never_misread(
    live_server: Any, body: Any, expected: bytes
) -> None:
    bodies = [body]

    def app(session: Any, request: Any, api: Any) -> Any:
        request.body.read()
        if bodies:
            return (200, "OK", {}, bodies.pop())
        return (200, "OK", {}, b"next")

    live = live_server(("127.0.0.1", 0), app, timeout=5)
    # A second request on the same connection must never be answered.
    reply = read_all(live.address, REQUEST + REQUEST)
    assert reply == expected
    with pytest.raises(h11.RemoteProtocolError):
        h11_parse(reply)  # the peer knows the message is incomplete
    with socket.create_connection(live.address, timeout=5) as sock:
        sock.sendall(REQUEST.replace(b"Host: a", b"Connection: close"))
        assert sock.recv(100) == b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext"
