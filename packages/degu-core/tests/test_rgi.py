"""Tests for degu.rgi: the Validator middleware."""

from __future__ import annotations

import collections
import io
from typing import Any

import pytest

from degu import rgi

# degu.rgi must stand alone, so most tests use these stand-in body classes,
# delivered through an api-like namedtuple exactly as a server would.


class FakeBody:
    chunked = False

    def __init__(self, content_length: int, state: int = 0) -> None:
        self.content_length = content_length
        self.state = state

    def read(self) -> bytes:
        self.state = 2
        return b"x" * self.content_length


class FakeChunkedBody:
    chunked = True

    def __init__(self, state: int = 0) -> None:
        self.state = state

    def read(self) -> bytes:
        self.state = 2
        return b""


class FakeBodyIter(FakeBody):
    pass


class FakeChunkedBodyIter(FakeChunkedBody):
    pass


class FakeRange:
    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, stop


class FakeContentRange:
    def __init__(self, start: int, stop: int, total: int) -> None:
        self.start, self.stop, self.total = start, stop, total


Api = collections.namedtuple(
    "Api", "Body ChunkedBody BodyIter ChunkedBodyIter Range ContentRange"
)
API = Api(
    FakeBody,
    FakeChunkedBody,
    FakeBodyIter,
    FakeChunkedBodyIter,
    FakeRange,
    FakeContentRange,
)


class Session:
    def __init__(self, address: Any = ("127.0.0.1", 5000), requests: int = 0) -> None:
        self.address = address
        self.requests = requests
        self.store: dict[Any, Any] = {}


class Request:
    def __init__(
        self,
        method: str = "GET",
        uri: str = "/foo",
        headers: Any = None,
        body: Any = None,
        mount: Any = None,
        path: Any = None,
        query: Any = None,
    ) -> None:
        self.method = method
        self.uri = uri
        self.headers = {} if headers is None else headers
        self.body = body
        self.mount = [] if mount is None else mount
        self.path = ["foo"] if path is None else path
        self.query = query


def returning(response: Any) -> Any:
    def app(session: Any, request: Any, api: Any) -> Any:
        if request.body is not None:
            request.body.read()
        return response

    return app


def run(response: Any, request: Any = None, session: Any = None) -> Any:
    v = rgi.Validator(returning(response))
    return v(session or Session(), request or Request(), API)


def test_constants() -> None:
    assert rgi.REQUEST_METHODS == (
        "GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH"
    )  # fmt: skip
    assert rgi.LENGTH == "content-length"
    assert rgi.ENCODING == "transfer-encoding"
    assert rgi.TYPE_ERROR == "{}: need a {!r}; got a {!r}: {!r}"


