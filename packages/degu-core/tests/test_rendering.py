"""Tests of degu._rendering: preambles, limits, stricter outgoing validation."""

from __future__ import annotations

from typing import Any

import pytest

from degu._limits import BUF_LEN, MAX_IO_SIZE
from degu._rendering import (
    render_chunk,
    render_error_response,
    render_request,
    render_response,
)
from degu.base import ContentRange, Range


def test_render_request_sorts_headers() -> None:
    out = render_request("GET", "/foo?x=1", {"b": "2", "a": 1, "c": Range(0, 5)})
    assert out == b"GET /foo?x=1 HTTP/1.1\r\na: 1\r\nb: 2\r\nc: bytes=0-4\r\n\r\n"


def test_render_response() -> None:
    assert render_response(200, "OK", {}) == b"HTTP/1.1 200 OK\r\n\r\n"
    out = render_response(
        206, "Partial Content", {"content-range": ContentRange(0, 5, 9)}
    )
    assert out == b"HTTP/1.1 206 Partial Content\r\ncontent-range: bytes 0-4/9\r\n\r\n"


def test_render_error_response_is_exact() -> None:
    assert render_error_response(431) == (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"connection: close\r\ncontent-length: 0\r\n\r\n"
    )


def test_render_header_count_edge() -> None:
    headers = {f"h{i}": "v" for i in range(20)}
    assert render_request("GET", "/", headers).count(b"\r\n") == 22
    headers["h20"] = "v"
    with pytest.raises(ValueError) as info:
        render_request("GET", "/", headers)
    assert str(info.value) == "need len(headers) <= 20; got 21"


def test_render_output_size_edge() -> None:
    first = len(b"HTTP/1.1 200 OK\r\nx: \r\n\r\n")
    ok = render_response(200, "OK", {"x": "v" * (BUF_LEN - first)})
    assert len(ok) == BUF_LEN
    with pytest.raises(ValueError) as info:
        render_response(200, "OK", {"x": "v" * (BUF_LEN - first + 1)})
    assert str(info.value) == "output size exceeds 32768"


@pytest.mark.parametrize(
    ("key", "exc", "msg"),
    [
        ("Foo", ValueError, "bad key: 'Foo'"),
        ("", ValueError, "bad key: ''"),
        ("a_b", ValueError, "bad key: 'a_b'"),
        ("a\nb", ValueError, "bad key: 'a\\nb'"),
        ("é", ValueError, "bad key: 'é'"),
        ("a" * 33, ValueError, f"key is too long: {'a' * 33!r}"),
        (b"foo", TypeError, "key: need a <class 'str'>; got a <class 'bytes'>: b'foo'"),
    ],
)
def test_render_rejects_keys(key: Any, exc: Any, msg: str) -> None:
    with pytest.raises(exc) as info:
        render_request("GET", "/", {key: "v"})
    assert str(info.value) == msg


def test_render_key_length_edge() -> None:
    assert render_request("GET", "/", {"a" * 32: "v"}).endswith(
        b"a" * 32 + b": v\r\n\r\n"
    )


@pytest.mark.parametrize(
    "value", ["", "a\r\nb: c", "a\x00", "a\x7f", "é", "\t", " a", "a ", " "]
)
def test_render_rejects_values(value: str) -> None:
    with pytest.raises(ValueError) as info:
        render_response(200, "OK", {"x": value})
    assert str(info.value) == f"bad val: {value!r}"


def test_render_rejects_method_uri_reason() -> None:
    with pytest.raises(ValueError, match="^bad method: 'GE\\\\nT'$"):
        render_request("GE\nT", "/", {})
    for uri in ["", "/a b", "/a\r\n", "/é"]:
        with pytest.raises(ValueError, match="^bad uri: "):
            render_request("GET", uri, {})


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("a", "target does not start with '/'"),
        ("*", "target does not start with '/'"),
        ("http://example.com/", "target does not start with '/'"),
        ("/a#frag", "bad bytes in path"),
        ("/a%2", "bad percent-encoding in path"),
        ("/a?%zz", "bad percent-encoding in query"),
        ("/a{b}", "bad bytes in path"),
    ],
)
def test_render_request_refuses_a_target_our_server_would_refuse(
    uri: str, why: str
) -> None:
    with pytest.raises(ValueError) as info:
        render_request("GET", uri, {})
    assert str(info.value).startswith(f"bad uri: {uri!r} ({why}")


