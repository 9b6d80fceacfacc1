"""Tests of degu._parsing: each preamble replayed whole, byte by byte, and
with trailing bytes (through degu._reader with a fake socket)."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from degu._errors import ParseError
from degu._limits import MAX_INCOMING_HEADERS, MAX_IO_SIZE, MAX_LENGTH
from degu._parsing import (
    CHUNKED,
    parse_chunk_line,
    parse_content_length,
    parse_content_range,
    parse_framed_request,
    parse_framed_response,
    parse_headers,
    parse_range,
    parse_request,
    parse_request_line,
    parse_response,
    parse_response_line,
    request_body_framing,
    response_body_framing,
)
from degu._reader import Reader
from degu._rendering import render_request, render_response
from degu._stream import Budget, ObjectStream
from degu.base import ContentRange, OpenRange, Range, SuffixRange

TRAILER = b"PUT /next HTTP/1.1\r\n"


def replay(fake_socket: Any, raw: bytes, parse: Any) -> Any:
    """Parse *raw* (with its CRLFCRLF) three ways; all results must agree."""
    assert raw.endswith(b"\r\n\r\n")
    results = [parse(raw[:-4])]
    for sock, extra in [
        (fake_socket(raw), b""),
        (fake_socket(raw, split=1), b""),
        (fake_socket(raw + TRAILER), TRAILER),
    ]:
        reader = Reader(ObjectStream(sock))
        results.append(parse(reader.read_preamble("empty", Budget(5))))
        assert reader.buffered == len(extra)
    assert all(r == results[0] for r in results), results
    return results[0]


def replay_error(fake_socket: Any, raw: bytes, parse: Any, exc: Any, msg: str) -> None:
    with pytest.raises(exc) as info:
        parse(raw[:-4])
    assert str(info.value) == msg
    for sock in (fake_socket(raw, split=1), fake_socket(raw + TRAILER)):
        with pytest.raises(exc) as info:
            parse(Reader(ObjectStream(sock)).read_preamble("empty", Budget(5)))
        assert str(info.value) == msg


def test_parse_request_GET_with_headers(fake_socket: Any) -> None:
    raw = b"GET /foo/bar?k=v HTTP/1.1\r\nHost: example.com\r\nX-Thing: A b\r\n\r\n"
    assert replay(fake_socket, raw, parse_request) == (
        "GET",
        "/foo/bar?k=v",
        ["foo", "bar"],
        "k=v",
        {"host": "example.com", "x-thing": "A b"},
    )


@pytest.mark.parametrize(
    ("uri", "path", "query"),
    [
        ("/", [], None),
        ("/?", [], ""),
        ("/foo", ["foo"], None),
        ("/foo/", ["foo", ""], None),
        ("/foo?", ["foo"], ""),
        ("/foo?k=v&x=%20", ["foo"], "k=v&x=%20"),
        ("/a..b/./c", ["a..b", ".", "c"], None),
        ("/+.:_~-", ["+.:_~-"], None),
    ],
)
def test_parse_request_line_path_and_query(
    fake_socket: Any, uri: str, path: list[str], query: str | None
) -> None:
    raw = f"DELETE {uri} HTTP/1.1\r\n\r\n".encode()
    assert replay(fake_socket, raw, parse_request) == ("DELETE", uri, path, query, {})


@pytest.mark.parametrize(
    ("line", "msg"),
    [
        (b"GET / HTTP/1.", "request line too short: b'GET / HTTP/1.'"),
        (b"GET / HTTP/1.0", "bad protocol in request line: b' HTTP/1.0'"),
        (b"GET /foo HTTP/2.0", "bad protocol in request line: b' HTTP/2.0'"),
        (b"GET foo HTTP/1.1", "bad request line: b'GET foo HTTP/1.1'"),
        (b" /foo HTTP/1.1", "bad request line: b' /foo HTTP/1.1'"),
        (b"get /foo HTTP/1.1", "bad HTTP method: b'get'"),
        (b"TRACE /foo HTTP/1.1", "bad HTTP method: b'TRACE'"),
        (b"GET /f\x00o HTTP/1.1", "bad bytes in path: b'/f\\x00o'"),
        (b"GET /f#o HTTP/1.1", "bad bytes in path: b'/f#o'"),
        (b"GET /a?b#c HTTP/1.1", "bad bytes in query: b'b#c'"),
        (b"GET /a?b c HTTP/1.1", "bad bytes in query: b'b c'"),
        (b'GET /a"b HTTP/1.1', "bad bytes in path: b'/a\"b'"),
        (b"GET /a{b} HTTP/1.1", "bad bytes in path: b'/a{b}'"),
        (b"GET /caf\xc3\xa9 HTTP/1.1", "bad bytes in path: b'/caf\\xc3\\xa9'"),
        (b"GET //foo HTTP/1.1", "'//' in path: b'//foo'"),
        (b"GET /a//b HTTP/1.1", "'//' in path: b'/a//b'"),
        (b"GET /a/../b HTTP/1.1", "'..' in path: b'/a/../b'"),
        (b"GET /.. HTTP/1.1", "'..' in path: b'/..'"),
        (b"GET /a%2 HTTP/1.1", "bad percent-encoding in path: b'/a%2'"),
        (b"GET /a%zz HTTP/1.1", "bad percent-encoding in path: b'/a%zz'"),
        (b"GET /a% HTTP/1.1", "bad percent-encoding in path: b'/a%'"),
        (b"GET /a?%g1 HTTP/1.1", "bad percent-encoding in query: b'%g1'"),
        (b"GET /%2e%2e/x HTTP/1.1", "path segment decodes to '..': '%2e%2e'"),
        (b"GET /a%2fb HTTP/1.1", "path segment decodes to 'a/b': 'a%2fb'"),
        (b"GET /a%2Fb HTTP/1.1", "path segment decodes to 'a/b': 'a%2Fb'"),
        (b"GET /a%00 HTTP/1.1", "path segment decodes to a control: 'a%00'"),
        (b"GET /a%0d%0a HTTP/1.1", "path segment decodes to a control: 'a%0d%0a'"),
        (b"GET /%c0%ae%c0%ae HTTP/1.1", "path segment is not UTF-8: '%c0%ae%c0%ae'"),
        (b"GET /%c0%af HTTP/1.1", "path segment is not UTF-8: '%c0%af'"),
        (b"GET /%ff HTTP/1.1", "path segment is not UTF-8: '%ff'"),
        (b"GET /%ed%a0%80 HTTP/1.1", "path segment is not UTF-8: '%ed%a0%80'"),
    ],
)
def test_parse_request_line_rejects(fake_socket: Any, line: bytes, msg: str) -> None:
    replay_error(fake_socket, line + b"\r\n\r\n", parse_request, ValueError, msg)


def test_parse_request_line_minimum_length() -> None:
    assert parse_request_line(b"GET / HTTP/1.1") == ("GET", "/", [], None)


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"GET / HTTP/1.", 400),
        (b"TRACE / HTTP/1.1", 501),
        (b"get / HTTP/1.1", 501),
        (b"GET / HTTP/1.0", 505),
        (b"GET //x HTTP/1.1", 400),
        (b"GET /%2f HTTP/1.1", 400),
        (b"GET /% HTTP/1.1", 400),
    ],
)
def test_parse_request_line_errors_carry_their_status(line: bytes, status: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_request_line(line)
    assert info.value.status == status
    assert isinstance(info.value, ValueError)


def test_parse_content_length_error_carries_413_only_for_a_huge_number() -> None:
    with pytest.raises(ParseError) as info:
        parse_content_length(b"1" * 17)
    assert info.value.status == 413
    with pytest.raises(ParseError) as info:
        parse_content_length(b"x" * 17)
    assert info.value.status == 400


def test_ParseError_refuses_a_status_it_cannot_carry() -> None:
    with pytest.raises(ValueError, match=r"^status: need one of \[400, 413"):
        ParseError(404, "x")


def test_ParseError_survives_pickling() -> None:
    import pickle

    e = pickle.loads(pickle.dumps(ParseError(501, "bad HTTP method: b'X'")))
    assert (type(e), e.status, str(e)) == (ParseError, 501, "bad HTTP method: b'X'")


def test_parse_response(fake_socket: Any) -> None:
    raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    assert replay(fake_socket, raw, parse_response) == (
        404,
        "Not Found",
        {"content-length": 0},
    )


@pytest.mark.parametrize(
    ("line", "msg"),
    [
        (b"HTTP/1.1 200 O", "bad response line: b'HTTP/1.1 200 O'"),
        (b"HTTP/1.0 200 OK", "bad response line: b'HTTP/1.0 200 OK'"),
        (b"HTTP/1.1 200_OK", "bad response line: b'HTTP/1.1 200_OK'"),
        (b"HTTP/1.1 099 OK", "bad status: b'099'"),
        (b"HTTP/1.1 600 OK", "bad status: b'600'"),
        (b"HTTP/1.1 2x0 OK", "bad status: b'2x0'"),
        (b"HTTP/1.1 200 O.K", "bad reason: b'O.K'"),
        (b"HTTP/1.1 200 OK\t", "bad reason: b'OK\\t'"),
    ],
)
def test_parse_response_line_rejects(line: bytes, msg: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_response_line(line)
    assert str(info.value) == msg


@pytest.mark.parametrize("status", [100, 101, 200, 599])
def test_parse_response_line_status_edges(status: int) -> None:
    assert parse_response_line(b"HTTP/1.1 %d OK" % status) == (status, "OK")


def test_parse_headers_empty_and_casefolding() -> None:
    assert parse_headers(b"") == {}
    assert parse_headers(b"CONTENT-TYPE: text/plain") == {"content-type": "text/plain"}


@pytest.mark.parametrize(
    ("src", "msg"),
    [
        (b"a: ", "header line too short"),
        (b"abc:d", "bad header line"),
        (b"ab: ", "bad header line"),
        (b": abc", "bad header line"),
        (b"a:  ", "bad bytes in header value: b' '") if False else (b"a :b", "bad header line"),
        (b"a" * 33 + b": b", "header name too long: " + repr(b"a" * 32) + "..."),
        (b"a_b: c", "bad bytes in header name: b'a_b'"),
        (b"a: b\x00c", "bad bytes in header value: b'b\\x00c'"),
        (b"a: b\x7fc", "bad bytes in header value: b'b\\x7fc'"),
        (b"a: b\x0bc", "bad bytes in header value: b'b\\x0bc'"),
        (b"a: caf\xc3\xa9", "bad bytes in header value: b'caf\\xc3\\xa9'"),
        (b"a:  b", "whitespace around header value: b' b'"),
        (b"a: b ", "whitespace around header value: b'b '"),
        (b"a: \tb", "whitespace around header value: b'\\tb'"),
        (b"a: b\t", "whitespace around header value: b'b\\t'"),
        (b"a:   ", "whitespace around header value: b'  '"),
        (b"a: b\r\nA: c", "duplicate header: b'A: c'"),
        (b"content-length: 5\r\nContent-Length: 5", "duplicate header: b'Content-Length: 5'"),
        (b"content-length: 5\r\ntransfer-encoding: chunked",
         "cannot have both content-length and transfer-encoding headers"),
        (b"transfer-encoding: CHUNKED", "bad transfer-encoding: b'CHUNKED'"),
        (b"range: bytes=0-1\r\ncontent-length: 0",
         "cannot include range header and content-length"),
        (b"range: bytes=0-1\r\ntransfer-encoding: chunked",
         "cannot include range header and transfer-encoding"),
        (b"content-range: bytes 0-1/2", "request cannot include a 'content-range' header"),
        (b"a: b\r\n", "header line too short"),
    ],
)  # fmt: skip
def test_parse_headers_rejects(src: bytes, msg: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_headers(src)
    assert str(info.value) == msg


def test_parse_headers_range_only_in_requests() -> None:
    assert parse_headers(b"range: bytes=5-9") == {"range": Range(5, 10)}
    with pytest.raises(ValueError, match="response cannot include a 'range' header"):
        parse_headers(b"range: bytes=5-9", isresponse=True)
    assert parse_headers(b"content-range: bytes 5-9/10", isresponse=True) == {
        "content-range": ContentRange(5, 10, 10)
    }


def test_parse_headers_name_length_edge() -> None:
    assert parse_headers(b"a" * 32 + b": b") == {"a" * 32: "b"}


def test_parse_headers_all_allowed_value_bytes() -> None:
    value = (string.ascii_letters + string.digits + "-+.:_~%&=/? \"'()*,;<>[]").encode()
    assert parse_headers(b"x: " + value) == {"x": value.decode()}


def test_parse_headers_accepts_every_visible_ascii_byte_and_inner_tab() -> None:
    """RFC 9110 §5.5 field-vchar (VCHAR), with SP and HTAB inside the value."""
    visible = bytes(range(0x21, 0x7F))
    value = visible + b" \t" + visible
    assert parse_headers(b"x: " + value) == {"x": value.decode()}


@pytest.mark.parametrize(
    "line",
    [
        b'sec-ch-ua: "Not!A Brand";v="8", "Chromium";v="120"',
        b'cookie: a={"x":1}; b=$y',
        b"accept: text/html,application/xhtml+xml,*/*;q=0.8",
        b"user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        b'if-none-match: W/"abc", "def"',
        b"x-tab: a\tb",
        b"x-odd: `^|\\{}",
    ],
)
def test_parse_headers_accepts_what_browsers_send(line: bytes) -> None:
    name, _, value = line.partition(b": ")
    assert parse_headers(line) == {name.decode(): value.decode()}


def test_parse_headers_fast_path_still_refuses_padded_known_names() -> None:
    """A name seen before takes the fast path, which must check padding too."""
    assert parse_headers(b"host: a") == {"host": "a"}
    for bad in (b"host:  a", b"host: a ", b"host: a\t"):
        with pytest.raises(ParseError, match="^whitespace around header value"):
            parse_headers(bad)


@pytest.mark.parametrize(
    ("src", "msg"),
    [
        # A bare CR inside one line and a bare LF ending another: as many CRs
        # as LFs, so only the line-by-line check can tell.
        (b"host: a\rb\r\nx: c\nd: e", "bad bytes in header value: b'a\\rb'"),
        (b"content-length: \r1\r\nx: y\nz: w", "bad bytes in header value: b'\\r1'"),
        (b"\nhost: a\r", "bad bytes in header name: b'\\nhost'"),
        (b"host: a\nx: b", "bad bytes in header value: b'a\\nx: b'"),
        (b"host: a\r\nhost: b\r\nx: \rc\n", "duplicate header: b'host: b'"),
    ],
)
def test_parse_headers_hot_path_reports_the_first_fault_like_the_checked_path(
    src: bytes, msg: str
) -> None:
    """Names seen before take the hot path; its errors are still the checked ones."""
    parse_headers(b"host: a\r\nx: b\r\ncontent-length: 1")  # names now known
    with pytest.raises(ParseError) as info:
        parse_headers(src)
    assert (info.value.status, str(info.value)) == (400, msg)


def test_parse_headers_line_count_limit_edge() -> None:
    block = b"\r\n".join(b"x-h%d: v" % i for i in range(MAX_INCOMING_HEADERS))
    assert len(parse_headers(block)) == MAX_INCOMING_HEADERS
    with pytest.raises(ParseError) as info:
        parse_headers(block + b"\r\nx-last: v")
    assert info.value.status == 431


@pytest.mark.parametrize(
    ("src", "value"),
    [
        (b"0", 0),
        (b"1", 1),
        (b"9" * 16, MAX_LENGTH),
        (b"1234567890123456", 1234567890123456),
    ],
)
def test_parse_content_length_accepts(src: bytes, value: int) -> None:
    assert parse_content_length(src) == value


@pytest.mark.parametrize(
    ("src", "msg"),
    [
        (b"", "bad bytes in content-length: b''"),
        (b"01", "content-length has leading zero: b'01'"),
        (b"00", "content-length has leading zero: b'00'"),
        (b"+1", "bad bytes in content-length: b'+1'"),
        (b" 1", "bad bytes in content-length: b' 1'"),
        (b"1" * 17, f"content-length too long: {b'1' * 16!r}..."),
    ],
)
def test_parse_content_length_rejects(src: bytes, msg: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_content_length(src)
    assert str(info.value) == msg


def test_parse_range_edges() -> None:
    assert parse_range(b"bytes=0-0") == Range(0, 1)
    assert parse_range(b"bytes=0-9999999999999998") == Range(0, MAX_LENGTH)
    longest = b"bytes=9999999999999997-9999999999999998"
    assert len(longest) == 39
    assert parse_range(longest) == Range(MAX_LENGTH - 2, MAX_LENGTH)
    for bad in [
        b"bytes=0-9999999999999999",
        b"bytes=5-4",
        b"bytes=01-2",
        b"bytes=0-1 ",
        b"bytes=-",
        b"bytes=",
        b"bytes=1",
        b"bytes=--1",
        b"bytes=-01",
        b"bytes=9999999999999999-",
        b"bytes=-10000000000000000",
        b"bytes=0-1,",
        b"bytes=0-1,,3-4",
        b"bytes=0-1,5-4",
        b"bytes=0-1;3-4",
    ]:
        with pytest.raises(ParseError, match="^bad range: ") as info:
            parse_range(bad)
        assert info.value.status == 400


@pytest.mark.parametrize(
    ("src", "value"),
    [
        (b"bytes=0-", OpenRange(0)),
        (b"bytes=4-", OpenRange(4)),
        (b"bytes=9999999999999998-", OpenRange(MAX_LENGTH - 1)),
        (b"bytes=-2", SuffixRange(2)),
        (b"bytes=-0", SuffixRange(0)),
        (b"bytes=-9999999999999999", SuffixRange(MAX_LENGTH)),
        (b"Bytes=1-2", Range(1, 3)),
    ],
)
def test_parse_range_gives_every_single_range_form(src: bytes, value: Any) -> None:
    """RFC 9110 §14.1.2: int-range with or without last-pos, and suffix-range."""
    result = parse_range(src)
    assert type(result) is type(value) and result == value


@pytest.mark.parametrize(
    "src",
    [b"bytes=0-1,3-4", b"bytes=0-1, 3-4", b"bytes=0-, -5", b"bytes=1-1,\t1-1"],
)
def test_parse_range_passes_a_valid_range_list_as_str(src: bytes) -> None:
    assert parse_range(src) == src.decode()
    assert type(parse_range(src)) is str


def test_parse_range_passes_an_unknown_unit_as_str() -> None:
    """RFC 9110 §14.2: a range unit we do not know is ignored, not refused."""
    assert parse_range(b"items=0-5") == "items=0-5"


@pytest.mark.parametrize(
    ("method", "headers", "framing", "left"),
    [
        ("PATCH", {"content-length": 3}, 3, {"content-length": 3}),
        ("PATCH", {"transfer-encoding": "chunked"}, CHUNKED,
         {"transfer-encoding": "chunked"}),
        ("OPTIONS", {"content-length": 0}, None, {}),
        ("DELETE", {"content-length": 0}, None, {}),
        ("OPTIONS", {}, None, {}),
    ],
)  # fmt: skip
def test_request_body_framing_for_PATCH_OPTIONS_and_empty_DELETE(
    method: str, headers: dict[str, Any], framing: int | None, left: dict[str, Any]
) -> None:
    assert request_body_framing(method, headers) == framing
    assert headers == left


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("OPTIONS", {"content-length": 1}),
        ("OPTIONS", {"transfer-encoding": "chunked"}),
        ("DELETE", {"content-length": 1}),
        ("GET", {"content-length": 0}),
        ("HEAD", {"content-length": 0}),
    ],
)
def test_request_body_framing_refuses_a_body_where_none_belongs(
    method: str, headers: dict[str, Any]
) -> None:
    with pytest.raises(ParseError) as info:
        request_body_framing(method, headers)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("uri", "path", "query"),
    [
        ("/my%20file.txt", ["my file.txt"], None),
        ("/%C3%A9.txt", ["é.txt"], None),
        ("/%c3%a9/%2E", ["é", "."], None),
        ("/a%25b", ["a%b"], None),
        ("/a%3Fb?x=%2F", ["a?b"], "x=%2F"),
        ("/!$&'()*+,;=:@-._~", ["!$&'()*+,;=:@-._~"], None),
        ("/a?b?c/d", ["a"], "b?c/d"),
        ("/a?!$&'()*+,;=:@", ["a"], "!$&'()*+,;=:@"),
    ],
)
def test_parse_request_line_decodes_path_segments_and_keeps_uri_raw(
    fake_socket: Any, uri: str, path: list[str], query: str | None
) -> None:
    raw = f"GET {uri} HTTP/1.1\r\n\r\n".encode()
    assert replay(fake_socket, raw, parse_request) == ("GET", uri, path, query, {})


@pytest.mark.parametrize("method", ["OPTIONS", "PATCH"])
def test_parse_request_line_accepts_OPTIONS_and_PATCH(method: str) -> None:
    line = f"{method} /x HTTP/1.1".encode()
    assert parse_request_line(line) == (method, "/x", ["x"], None)


def test_parse_content_range_edges() -> None:
    assert parse_content_range(b"bytes 0-0/1") == ContentRange(0, 1, 1)
    top = b"bytes 9999999999999997-9999999999999998/9999999999999999"
    assert len(top) == 56
    assert parse_content_range(top) == ContentRange(
        MAX_LENGTH - 2, MAX_LENGTH, MAX_LENGTH
    )
    for bad in [
        b"bytes 0-1/1",
        b"bytes */",
        b"bytes */01",
        b"bytes */x",
        b"bytes 0-1/*",
        b"bytes 2-1/5",
        b"bytes=0-1/5",
    ]:
        with pytest.raises(ValueError, match="^bad content-range: "):
            parse_content_range(bad)


def test_parse_content_range_passes_the_unsatisfied_form_as_str() -> None:
    """RFC 9110 §14.4: a 416 says ``bytes */LENGTH``; a client must read it."""
    assert parse_content_range(b"bytes */10") == "bytes */10"
    assert parse_content_range(b"bytes */0") == "bytes */0"
    headers = parse_headers(b"content-range: bytes */5", isresponse=True)
    assert headers == {"content-range": "bytes */5"}


def test_request_body_framing() -> None:
    assert request_body_framing("POST", {}) is None
    assert request_body_framing("PUT", {"content-length": 0}) == 0
    assert request_body_framing("POST", {"transfer-encoding": "chunked"}) == CHUNKED
    for method in ("GET", "HEAD", "DELETE", "OPTIONS"):
        assert request_body_framing(method, {}) is None
        with pytest.raises(ValueError) as info:
            request_body_framing(method, {"content-length": 1})
        assert str(info.value) == f"{method!r} request with a 'content-length' header"
        with pytest.raises(ValueError, match="'transfer-encoding' header"):
            request_body_framing(method, {"transfer-encoding": "chunked"})


def test_response_body_framing() -> None:
    assert response_body_framing("HEAD", 200, {"content-length": 5}) is None
    assert response_body_framing("GET", 200, {"content-length": 0}) == 0
    chunked = {"transfer-encoding": "chunked"}
    assert response_body_framing("GET", 200, chunked) == CHUNKED
    assert response_body_framing("GET", 200, {}) is None


@pytest.mark.parametrize("status", [100, 101, 103, 204, 304])
def test_response_body_framing_no_body_whatever_the_headers(status: int) -> None:
    """RFC 9112 §6.3: 1xx, 204 and 304 end with their preamble."""
    assert response_body_framing("GET", status, {"content-length": 5}) is None
    assert (
        response_body_framing("GET", status, {"transfer-encoding": "chunked"}) is None
    )


@pytest.mark.parametrize(
    ("line", "result"),
    [
        (b"0\r\n", (0, None)),
        (b"a\r\n", (10, None)),
        (b"A\r\n", (10, None)),
        (b"1000000\r\n", (MAX_IO_SIZE, None)),
        (b"5;foo=bar\r\n", (5, ("foo", "bar"))),
        (b"0;K=v+.:_~-\"'()*,;<>[]\r\n", (0, ("K", "v+.:_~-\"'()*,;<>[]"))),
        (b"5;k-1=v\r\n", (5, ("k-1", "v"))),
    ],
)
def test_parse_chunk_line_accepts(line: bytes, result: Any) -> None:
    assert parse_chunk_line(line) == result


@pytest.mark.parametrize(
    ("line", "msg"),
    [
        (b"1000001\r\n", f"need chunk_size <= {MAX_IO_SIZE}; got {MAX_IO_SIZE + 1}"),
        (b"fffffff\r\n", f"need chunk_size <= {MAX_IO_SIZE}; got {0xFFFFFFF}"),
        (b"10000000\r\n", "chunk_size is too long"),
        (b"\r\n", "bad chunk_size"),
        (b"05\r\n", "bad chunk_size"),
        (b"g\r\n", "bad chunk_size"),
        (b" 5\r\n", "bad chunk_size"),
        (b"5;\r\n", "bad chunk extension"),
        (b"5;k\r\n", "bad chunk extension"),
        (b"5;k=\r\n", "bad chunk extension"),
        (b"5;=v\r\n", "bad chunk extension"),
        (b"5;k=a=b\r\n", "bad chunk extension"),
        (b"5;k.1=v\r\n", "bad chunk extension"),
        (b"5;k=v%\r\n", "bad chunk extension"),
        (b"5\n", "bad chunk line termination: b'5\\n'"),
    ],
)
def test_parse_chunk_line_rejects(line: bytes, msg: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_chunk_line(line)
    assert str(info.value) == msg


# --- property tests -------------------------------------------------------

_name = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=32
)
_value = st.text(
    alphabet=string.ascii_letters + string.digits + "-+.:_~%&=/\"'()*,;<>[]",
    min_size=1,
    max_size=40,
)
_component = st.text(
    alphabet=string.ascii_letters + string.digits + "-+:_~", min_size=1, max_size=10
)
_SPECIAL = {"content-length", "transfer-encoding", "range", "content-range"}


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(
        ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"]
    ),
    path=st.lists(_component, max_size=5),
    query=st.none() | st.text(alphabet="abc=&/?", max_size=10),
    headers=st.dictionaries(
        _name.filter(lambda n: n not in _SPECIAL), _value, max_size=19
    ),
)
def test_render_then_parse_request_round_trips(
    method: str, path: list[str], query: str | None, headers: dict[str, str]
) -> None:
    uri = "/" + "/".join(path) + ("" if query is None else "?" + query)
    raw = render_request(method, uri, dict(headers))
    assert parse_request(raw[:-4]) == (method, uri, path, query, headers)


# Any text a path segment may decode to: no '/', no control, not '..'.
_decoded = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/"),
    min_size=1,
    max_size=8,
).filter(lambda t: t != "..")


@settings(max_examples=200, deadline=None)
@given(path=st.lists(_decoded, max_size=4))
def test_encode_segment_then_parse_gives_the_segments_back(path: list[str]) -> None:
    from degu._targets import encode_segment

    uri = "/" + "/".join(encode_segment(p) for p in path)
    raw = render_request("GET", uri, {})
    assert parse_request(raw[:-4]) == ("GET", uri, path, None, {})


@settings(max_examples=200, deadline=None)
@given(
    status=st.integers(100, 599),
    reason=st.text(alphabet=string.ascii_letters + " ", min_size=2, max_size=20).filter(
        lambda r: r.strip() == r and r != ""
    ),
    headers=st.dictionaries(
        _name.filter(lambda n: n not in _SPECIAL), _value, max_size=19
    ),
    length=st.integers(0, MAX_LENGTH),
)
def test_render_then_parse_response_round_trips(
    status: int, reason: str, headers: dict[str, str], length: int
) -> None:
    headers = dict(headers, **{"content-length": length})
    raw = render_response(status, reason, dict(headers))
    assert parse_response(raw[:-4]) == (status, reason, headers)


_VALID = (
    b"POST /foo/bar?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 12\r\n"
    b"User-Agent: test (x)\r\nAccept: */*"
)


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_mutated_requests_only_raise_ValueError(data: Any) -> None:
    """Random mutations never crash the parser: a result or the documented ValueError."""
    src = bytearray(_VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        i = data.draw(st.integers(0, len(src) - 1))
        if op == "flip":
            src[i] = data.draw(st.integers(0, 255))
        elif op == "insert":
            src[i:i] = data.draw(st.binary(min_size=1, max_size=4))
        elif len(src) > 1:
            del src[i]
    try:
        method, uri, path, query, headers = parse_request(bytes(src))
        request_body_framing(method, headers)
    except ParseError as e:
        assert e.status in (400, 413, 501, 505)


@pytest.mark.parametrize(
    ("parse", "framing"), [(parse_request, ()), (parse_framed_request, (3,))]
)
def test_parse_request_repeat_returns_fresh_mutable_parts(
    parse: Any, framing: tuple[int, ...]
) -> None:
    preamble = b"PUT /a/b?x=1 HTTP/1.1\r\nHost: h\r\ncontent-length: 3"
    first = parse(preamble)
    first[2].append("mutated")
    first[4]["host"] = "changed"
    second = parse(preamble)
    assert second == (
        "PUT",
        "/a/b?x=1",
        ["a", "b"],
        "x=1",
        {"host": "h", "content-length": 3},
        *framing,
    )
    assert second[2] is not first[2] and second[4] is not first[4]


def test_parse_request_repeat_still_refuses_bad_preambles() -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="^duplicate header: "):
            parse_request(b"GET / HTTP/1.1\r\na: b\r\nA: b")


def test_parse_framed_request_repeat_still_refuses_bad_preambles() -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="^duplicate header: "):
            parse_framed_request(b"GET / HTTP/1.1\r\na: b\r\nA: b")
    for _ in range(2):
        with pytest.raises(
            ValueError, match="^'GET' request with a 'content-length' header$"
        ):
            parse_framed_request(b"GET / HTTP/1.1\r\ncontent-length: 1")


def test_parse_framed_request_is_parse_request_then_framing() -> None:
    cases = [
        b"GET /x HTTP/1.1\r\nhost: a",
        b"POST /x HTTP/1.1\r\ncontent-length: 12",
        b"PATCH /x HTTP/1.1\r\ntransfer-encoding: chunked",
        # Framing drops "content-length: 0" from DELETE and OPTIONS, and a
        # repeat must see it dropped too.
        b"DELETE /x HTTP/1.1\r\ncontent-length: 0",
        b"OPTIONS /x HTTP/1.1\r\ncontent-length: 0\r\nhost: a",
    ]
    for preamble in cases:
        method, uri, path, query, headers = parse_request(preamble)
        expected = (method, uri, path, query, headers)
        expected += (request_body_framing(method, headers),)
        for _ in range(2):
            assert parse_framed_request(preamble) == expected


def test_parse_response_repeat_returns_fresh_headers() -> None:
    preamble = b"HTTP/1.1 206 Partial\r\ncontent-range: bytes 0-1/9"
    first = parse_response(preamble)
    first[2]["x"] = "y"
    assert parse_response(preamble) == (
        206,
        "Partial",
        {"content-range": ContentRange(0, 2, 9)},
    )


def test_parse_framed_request_preamble_cache_is_bounded() -> None:
    from degu import _parsing

    for i in range(_parsing.PREAMBLE_CACHE_SIZE + 5):
        parse_framed_request(f"GET /{i} HTTP/1.1".encode())
    parse_framed_request(
        b"GET /" + b"a" * _parsing.PREAMBLE_CACHE_MAX_LEN + b" HTTP/1.1"
    )
    assert len(_parsing._requests) <= _parsing.PREAMBLE_CACHE_SIZE
    assert all(len(k) <= _parsing.PREAMBLE_CACHE_MAX_LEN for k in _parsing._requests)


_RESPONSES = [
    b"HTTP/1.1 200 OK\r\ncontent-length: 12",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx: y",
    b"HTTP/1.1 200 OK",
    b"HTTP/1.1 204 No Content\r\ncontent-length: 5",
    b"HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked",
    b"HTTP/1.1 100 Continue",
    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0",
]


@pytest.mark.parametrize("preamble", _RESPONSES)
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "DELETE"])
def test_parse_framed_response_is_parse_response_then_framing(
    preamble: bytes, method: str
) -> None:
    status, reason, headers = parse_response(preamble)
    expected = (
        status,
        reason,
        headers,
        response_body_framing(method, status, dict(headers)),
    )
    # The first call and a repeat (a cache hit) give the same answer, and a
    # HEAD after a GET of the same bytes still has no body.
    for _ in range(2):
        assert parse_framed_response(preamble, method) == expected
        assert parse_framed_response(preamble, "HEAD")[3] is None


def test_parse_framed_response_repeat_returns_fresh_headers() -> None:
    preamble = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx: fresh"
    first = parse_framed_response(preamble, "GET")
    first[2]["x"] = "changed"
    second = parse_framed_response(preamble, "GET")
    assert second == (200, "OK", {"content-length": 3, "x": "fresh"}, 3)
    assert second[2] is not first[2]
    assert parse_response(preamble)[2] == {"content-length": 3, "x": "fresh"}


def test_parse_framed_response_repeat_still_refuses_bad_preambles() -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="^duplicate header: "):
            parse_framed_response(b"HTTP/1.1 200 OK\r\na: b\r\nA: b", "GET")
        with pytest.raises(ValueError, match="^bad status: "):
            parse_framed_response(b"HTTP/1.1 999 OK", "GET")
