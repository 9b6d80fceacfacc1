"""Tests for degu.misc: request/URI builders, wire helpers, RequestLogger."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
import time
from typing import Any

import pytest

from degu import misc
from degu.base import Range, Request, Session, api


def test_reexports_come_from_their_owner_modules() -> None:
    from degu import _processes, _temppki

    assert misc.TempServer is _processes.TempServer
    assert misc.TempSSLServer is _processes.TempSSLServer
    assert misc.TempPKI is _temppki.TempPKI


@pytest.mark.parametrize(
    ("args", "query", "uri"),
    [
        ((), None, "/"),
        ((), "", "/?"),
        (("foo",), None, "/foo"),
        (("foo",), "", "/foo?"),
        (("foo", ""), None, "/foo/"),
        (("foo", "bar"), "k=v&x=y", "/foo/bar?k=v&x=y"),
    ],
)
def test_mkuri(args: tuple[str, ...], query: str | None, uri: str) -> None:
    assert misc.mkuri(*args, query=query) == uri


def test_mkreq_splits_like_the_server() -> None:
    r = misc.mkreq("GET", "/")
    assert type(r) is Request
    assert (r.method, r.uri, r.headers, r.body) == ("GET", "/", {}, None)
    assert (r.mount, r.path, r.query) == ([], [], None)
    r = misc.mkreq("GET", "/foo/bar/?k=v?w")
    assert (r.mount, r.path, r.query) == ([], ["foo", "bar", ""], "k=v?w")
    r = misc.mkreq("GET", "/foo?")
    assert (r.path, r.query) == (["foo"], "")
    assert r.build_proxy_uri() == "/foo?"


def test_mkreq_decodes_path_components_like_the_server() -> None:
    r = misc.mkreq("GET", "/a/my%20f%C3%A9?x=%20", shift=1)
    assert (r.uri, r.mount, r.path, r.query) == (
        "/a/my%20f%C3%A9?x=%20",
        ["a"],
        ["my fé"],
        "x=%20",
    )
    for bad in ("/%2f", "/%", "/%ff", "/%2e%2e"):
        with pytest.raises(ValueError):
            misc.mkreq("GET", bad)


def test_mkreq_headers_default_is_a_new_dict() -> None:
    a, b = misc.mkreq("GET", "/"), misc.mkreq("GET", "/")
    assert a.headers == {} and a.headers is not b.headers
    headers = {"x": "y"}
    body = object()
    r = misc.mkreq("PUT", "/", headers, body)
    assert r.headers is headers and r.body is body


def test_mkreq_shift() -> None:
    r = misc.mkreq("GET", "/a/b/c", shift=2)
    assert (r.mount, r.path) == (["a", "b"], ["c"])
    r = misc.mkreq("GET", "/a/b/c", shift=3)
    assert (r.mount, r.path) == (["a", "b", "c"], [])
    with pytest.raises(ValueError) as e:
        misc.mkreq("GET", "/a/b/c", shift=4)
    assert str(e.value) == "need 0 <= shift <= 3; got 4"
    with pytest.raises(ValueError):
        misc.mkreq("GET", "/a", shift=-1)
    with pytest.raises(TypeError):
        misc.mkreq("GET", "/a", shift=True)


def test_mkreq_cls_and_Request_validation() -> None:
    calls: list[tuple[Any, ...]] = []

    def cls(*args: Any) -> str:
        calls.append(args)
        return "made"

    assert misc.mkreq("GET", "/x?q", cls=cls) == "made"
    assert calls == [("GET", "/x?q", {}, None, [], ["x"], "q")]
    with pytest.raises(ValueError):
        misc.mkreq("TRACE", "/")


def test_format_headers() -> None:
    assert misc.format_headers({}) == b""
    assert misc.format_headers({"One": "two", "FOO": "bar"}) == b"FOO: bar\r\nOne: two"
    assert misc.format_headers({"content-length": 17}) == b"content-length: 17"
    # No validation: tests may build bad input on purpose.
    assert misc.format_headers({"a b": "c\r\nd"}) == b"a b: c\r\nd"


def test_format_request_and_response() -> None:
    assert misc.format_request("GET", "/foo", {}) == b"GET /foo HTTP/1.1"
    assert misc.format_request("PUT", "/", {"b": 2, "a": "1"}) == (
        b"PUT / HTTP/1.1\r\na: 1\r\nb: 2"
    )
    assert misc.format_response(200, "OK", {}) == b"HTTP/1.1 200 OK"
    assert misc.format_response(404, "Not Found", {"x": "y"}) == (
        b"HTTP/1.1 404 Not Found\r\nx: y"
    )


def test_parse_headers() -> None:
    assert misc.parse_headers(b"") == {}
    src = misc.format_headers({"Content-Length": 17, "X-Foo": "bar"})
    assert misc.parse_headers(src) == {"content-length": 17, "x-foo": "bar"}
    assert misc.parse_headers(b"Range: bytes=0-9") == {"range": Range(0, 10)}
    with pytest.raises(ValueError):
        misc.parse_headers(b"Range: bytes=0-9", isresponse=True)
    got = misc.parse_headers(b"Content-Range: bytes 0-9/20", isresponse=True)
    assert str(got["content-range"]) == "bytes 0-9/20"
    with pytest.raises(ValueError):
        misc.parse_headers(b"Content-Range: bytes 0-9/20")
    with pytest.raises(ValueError) as e:
        misc.parse_headers(b"Foo: bar\r\nfoo: baz")
    assert str(e.value).startswith("duplicate header: ")


def test_parse_headers_isresponse_must_be_bool() -> None:
    with pytest.raises(TypeError) as e:
        misc.parse_headers(b"", isresponse=1)  # type: ignore[arg-type]
    assert str(e.value) == "isresponse: need a <class 'bool'>; got a <class 'int'>: 1"


def test_write_chunk() -> None:
    out = io.BytesIO()
    assert misc.write_chunk(out, (None, b"hello")) == 10
    assert misc.write_chunk(out, (("k", "v"), b"")) == 9
    assert out.getvalue() == b"5\r\nhello\r\n0;k=v\r\n\r\n"
    with pytest.raises(TypeError):
        misc.write_chunk(io.BytesIO(), [None, b""])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        misc.write_chunk(io.BytesIO(), (None, "text"))


def test_write_chunk_loops_over_short_writes() -> None:
    class Trickle:
        def __init__(self) -> None:
            self.data = b""

        def write(self, buf: Any) -> int:
            self.data += bytes(buf[:2])
            return min(2, len(buf))

    t = Trickle()
    assert misc.write_chunk(t, (None, b"abcdefghij")) == 15
    assert t.data == b"a\r\nabcdefghij\r\n"


def test_write_chunk_rejects_bad_write_counts() -> None:
    class Zero:
        def write(self, buf: Any) -> int:
            return 0

    class Over:
        def write(self, buf: Any) -> int:
            return len(buf) + 1

    for wfile in (Zero(), Over()):
        with pytest.raises(ValueError):
            misc.write_chunk(wfile, (None, b"x"))


def test_RequestLogger_logs_and_passes_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from degu.base import Session, api

    response = (404, "Not Found", {}, None)

    def app(session: Any, request: Any, api: Any) -> Any:
        return response

    logger = misc.RequestLogger(app)
    assert logger.app is app
    assert not hasattr(logger, "on_connect")
    with caplog.at_level(logging.INFO, logger="degu.misc"):
        got = logger(Session(("127.0.0.1", 1)), misc.mkreq("GET", "/a?b"), api)
    assert got is response
    assert [r.getMessage() for r in caplog.records] == [
        "[0] GET /a?b --> 404 Not Found"
    ]
    assert caplog.records[0].name == "degu.misc"


def test_RequestLogger_forwards_on_connect() -> None:
    class App:
        def __call__(self, *args: Any) -> Any:
            return None

        def on_connect(self, session: Any, sock: Any) -> bool:
            return True

    app = App()
    assert misc.RequestLogger(app).on_connect == app.on_connect
    with pytest.raises(TypeError):
        misc.RequestLogger(None)  # type: ignore[arg-type]


def hello(session: Any, request: Any, api: Any) -> Any:
    return (200, "OK", {}, b"hi " + request.uri.encode())


def test_TempServer_with_RequestLogger_serves_over_loopback() -> None:
    from degu.client import Client

    with misc.TempServer(("127.0.0.1", 0), misc.RequestLogger(hello)) as server:
        with Client(server.address).connect() as conn:
            r = conn.get(misc.mkuri("a", query="b"), {})
            assert (r.status, r.body.read()) == (200, b"hi /a?b")
    assert server.process.exitcode is not None


# --- format_access_line and AccessLogger -------------------------------------

CLF_LINE = re.compile(
    r'^(\S+) - - \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "(.*)" (\S+) (\S+)$'
)


def test_format_access_line_is_common_log_format() -> None:
    line = misc.format_access_line(("127.0.0.1", 5), "GET", "/a?b=c", 200, 42)
    m = CLF_LINE.match(line)
    assert m is not None
    assert (m[1], m[3], m[4], m[5]) == ("127.0.0.1", "GET /a?b=c HTTP/1.1", "200", "42")


def test_format_access_line_writes_when_in_local_time_with_offset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        line = misc.format_access_line(("::1", 1, 0, 0), "PUT", "/", 201, 0, when=0)
        assert line == '::1 - - [01/Jan/1970:00:00:00 +0000] "PUT / HTTP/1.1" 201 0'
        monkeypatch.setenv("TZ", "EST+5")
        time.tzset()
        line = misc.format_access_line(("::1", 1, 0, 0), "PUT", "/", 201, 0, when=0)
        assert "[31/Dec/1969:19:00:00 -0500]" in line
    finally:
        monkeypatch.undo()
        time.tzset()


def test_format_access_line_dashes_for_what_is_unknown() -> None:
    line = misc.format_access_line("/run/x.sock", None, None, None, None, when=0.0)
    assert line.startswith("- - - [")
    assert line.endswith('] "-" - -')
    line = misc.format_access_line(b"\0abstract", "GET", None, 400, None, when=0.0)
    assert line.endswith('] "-" 400 -')


def test_format_access_line_escapes_what_could_forge_a_line() -> None:
    line = misc.format_access_line(
        ("10.0.0.1", 1), 'GE"T', "/a\nb\\c\u00e9", 200, 1, when=0.0
    )
    assert "\n" not in line
    assert '"GE\\"T /a\\x0ab\\\\c\\xc3\\xa9 HTTP/1.1"' in line


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"status": 99}, ValueError, "status: need 100 <= status <= 999; got 99"),
        (
            {"status": True},
            TypeError,
            "status: need a <class 'int'> or None; got a <class 'bool'>: True",
        ),
        ({"size": -1}, ValueError, "size: need size >= 0; got -1"),
        (
            {"size": "12"},
            TypeError,
            "size: need a <class 'int'> or None; got a <class 'str'>: '12'",
        ),
        (
            {"method": b"GET"},
            TypeError,
            "method: need a <class 'str'> or None; got a <class 'bytes'>: b'GET'",
        ),
        (
            {"uri": 1},
            TypeError,
            "uri: need a <class 'str'> or None; got a <class 'int'>: 1",
        ),
        ({"when": "now"}, TypeError, "when: need a <class 'float'> or None; got 'now'"),
    ],
)
def test_format_access_line_rejects_bad_values(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    args: dict[str, Any] = {
        "address": ("127.0.0.1", 1), "method": "GET", "uri": "/",
        "status": 200, "size": 0,
    }  # fmt: skip
    when = kwargs.pop("when", None)
    args.update(kwargs)
    with pytest.raises(error) as e:
        misc.format_access_line(**args, when=when)
    assert str(e.value) == message


def _accesslogged(app: Any, caplog: pytest.LogCaptureFixture, **kw: Any) -> str:
    logged = misc.AccessLogger(app, **kw)
    request = Request("GET", "/x", {}, None, [], ["x"], None)
    with caplog.at_level("INFO", logger="degu.access"):
        logged(Session(("127.0.0.1", 9)), request, api)
    return caplog.records[-1].getMessage()


def test_AccessLogger_logs_status_and_size(caplog: pytest.LogCaptureFixture) -> None:
    line = _accesslogged(lambda s, r, a: (201, "Created", {}, b"abc"), caplog)
    assert caplog.records[-1].name == "degu.access"
    assert line.endswith('"GET /x HTTP/1.1" 201 3')
    line = _accesslogged(
        lambda s, r, a: (200, "OK", {"content-length": 10}, object()), caplog
    )
    assert line.endswith(" 200 10")
    line = _accesslogged(lambda s, r, a: (204, "No Content", {}, None), caplog)
    assert line.endswith(" 204 -")
    line = _accesslogged(lambda s, r, a: None, caplog)  # malformed: server's job
    assert line.endswith('"GET /x HTTP/1.1" - -')


def test_AccessLogger_logs_500_when_the_app_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class App:
        def __call__(self, session: Any, request: Any, api: Any) -> Any:
            raise RuntimeError("boom")

        def on_connect(self, session: Any, sock: Any) -> bool:
            return True

    app = App()
    logged = misc.AccessLogger(app)
    assert logged.on_connect == app.on_connect
    assert repr(logged) == f"AccessLogger({app!r})"
    request = Request("GET", "/", {}, None, [], [], None)
    with caplog.at_level("INFO", logger="degu.access"), pytest.raises(RuntimeError):
        logged(Session(("::1", 5, 0, 0)), request, api)
    assert caplog.records[-1].getMessage().endswith('"GET / HTTP/1.1" 500 -')


def test_AccessLogger_uses_the_logger_given(caplog: pytest.LogCaptureFixture) -> None:
    mine = logging.getLogger("myapp.access")
    logged = misc.AccessLogger(lambda s, r, a: (200, "OK", {}, b""), mine)
    assert logged.logger is mine
    request = Request("GET", "/", {}, None, [], [], None)
    with caplog.at_level("INFO", logger="myapp.access"):
        logged(Session(("127.0.0.1", 9)), request, api)
    assert caplog.records[-1].name == "myapp.access"
    with caplog.at_level("WARNING", logger="myapp.access"):
        caplog.clear()
        logged(Session(("127.0.0.1", 9)), request, api)
    assert caplog.records == []


def test_AccessLogger_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError) as e:
        misc.AccessLogger(17)  # type: ignore[arg-type]
    assert str(e.value) == "app: not callable: 17"
    with pytest.raises(TypeError) as e:
        misc.AccessLogger(lambda s, r, a: None, "degu.access")  # type: ignore[arg-type]
    assert str(e.value).startswith(
        "logger: need a <class 'logging.Logger'>; got 'degu.access'"
    )


def test_importing_misc_leaves_the_test_helpers_for_later() -> None:
    """A program may import AccessLogger without multiprocessing or openssl helpers."""
    heavy = ["multiprocessing", "degu._processes", "degu._temppki", "degu.sslhelpers"]
    report = f"import sys; print(sorted(set({heavy!r}) & set(sys.modules)))\n"
    # Against a baseline from the same interpreter: coverage's subprocess
    # patch (nox tests session) loads multiprocessing by itself.
    before, after = (
        subprocess.run(
            [sys.executable, "-c", code + report],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
        for code in ("", "import degu.misc\n")
    )  # fmt: skip
    assert after == before
    lazy = subprocess.run(
        [sys.executable, "-c", "import sys, degu.misc; degu.misc.TempPKI\n" + report],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "degu._temppki" in lazy
    with pytest.raises(AttributeError) as e:
        misc.NoSuchThing  # noqa: B018
    assert str(e.value) == "module 'degu.misc' has no attribute 'NoSuchThing'"
