"""The public API where Degu 0.19 and this Degu were compared behaviour by behaviour.

Each test pins one behaviour: either it matches Degu 0.19, or it differs on
purpose and docs/explanation/departures.rst says why.  The process attribute
of ``TempServer`` is pinned in test_processes.py (and degu-embed's in its own
tests), where every start method runs.
"""

from __future__ import annotations

import io
import os
import socket
from typing import Any

import pytest

from degu.applib import ROUTER_MAX_DEPTH, FilesApp, Router
from degu.base import BodyIter, Connection, Request, Session, api
from degu.client import Client, SSLClient
from degu.misc import TempPKI, mkreq
from degu.server import SSLServer


def hello(session: Any, request: Any, api: Any) -> Any:
    return (200, "OK", {}, b"hello")


# --- 1. Client.create_socket() may return a socket-like object --------------


class SocketLike:
    """Only what Connection needs: recv_into, send and close (no gettimeout)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.closes = 0

    def recv_into(self, buf: Any) -> int:
        return self._sock.recv_into(buf)

    def send(self, data: Any) -> int:
        return self._sock.send(data)

    def close(self) -> None:
        self.closes += 1
        self._sock.close()


class SocketLikeClient(Client):
    def create_socket(self) -> Any:
        return SocketLike(super().create_socket())


def test_connect_accepts_a_socket_like_object_from_create_socket(
    live_server: Any,
) -> None:
    live = live_server(("127.0.0.1", 0), hello)
    conn = SocketLikeClient(live.address, timeout=10).connect()
    try:
        assert type(conn.sock) is SocketLike
        assert not hasattr(conn.sock, "gettimeout")
        response = conn.get("/", {})
        assert (response.status, response.body.read()) == (200, b"hello")
    finally:
        conn.close()


# --- 3. a method of the wrong type is a TypeError ---------------------------


class Method(str):
    pass


@pytest.mark.parametrize("method", [b"GET", Method("GET"), None])
def test_Request_refuses_a_method_that_is_not_exactly_str(method: Any) -> None:
    with pytest.raises(TypeError) as info:
        Request(method, "/", {}, None, [], [], None)
    assert str(info.value) == (
        f"method: need a {str!r}; got a {type(method)!r}: {method!r}"
    )


def test_Request_refuses_an_unknown_method_str_with_ValueError() -> None:
    with pytest.raises(ValueError, match="^bad method: 'get'$"):
        Request("get", "/", {}, None, [], [], None)


@pytest.mark.parametrize("method", [b"GET", Method("GET")])
def test_Connection_request_refuses_a_method_that_is_not_exactly_str(
    fake_socket: Any, method: Any
) -> None:
    sock = fake_socket(b"")
    conn = Connection(sock, None)
    with pytest.raises(TypeError, match=r"^method: need a <class 'str'>; got a "):
        conn.request(method, "/", {}, None)
    assert not conn.closed  # like a bad method name: nothing was sent
    assert sock.sent == b""
    with pytest.raises(ValueError, match="^bad method: 'TRACE'$"):
        conn.request("TRACE", "/", {}, None)


# --- 4. repr() of TLS subclasses names the subclass --------------------------


@pytest.fixture(scope="module")
def pki() -> TempPKI:
    return TempPKI()


def test_repr_of_SSLClient_and_SSLServer_subclasses_names_the_subclass(
    pki: TempPKI,
) -> None:
    class MyClient(SSLClient):
        pass

    class MyServer(SSLServer):
        pass

    client = MyClient(pki.client_sslconfig, ("127.0.0.1", 443))
    assert repr(client) == "MyClient(<sslctx>, ('127.0.0.1', 443))"
    assert repr(SSLClient(pki.client_sslconfig, ("127.0.0.1", 443))) == (
        "SSLClient(<sslctx>, ('127.0.0.1', 443))"
    )
    with MyServer(pki.server_sslconfig, ("127.0.0.1", 0), hello) as server:
        assert repr(server).startswith(f"MyServer(<sslctx>, {server.address!r}, ")


# --- 5. Router checks its depth on every call --------------------------------


def _nested(depth: int) -> dict[Any, Any]:
    appmap: dict[Any, Any] = {"x": hello}
    for _ in range(depth - 1):
        appmap = {"x": appmap}
    return appmap


def test_Router_refuses_to_route_deeper_than_its_limit_after_a_change() -> None:
    router = Router(_nested(ROUTER_MAX_DEPTH))
    deepest = "/" + "/".join(["x"] * ROUTER_MAX_DEPTH)
    assert router(Session(("x", 1)), mkreq("GET", deepest), api)[0] == 200
    leaf_parent = router.appmap
    for _ in range(ROUTER_MAX_DEPTH - 1):
        leaf_parent = leaf_parent["x"]
    leaf_parent["x"] = {"x": hello}  # one level too deep, added afterwards
    with pytest.raises(ValueError) as info:
        router(Session(("x", 1)), mkreq("GET", deepest + "/x"), api)
    assert str(info.value) == "Router: max appmap depth 10 exceeded"


def test_Router_cannot_loop_on_a_map_changed_into_a_cycle() -> None:
    router = Router({"x": hello})
    router.appmap[None] = router.appmap  # '/'-less paths now cycle
    with pytest.raises(ValueError, match="^Router: max appmap depth 10 exceeded$"):
        router(Session(("x", 1)), mkreq("GET", "/"), api)


# --- 6. write_to(), Connection.close(), Connection(sock) ---------------------


class Writer:
    def __init__(self, result: Any) -> None:
        self.result = result

    def write(self, data: Any) -> Any:
        return self.result


@pytest.mark.parametrize("result", ["3", 3.0, None, True])
def test_write_to_refuses_a_write_result_that_is_not_an_int(result: Any) -> None:
    body = BodyIter([b"abc"], 3)
    with pytest.raises(TypeError) as info:
        body.write_to(Writer(result))
    assert str(info.value) == (
        f"wfile.write() result: need a {int!r}; got a {type(result)!r}: {result!r}"
    )
    assert body.state == 3  # BODY_ERROR


@pytest.mark.parametrize("result", [0, 4, -1])
def test_write_to_refuses_a_write_result_out_of_range(result: int) -> None:
    with pytest.raises(ValueError, match=f"^need 0 < wrote <= 3; got {result}$"):
        BodyIter([b"abc"], 3).write_to(Writer(result))


def test_Connection_close_returns_None_and_closes_the_socket_once(
    fake_socket: Any,
) -> None:
    # A departure (docs/explanation/departures.rst): 0.19 returned the
    # socket's close() result.
    class Counting(fake_socket):  # type: ignore[misc,valid-type]
        closes = 0

        def close(self) -> str:
            self.closes += 1
            return "closed"

    sock = Counting(b"")
    conn = Connection(sock, None)
    assert conn.close() is None
    assert conn.close() is None
    assert sock.closes == 1


class NoSend:
    def __init__(self) -> None:
        self.closed = False

    def recv_into(self, buf: Any) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


def test_Connection_checks_sock_send_at_once_and_closes_what_it_refuses() -> None:
    sock = NoSend()
    with pytest.raises(AttributeError, match="send"):
        Connection(sock, None)
    assert sock.closed


def test_Connection_refuses_an_object_without_close_as_it_is() -> None:
    with pytest.raises(AttributeError, match="recv_into"):
        Connection(object(), None)


# --- 7. FilesApp bodies have their own reader --------------------------------


def test_FilesApp_body_reads_through_its_own_reader_and_closes_the_file(
    tmp_path: Any,
) -> None:
    # A departure (docs/explanation/departures.rst): 0.19 gave an io.FileIO.
    (tmp_path / "f.txt").write_bytes(b"data")
    app = FilesApp(str(tmp_path))
    status, _reason, headers, body = app(Session(("x", 1)), mkreq("GET", "/f.txt"), api)
    assert (status, headers["content-length"]) == (200, 4)
    assert not isinstance(body.rfile, io.IOBase)
    assert not hasattr(body.rfile, "tell") and not hasattr(body.rfile, "name")
    assert fds_open_on(tmp_path / "f.txt") == 1
    assert body.read() == b"data"
    assert fds_open_on(tmp_path / "f.txt") == 0  # closed at the last byte


def fds_open_on(path: Any) -> int:
    """How many of our fds refer to *path*.

    Not the process's fd count: threads left by earlier tests (a server's
    workers, its I/O loop) may still be opening or closing sockets.
    """
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path.resolve())
        except FileNotFoundError:  # closed since the listing (listdir's own)
            pass
    return count
