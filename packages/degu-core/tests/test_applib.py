"""Tests for degu.applib: AllowedMethods, MethodFilter, Router."""

from __future__ import annotations

import io
import socket
from typing import Any

import pytest

from degu import applib
from degu.base import Body, Request, Session, api


def req(method: str, uri: str, body: Any = None) -> Request:
    path_part, sep, query = uri.partition("?")
    path = [] if path_part == "/" else path_part.split("/")[1:]
    return Request(method, uri, {}, body, [], path, query if sep else None)


def echo(session: Any, request: Any, api: Any) -> Any:
    return (200, "OK", {}, repr((request.mount, request.path)).encode())


def test_module_all() -> None:
    assert applib.__all__ == ("AllowedMethods", "MethodFilter", "Router", "ProxyApp")
    assert applib.ROUTER_MAX_DEPTH == 10
    assert applib.FilesApp.__module__.startswith("degu.")


def test_AllowedMethods_allows_only_its_known_methods() -> None:
    am = applib.AllowedMethods("GET", "HEAD")
    assert am.methods == ("GET", "HEAD")
    assert repr(am) == "AllowedMethods('GET', 'HEAD')"
    assert repr(applib.AllowedMethods()) == "AllowedMethods()"
    assert am.isallowed("GET") is True
    assert am.isallowed("PUT") is False
    assert am.isallowed("get") is False
    for bad in ("get", "TRACE", b"GET", None):
        with pytest.raises(ValueError) as e:
            applib.AllowedMethods("GET", bad)  # type: ignore[arg-type]
        assert str(e.value) == f"bad method: {bad!r}"


def test_AllowedMethods_filters_OPTIONS_and_PATCH() -> None:
    am = applib.AllowedMethods("OPTIONS", "PATCH")
    assert am.isallowed("OPTIONS") and am.isallowed("PATCH")
    assert not am.isallowed("GET")
    assert applib.METHODS == (
        "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"
    )  # fmt: skip


def test_Router_matches_decoded_components() -> None:
    """Keys match percent-decoded segments, so 'my file' and 'é' route."""
    from degu.base import Session, api
    from degu.misc import mkreq

    router = applib.Router({"my file": echo, "é": echo})
    for uri in ("/my%20file", "/%C3%A9"):
        r = router(Session(("x", 1)), mkreq("GET", uri), api)
        assert r[0] == 200


def test_AllowedMethods_as_decorator() -> None:
    filtered = applib.AllowedMethods("GET")(echo)
    assert type(filtered) is applib.MethodFilter
    assert filtered.app is echo
    assert filtered.allowed_methods.methods == ("GET",)


def test_MethodFilter_validates_arguments() -> None:
    am = applib.AllowedMethods("GET")
    with pytest.raises(TypeError) as e:
        applib.MethodFilter("app", am)  # type: ignore[arg-type]
    assert str(e.value) == "app: not callable: 'app'"
    with pytest.raises(TypeError) as e:
        applib.MethodFilter(echo, ("GET",))  # type: ignore[arg-type]
    assert str(e.value) == (
        "allowed_methods: need a <class 'degu.applib.AllowedMethods'>; "
        "got a <class 'tuple'>: ('GET',)"
    )


def test_MethodFilter_passes_and_refuses() -> None:
    f = applib.MethodFilter(echo, applib.AllowedMethods("GET", "PUT"))
    session = Session(("127.0.0.1", 1))
    assert f(session, req("GET", "/a"), api)[0] == 200
    assert f(session, req("DELETE", "/a"), api) == (405, "Method Not Allowed", {}, None)


def test_MethodFilter_discards_the_body_it_refuses() -> None:
    f = applib.MethodFilter(echo, applib.AllowedMethods("GET"))
    body = Body(io.BytesIO(b"abc"), 3)
    assert f(Session(("::1", 1, 0, 0)), req("POST", "/", body), api)[0] == 405
    assert body.state == 2


def test_MethodFilter_forwards_on_connect() -> None:
    class App:
        def __call__(self, *args: Any) -> Any:
            return (200, "OK", {}, None)

        def on_connect(self, session: Any, sock: Any) -> bool:
            return True

    app = App()
    f = applib.MethodFilter(app, applib.AllowedMethods("GET"))
    assert f.on_connect == app.on_connect
    assert not hasattr(applib.MethodFilter(echo, applib.AllowedMethods()), "on_connect")


def test_Router_validates_appmap() -> None:
    with pytest.raises(TypeError) as e:
        applib.Router([])  # type: ignore[arg-type]
    assert str(e.value) == "appmap: need a <class 'dict'>; got a <class 'list'>: []"
    with pytest.raises(TypeError) as e:
        applib.Router({"foo": "bar"})
    assert str(e.value) == "appmap['foo']: value not callable: 'bar'"
    with pytest.raises(TypeError):
        applib.Router({1: echo})  # type: ignore[dict-item]
    with pytest.raises(ValueError) as e2:
        applib.Router({"a/b": echo})
    assert str(e2.value) == "appmap: bad key: 'a/b'"
    with pytest.raises(ValueError) as e2:
        applib.Router({"a\nb": echo})
    assert str(e2.value) == "appmap: bad key: 'a\\nb'"