def test_render_request_accepts_every_origin_form_character() -> None:
    uri = "/a-._~!$&'()*+,;=:@%20/b?c/d?e=%2F"
    assert render_request("GET", uri, {}) == f"GET {uri} HTTP/1.1\r\n\r\n".encode()
    for reason in ["", "O\rK", "Ok\x7f", b"OK"]:
        with pytest.raises(ValueError, match="^bad reason: "):
            render_response(200, reason, {})  # type: ignore[arg-type]


def test_render_response_status_checks() -> None:
    with pytest.raises(TypeError) as info:
        render_response(True, "OK", {})
    assert str(info.value) == "status: need a <class 'int'>; got a <class 'bool'>: True"
    for status in (99, 600):
        with pytest.raises(ValueError) as vinfo:
            render_response(status, "OK", {})
        assert str(vinfo.value) == f"need 100 <= status <= 599; got {status}"


def test_render_headers_must_be_dict() -> None:
    with pytest.raises(TypeError) as info:
        render_request("GET", "/", [])  # type: ignore[arg-type]
    assert str(info.value) == "headers: need a <class 'dict'>; got a <class 'list'>: []"


def test_render_chunk() -> None:
    assert render_chunk((None, b"hello")) == b"5\r\nhello\r\n"
    assert render_chunk((("k", "v"), b"")) == b"0;k=v\r\n\r\n"
    assert render_chunk((None, b"x" * 255)) == b"ff\r\n" + b"x" * 255 + b"\r\n"


@pytest.mark.parametrize(
    ("chunk", "exc", "msg"),
    [
        ([None, b""], TypeError, "chunk: need a <class 'tuple'>; got a <class 'list'>"),
        ((None,), ValueError, "chunk: need a 2-tuple; got a 1-tuple"),
        ((["k", "v"], b""), TypeError, "extension: need a <class 'tuple'>; got a <class 'list'>"),
        (("k",) and (("k", "v", "w"), b""), ValueError, "extension: need a 2-tuple; got a 3-tuple"),
        (((1, "v"), b""), TypeError, "key: need a <class 'str'>; got a <class 'int'>: 1"),
        ((("", "v"), b""), ValueError, "bad chunk extension key: ''"),
        ((("k", "v\r\n"), b""), ValueError, "bad chunk extension value: 'v\\r\\n'"),
        ((("k", "a=b"), b""), ValueError, "bad chunk extension value: 'a=b'"),
        ((None, "x"), TypeError, "data: need a <class 'bytes'>; got a <class 'str'>: 'x'"),
        ((None, bytearray(b"x")), TypeError,
         "data: need a <class 'bytes'>; got a <class 'bytearray'>: bytearray(b'x')"),
    ],
)  # fmt: skip
def test_render_chunk_rejects(chunk: Any, exc: Any, msg: str) -> None:
    with pytest.raises(exc) as info:
        render_chunk(chunk)
    assert str(info.value) == msg


def test_render_chunk_size_edge() -> None:
    data = b"x" * MAX_IO_SIZE
    assert render_chunk((None, data)).startswith(b"1000000\r\n")
    with pytest.raises(ValueError) as info:
        render_chunk((None, data + b"x"))
    assert str(info.value) == f"need len(data) <= {MAX_IO_SIZE}; got {MAX_IO_SIZE + 1}"


def test_set_output_framing_needs_an_exact_dict() -> None:
    # docs/explanation/wire.rst: headers is an exact dict (TYPE_ERROR) for every body type.
    from degu._bodies import set_output_framing

    for headers in (None, [], ()):
        with pytest.raises(TypeError) as info:
            set_output_framing(headers, b"x")  # type: ignore[arg-type]
        assert str(info.value) == (
            f"headers: need a {dict!r}; got a {type(headers)!r}: {headers!r}"
        )