def test_rgi_imports_no_other_degu_module() -> None:
    import subprocess
    import sys

    # What the package itself loads (degu-embed's __init__ imports
    # degu._lifetime when installed) is not rgi's doing.
    code = (
        "import sys, degu; before = set(sys.modules); import degu.rgi; "
        "print(sorted(m for m in set(sys.modules) - before "
        "if m.startswith('degu.') and m != 'degu.rgi'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.strip() == "[]"


def test_Validator_rejects_non_callable_app() -> None:
    with pytest.raises(TypeError) as e:
        rgi.Validator("nope")
    assert str(e.value) == "app: not callable: 'nope'"


def test_Validator_rejects_non_callable_on_connect() -> None:
    class App:
        on_connect = 17

        def __call__(self, *args: Any) -> None:
            pass

        def __repr__(self) -> str:
            return "<App>"

    with pytest.raises(TypeError) as e:
        rgi.Validator(App())
    assert str(e.value) == "app.on_connect: not callable: <App>"


def test_Validator_attributes_and_repr() -> None:
    def app(session: Any, request: Any, api: Any) -> None:
        pass

    v = rgi.Validator(app)
    assert v.app is app
    assert v._on_connect is None
    assert repr(v) == f"Validator({app!r})"


def test_Validator_on_connect_without_app_hook_returns_True() -> None:
    v = rgi.Validator(returning((200, "OK", {}, None)))
    assert v.on_connect(Session(), object()) is True


def test_Validator_on_connect_forwards_and_checks_bool() -> None:
    calls = []

    class App:
        result: Any = False

        def __call__(self, *args: Any) -> None:
            pass

        def on_connect(self, session: Any, sock: Any) -> Any:
            calls.append((session, sock))
            return self.result

    app = App()
    v = rgi.Validator(app)
    session, sock = Session(), object()
    assert v.on_connect(session, sock) is False
    assert calls == [(session, sock)]
    app.result = 1
    with pytest.raises(TypeError) as e:
        v.on_connect(Session(), sock)
    assert str(e.value) == (
        "app.on_connect() result: need a <class 'bool'>; got a <class 'int'>: 1"
    )


def test_Validator_on_connect_needs_zero_requests() -> None:
    v = rgi.Validator(returning(None))
    with pytest.raises(ValueError) as e:
        v.on_connect(Session(requests=1), None)
    assert str(e.value) == "session.requests must be 0 in on_connect(); got 1"


def test_Validator_reports_missing_attributes() -> None:
    v = rgi.Validator(returning((200, "OK", {}, None)))
    with pytest.raises(ValueError) as e:
        v(object(), Request(), API)
    assert str(e.value) == "session: 'object' object has no attribute 'address'"
    req = Request()
    del req.query
    with pytest.raises(ValueError) as e:
        v(Session(), req, API)
    assert str(e.value) == "request: 'Request' object has no attribute 'query'"


@pytest.mark.parametrize(
    "address", [("::1", 1, 0, 0), ("1.2.3.4", 5), "/tmp/sock", b"\x0000001"]
)
def test_Validator_accepts_session_addresses(address: Any) -> None:
    assert run((200, "OK", {}, None), session=Session(address=address))


def test_Validator_checks_session() -> None:
    with pytest.raises(ValueError) as e:
        run((200, "OK", {}, None), session=Session(address=("a", 1, 2)))
    assert str(e.value) == "session.address: need a 2-tuple or 4-tuple; got a 3-tuple"
    with pytest.raises(TypeError) as e2:
        run((200, "OK", {}, None), session=Session(address=["a", 1]))
    assert str(e2.value).startswith("session.address: need a (<class 'tuple'>")
    with pytest.raises(TypeError):
        run((200, "OK", {}, None), session=Session(requests=True))
    with pytest.raises(ValueError) as e3:
        run((200, "OK", {}, None), session=Session(requests=-1))
    assert str(e3.value) == "session.requests: need >= 0; got -1"
    s = Session()
    s.store[1] = 2
    with pytest.raises(TypeError) as e4:
        run((200, "OK", {}, None), session=s)
    assert (
        str(e4.value)
        == "session.store key: need a <class 'str'>; got a <class 'int'>: 1"
    )


def test_Validator_returns_response_unchanged() -> None:
    response = (200, "OK", {"content-length": 3}, b"abc")
    assert run(response) is response


def test_Validator_checks_request_method_and_fields() -> None:
    with pytest.raises(ValueError) as e:
        run((200, "OK", {}, None), Request(method="TRACE"))
    assert str(e.value) == "request.method: bad method: 'TRACE'"
    with pytest.raises(TypeError):
        run((200, "OK", {}, None), Request(path=("foo",)))
    with pytest.raises(TypeError) as e2:
        run((200, "OK", {}, None), Request(path=[b"foo"]))
    assert str(e2.value).startswith("request.path[0]: need a <class 'str'>")
    with pytest.raises(TypeError):
        run((200, "OK", {}, None), Request(query=b"q"))


@pytest.mark.parametrize(
    ("uri", "mount", "path", "query"),
    [
        ("/", [], [], None),
        ("/?", [], [], ""),
        ("/a/b?x=1", ["a"], ["b"], "x=1"),
        ("/a/", ["a"], [""], None),
    ],
)
def test_Validator_accepts_uri_invariant(
    uri: str, mount: Any, path: Any, query: Any
) -> None:
    req = Request(uri=uri, mount=mount, path=path, query=query)
    assert run((200, "OK", {}, None), req)


def test_Validator_checks_uri_invariant_before_and_after() -> None:
    with pytest.raises(ValueError) as e:
        run((200, "OK", {}, None), Request(uri="/bar"))
    assert (
        str(e.value)
        == "before app(): request.uri '/bar' != mount + path + query '/foo'"
    )

    def shifty(session: Any, request: Any, api: Any) -> Any:
        request.path.pop(0)
        return (200, "OK", {}, None)

    with pytest.raises(ValueError) as e2:
        rgi.Validator(shifty)(Session(), Request(), API)
    assert (
        str(e2.value) == "after app(): request.uri '/foo' != mount + path + query '/'"
    )


def test_Validator_checks_request_headers() -> None:
    for headers, exc in [
        ([], TypeError),
        ({"Foo": "bar"}, ValueError),
        ({1: "bar"}, TypeError),
        ({"foo": 1}, TypeError),
        ({"content-length": "5"}, TypeError),
        ({"content-length": True}, TypeError),
        ({"content-length": -1}, ValueError),
        ({"transfer-encoding": "gzip"}, ValueError),
        ({"range": 7}, TypeError),
    ]:
        req = Request(method="PUT", headers=headers)
        with pytest.raises(exc):
            run((200, "OK", {}, None), req)


def test_Validator_accepts_Range_and_ContentRange_values() -> None:
    req = Request(headers={"range": FakeRange(0, 5)})
    response = (
        206,
        "Partial Content",
        {"content-range": FakeContentRange(0, 5, 9)},
        None,
    )
    assert run(response, req) is response
    req = Request(headers={"range": "bytes=0-4"})
    assert run((200, "OK", {"content-range": "bytes 0-4/9"}, None), req)


def test_Validator_checks_request_body() -> None:
    with pytest.raises(ValueError) as e:
        run((200, "OK", {}, None), Request(headers={"content-length": 0}))
    assert (
        str(e.value) == "request.body is None, but 'content-length' in request.headers"
    )
    with pytest.raises(ValueError):
        run(
            (200, "OK", {}, None),
            Request(body=FakeBody(3), headers={"content-length": 3}),
        )
    ok = Request(method="PUT", body=FakeBody(3), headers={"content-length": 3})
    assert run((200, "OK", {}, None), ok)
    with pytest.raises(ValueError):
        run(
            (200, "OK", {}, None),
            Request(method="PUT", body=FakeBody(3), headers={"content-length": 4}),
        )
    with pytest.raises(ValueError):
        run(
            (200, "OK", {}, None),
            Request(
                method="PUT", body=FakeBody(3, state=1), headers={"content-length": 3}
            ),
        )
    ok = Request(
        method="POST", body=FakeChunkedBody(), headers={"transfer-encoding": "chunked"}
    )
    assert run((200, "OK", {}, None), ok)
    with pytest.raises(ValueError):
        run(
            (200, "OK", {}, None),
            Request(method="POST", body=FakeChunkedBody(), headers={}),
        )
    with pytest.raises(TypeError):
        run(
            (200, "OK", {}, None),
            Request(method="POST", body=b"abc", headers={"content-length": 3}),
        )


def test_Validator_requires_request_body_consumed() -> None:
    def lazy(session: Any, request: Any, api: Any) -> Any:
        return (200, "OK", {}, None)

    body = FakeBody(3)
    req = Request(method="PUT", body=body, headers={"content-length": 3})
    with pytest.raises(ValueError) as e:
        rgi.Validator(lazy)(Session(), req, API)
    assert str(e.value) == f"request body not consumed: {body!r}"


def test_Validator_checks_response_shape() -> None:
    with pytest.raises(TypeError):
        run([200, "OK", {}, None])
    with pytest.raises(ValueError) as e:
        run((200, "OK", {}))
    assert str(e.value) == "response: need a 4-tuple; got a 3-tuple"
    with pytest.raises(TypeError):
        run((200.0, "OK", {}, None))
    for status in (99, 600):
        with pytest.raises(ValueError) as e:
            run((status, "OK", {}, None))
        assert str(e.value) == f"need 100 <= response.status <= 599; got {status}"
    assert run((100, "Continue", {}, None)) and run((599, "X", {}, None))
    with pytest.raises(ValueError):
        run((200, "", {}, None))
    with pytest.raises(TypeError):
        run((200, b"OK", {}, None))
    with pytest.raises(ValueError):
        run((200, "OK", {"Content-Type": "text/plain"}, None))


def test_Validator_accepts_Response_namedtuple() -> None:
    Response = collections.namedtuple("Response", "status reason headers body")
    response = Response(200, "OK", {}, None)
    assert run(response) is response


def test_Validator_checks_HEAD_response() -> None:
    head = Request(method="HEAD")
    assert run((200, "OK", {"content-length": 5}, None), head)
    assert run((200, "OK", {"transfer-encoding": "chunked"}, None), head)
    with pytest.raises(ValueError):
        run((200, "OK", {}, None), head)
    with pytest.raises(TypeError) as e:
        run((200, "OK", {"content-length": 3}, b"abc"), head)
    assert str(e.value) == (
        "request method is HEAD, but response body is not None: <class 'bytes'>"
    )


def test_Validator_checks_length_response_bodies() -> None:
    assert run((200, "OK", {}, b"abc"))
    assert run((200, "OK", {"content-length": 3}, bytearray(b"abc")))
    with pytest.raises(ValueError):
        run((200, "OK", {"content-length": 4}, b"abc"))
    with pytest.raises(ValueError):
        run((200, "OK", {"transfer-encoding": "chunked"}, b"abc"))
    with pytest.raises(ValueError):
        run((200, "OK", {"content-length": 3}, None))
    for cls in (FakeBody, FakeBodyIter):
        assert run((200, "OK", {"content-length": 3}, cls(3)))
        assert run((200, "OK", {}, cls(3)))
        with pytest.raises(ValueError):
            run((200, "OK", {"content-length": 4}, cls(3)))
        with pytest.raises(ValueError):
            run((200, "OK", {}, cls(3, state=2)))
        body = cls(3)
        body.chunked = True  # type: ignore[misc]
        with pytest.raises(ValueError):
            run((200, "OK", {}, body))


def test_Validator_checks_chunked_response_bodies() -> None:
    for cls in (FakeChunkedBody, FakeChunkedBodyIter):
        assert run((200, "OK", {"transfer-encoding": "chunked"}, cls()))
        assert run((200, "OK", {}, cls()))
        with pytest.raises(ValueError):
            run((200, "OK", {"content-length": 3}, cls()))
        with pytest.raises(ValueError):
            run((200, "OK", {}, cls(state=1)))
        body = cls()
        body.content_length = 3  # type: ignore[attr-defined]
        with pytest.raises(ValueError):
            run((200, "OK", {}, body))


def test_Validator_rejects_other_response_bodies() -> None:
    with pytest.raises(TypeError) as e:
        run((200, "OK", {}, "text"))
    assert (
        str(e.value) == "response.body: bad response body type: <class 'str'>: 'text'"
    )


def test_Validator_reports_missing_api_attribute() -> None:
    with pytest.raises(ValueError) as e:
        rgi.Validator(returning((200, "OK", {}, FakeBody(1))))(
            Session(), Request(), object()
        )
    assert str(e.value) == "bodies: 'object' object has no attribute 'Body'"


# --- with Degu's own objects ----------------------------


def test_Validator_accepts_what_Degu_produces() -> None:
    from degu.base import Range, Request, Session, api

    body_iter = api.BodyIter([b"ab", b"c"], 3)
    chunked_iter = api.ChunkedBodyIter([(None, b"x"), (None, b"")])
    assert body_iter.chunked is False and chunked_iter.chunked is True
    req = Request("GET", "/f", {"range": Range(0, 3)}, None, [], ["f"], None)
    for response in [
        (
            206,
            "Partial Content",
            {"content-range": api.ContentRange(0, 3, 9)},
            body_iter,
        ),
        (200, "OK", {"transfer-encoding": "chunked"}, chunked_iter),
        (200, "OK", {}, api.Body(io.BytesIO(b"abc"), 3)),
    ]:
        v = rgi.Validator(returning(response))
        assert v(Session(("::1", 1, 0, 0)), req, api) is response


def test_Validator_in_front_of_a_real_server() -> None:
    import threading

    from degu.client import Client
    from degu.server import Server

    def app(session: Any, request: Any, api: Any) -> Any:
        data = request.body.read() if request.body is not None else b""
        return (200, "OK", {}, api.BodyIter([data[::-1]], len(data)))

    server = Server(("127.0.0.1", 0), rgi.Validator(app))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Client(server.address).connect() as conn:
            assert conn.put("/x?y", {}, b"hello").body.read() == b"olleh"
            chunks = [(None, b"ab"), (None, b"")]
            r = conn.post("/", {}, conn.api.ChunkedBodyIter(chunks))
            assert r.body.read() == b"ba"
    finally:
        server.shutdown(5)
        thread.join(10)


@pytest.mark.parametrize(
    ("uri", "mount", "path", "query"),
    [
        ("/my%20file", [], ["my file"], None),
        ("/a/%C3%A9?x=%20", ["a"], ["é"], "x=%20"),
        ("/a%25b", [], ["a%b"], None),
    ],
)
def test_Validator_accepts_percent_decoded_paths(
    uri: str, mount: Any, path: Any, query: Any
) -> None:
    """docs/explanation/rgi.rst: mount + path are the decoded segments of uri."""
    req = Request(uri=uri, mount=mount, path=path, query=query)
    assert run((200, "OK", {}, None), req)


def test_Validator_refuses_an_undecoded_or_wrongly_decoded_path() -> None:
    with pytest.raises(ValueError, match="request.uri '/my%20file' != mount"):
        run((200, "OK", {}, None), Request(uri="/my%20file", path=["my%20file"]))
    with pytest.raises(ValueError, match="path is not UTF-8"):
        run((200, "OK", {}, None), Request(uri="/%ff", path=["x"]))


@pytest.mark.parametrize("method", ["OPTIONS", "PATCH"])
def test_Validator_accepts_OPTIONS_and_PATCH(method: str) -> None:
    assert run((200, "OK", {}, None), Request(method=method))


def test_Validator_accepts_a_PATCH_body_and_refuses_an_OPTIONS_body() -> None:
    from degu.base import Body, api

    body = Body(io.BytesIO(b"abc"), 3)
    req = Request("PATCH", headers={"content-length": 3}, body=body)
    v = rgi.Validator(returning((200, "OK", {}, None)))
    assert v(Session(), req, api)
    body = Body(io.BytesIO(b"abc"), 3)
    req = Request("OPTIONS", headers={"content-length": 3}, body=body)
    with pytest.raises(ValueError, match="request.method is 'OPTIONS', but"):
        v(Session(), req, api)


def test_Validator_accepts_every_single_range_form_from_api() -> None:
    from degu.base import OpenRange, SuffixRange, api

    v = rgi.Validator(returning((200, "OK", {}, None)))
    for rng in (OpenRange(3), SuffixRange(3)):
        assert v(Session(), Request(headers={"range": rng}), api)
    # An older api without the one-sided forms admits only its Range.
    with pytest.raises(TypeError):
        run((200, "OK", {}, None), Request(headers={"range": OpenRange(3)}))


def test_Validator_accepts_a_HEAD_304_without_a_length() -> None:
    """RFC 9110 §8.6: a 304 has no content for a length to describe."""
    req = Request(method="HEAD")
    assert run((304, "Not Modified", {"etag": '"x"'}, None), req)
    assert run((204, "No Content", {}, None), req)
    with pytest.raises(ValueError, match="^response to HEAD: need"):
        run((200, "OK", {}, None), req)


def test_Validator_accepts_content_length_0_with_a_None_body() -> None:
    """The RGI page asks bodiless answers on kept connections to say length 0."""
    assert run((404, "Not Found", {"content-length": 0}, None))
    with pytest.raises(ValueError, match="^response.body is None, but 'content-le"):
        run((404, "Not Found", {"content-length": 1}, None))