def test_Router_names_the_offending_key_in_a_nested_appmap() -> None:
    # docs/reference/applib.rst: the message is 'appmap[{key!r}]: value not callable: ...'
    # with the key whose value is bad, at whatever depth it sits.
    with pytest.raises(TypeError) as e:
        applib.Router({"a": {None: 17}})
    assert str(e.value) == "appmap[None]: value not callable: 17"
    with pytest.raises(TypeError) as e:
        applib.Router({"a": {"b": {"c": "x"}}})
    assert str(e.value) == "appmap['c']: value not callable: 'x'"


def nested(depth: int) -> dict[Any, Any]:
    appmap: dict[Any, Any] = {None: echo}
    for _ in range(depth - 1):
        appmap = {"x": appmap}
    return appmap


def test_Router_depth_limit_edges() -> None:
    applib.Router(nested(applib.ROUTER_MAX_DEPTH))
    with pytest.raises(ValueError) as e:
        applib.Router(nested(applib.ROUTER_MAX_DEPTH + 1))
    assert str(e.value) == "Router: max appmap depth 10 exceeded"


def test_Router_routes_by_segment_and_answers_410_for_unknown_paths() -> None:
    def leaf(name: str) -> Any:
        def app(session: Any, request: Any, api: Any) -> Any:
            return (200, "OK", {}, f"{name} {request.mount} {request.path}".encode())

        return app

    router = applib.Router(
        {
            None: leaf("root"),
            "": leaf("slash"),
            "foo": leaf("foo"),
            "bar": {None: leaf("bar"), "": leaf("bar/"), "baz": leaf("baz")},
        }
    )
    assert router.appmap[None] is not None
    s = Session(("127.0.0.1", 1))
    cases = {
        "/": b"root [] []",
        "/foo": b"foo ['foo'] []",
        "/foo/more/stuff": b"foo ['foo'] ['more', 'stuff']",
        "/bar": b"bar ['bar'] []",
        "/bar/": b"bar/ ['bar', ''] []",
        "/bar/baz/x": b"baz ['bar', 'baz'] ['x']",
    }
    for uri, expected in cases.items():
        assert router(s, req("GET", uri), api)[3] == expected, uri
    for uri in ("/nope", "/bar/nope", "/foo2"):
        assert router(s, req("GET", uri), api) == (410, "Gone", {}, None)


def test_Router_slash_needs_empty_key() -> None:
    router = applib.Router({None: echo})
    s = Session(("127.0.0.1", 1))
    assert router(s, req("GET", "/"), api)[0] == 200
    assert router(s, Request("GET", "/", {}, None, [], [""], None), api)[0] == 410


def test_Router_needs_a_Request() -> None:
    router = applib.Router({None: echo})

    class Fake:
        pass

    with pytest.raises(TypeError) as e:
        router(Session(("127.0.0.1", 1)), Fake(), api)
    assert str(e.value).startswith(f"request: need a {Request!r}; got a ")


def test_Router_discards_body_for_410() -> None:
    router = applib.Router({"a": echo})
    body = Body(io.BytesIO(b"abc"), 3)
    assert router(Session(("127.0.0.1", 1)), req("PUT", "/b", body), api)[0] == 410
    assert body.state == 2


def _wire(address: Any, data: bytes) -> bytes:
    """Send raw bytes, read until the server closes (bounded by a timeout)."""
    with socket.create_connection(address, timeout=10) as s:
        s.sendall(data)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return reply


@pytest.mark.parametrize("target", ["/b", "/a"])
def test_refused_body_past_MAX_DISCARD_gets_413_and_close(
    live_server: Any, target: str
) -> None:
    """Router's 410 and MethodFilter's 405 become 413 + close past the limit."""
    app = applib.Router({"a": applib.MethodFilter(echo, applib.AllowedMethods("GET"))})
    live = live_server(("127.0.0.1", 0), app)
    head = f"PUT {target} HTTP/1.1\r\ncontent-length: %d\r\n\r\n".encode()
    limit = applib.MAX_DISCARD
    status = b"410 Gone" if target == "/b" else b"405 Method Not Allowed"
    # At the limit: drained, then the app's own answer.
    reply = _wire(live.address, head % limit + b"x" * limit)
    assert reply.startswith(b"HTTP/1.1 " + status + b"\r\n")
    # One byte more: refused unread, 413 with connection: close, then EOF.
    # (The app runs once the first BUF_LEN body bytes are in: send 64 KiB.)
    assert _wire(live.address, head % (limit + 1) + b"x" * 65536) == (
        b"HTTP/1.1 413 Content Too Large\r\n"
        b"connection: close\r\ncontent-length: 0\r\n\r\n"
    )