def test_render_refuses_a_str_subclass_key_equal_to_a_known_name() -> None:
    # docs/explanation/wire.rst: names are exact str, also once a name has been seen;
    # a subclass could otherwise smuggle a CRLF in through __format__.
    class Sneaky(str):
        def __format__(self, spec: str) -> str:
            return "x-a: 1\r\nevil"

    assert render_response(200, "OK", {"x-a": "1"}).endswith(b"x-a: 1\r\n\r\n")
    with pytest.raises(TypeError) as info:
        render_response(200, "OK", {Sneaky("x-a"): "1"})
    assert str(info.value) == (f"key: need a {str!r}; got a {Sneaky!r}: 'x-a'")


def test_render_response_repeat_returns_the_same_bytes() -> None:
    headers = {"content-length": 12, "x-b": "2", "x-a": "1"}
    first = render_response(200, "OK", headers)
    assert first == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\nx-a: 1\r\nx-b: 2\r\n\r\n"
    )
    assert render_response(200, "OK", dict(headers)) == first
    # Equal keys render equal bytes; anything different renders anew.
    assert render_response(200, "OK", {**headers, "x-a": "3"}).endswith(
        b"x-a: 3\r\nx-b: 2\r\n\r\n"
    )
    assert render_response(201, "OK", headers).startswith(b"HTTP/1.1 201 OK\r\n")
    assert render_response(200, "OK", {"content-length": "12"}) == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n"
    )


def test_render_response_repeat_still_refuses_bad_values() -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="^bad val: 'a\\\\r\\\\nb'$"):
            render_response(200, "OK", {"x": "a\r\nb"})
        with pytest.raises(ValueError, match="^bad reason: 'O\\\\nK'$"):
            render_response(200, "O\nK", {})
        with pytest.raises(ValueError, match="^need 100 <= status <= 599; got 600$"):
            render_response(600, "OK", {})


def test_render_response_subclasses_equal_to_a_known_preamble_are_checked() -> None:
    # docs/explanation/wire.rst: a remembered preamble is only reused for
    # exact str and int parts; a subclass equal to one (with any __eq__ and
    # __hash__ it likes) meets the same checks as the first time.
    class Sneaky(str):
        def __format__(self, spec: str) -> str:
            return "OK\r\nx-evil: 1"

        def __eq__(self, other: object) -> bool:
            return True

        def __hash__(self) -> int:
            return hash("OK")

    class Status(int):
        def __format__(self, spec: str) -> str:
            return "200 OK\r\nx-evil: 1\r\n"

    known = render_response(200, "OK", {"x-a": "1"})
    assert render_response(200, "OK", {"x-a": "1"}) == known
    with pytest.raises(ValueError, match="^bad reason: 'OK'$"):
        render_response(200, Sneaky("OK"), {"x-a": "1"})
    with pytest.raises(TypeError, match="^status: need a <class 'int'>"):
        render_response(Status(200), "OK", {"x-a": "1"})
    with pytest.raises(TypeError, match="^key: need a <class 'str'>"):
        render_response(200, "OK", {Sneaky("x-a"): "1"})
    # A value that is not exact str is rendered through str(), as ever.
    out = render_response(200, "OK", {"x-a": Sneaky("1")})
    assert out == b"HTTP/1.1 200 OK\r\nx-a: 1\r\n\r\n"
    assert render_response(200, "OK", {"x-a": True}).endswith(b"x-a: True\r\n\r\n")


def test_render_response_cache_is_bounded() -> None:
    from degu import _rendering

    for i in range(_rendering.RESPONSE_CACHE_SIZE + 5):
        render_response(200, "OK", {"content-length": i})
    many = {f"x-{i}": "1" for i in range(_rendering.RESPONSE_CACHE_HEADERS + 1)}
    render_response(200, "OK", many)
    long = "v" * _rendering.RESPONSE_CACHE_MAX_LEN
    assert render_response(200, "OK", {"x": long}).endswith(b"\r\n\r\n")
    assert len(_rendering._responses) <= _rendering.RESPONSE_CACHE_SIZE
    for key, out in _rendering._responses.items():
        assert len(key) <= 2 + _rendering.RESPONSE_CACHE_HEADERS
        assert len(out) <= _rendering.RESPONSE_CACHE_MAX_LEN
