"""Tests of degu.base: bodies, ranges, Request and Session."""

from __future__ import annotations

import io
from typing import Any

import pytest

from degu._limits import IO_SIZE, MAX_IO_SIZE, MAX_LENGTH
from degu.base import (
    Body,
    BodyIter,
    ChunkedBody,
    ChunkedBodyIter,
    ContentRange,
    OpenRange,
    Range,
    Request,
    Session,
    SuffixRange,
)


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, buf: Any) -> int:
        self.data += buf
        return len(buf)


def test_Body_read_moves_from_ready_to_started_to_consumed() -> None:
    body = Body(io.BytesIO(b"hello"), 5)
    assert (body.state, body.chunked, repr(body)) == (0, False, "Body(<rfile>, 5)")
    assert body.read(2) == b"he" and body.state == 1
    assert body.read() == b"llo" and body.state == 2
    with pytest.raises(ValueError) as info:
        body.read()
    assert str(info.value) == "Body.state == BODY_CONSUMED, already consumed"
    body = Body(io.BytesIO(b"ab"), 2)
    assert body.read(2) == b"ab" and body.state == 1
    assert body.read(1) == b"" and body.state == 2


def test_Body_refuses_a_negative_content_length() -> None:
    with pytest.raises(
        ValueError, match=f"^need 0 <= content_length <= {MAX_LENGTH}; got -1$"
    ):
        Body(io.BytesIO(), -1)


def test_Body_needs_a_callable_readinto_on_rfile() -> None:
    with pytest.raises(TypeError, match=r"^rfile.readinto\(\) is not callable$"):
        Body(type("R", (), {"readinto": 1})(), 0)
    with pytest.raises(AttributeError):
        Body(object(), 0)


def test_Body_short_rfile_is_an_error_and_the_body_unusable_after() -> None:
    body = Body(io.BytesIO(b"abc"), 5)
    with pytest.raises(ValueError) as info:
        body.read()
    assert str(info.value) == "expected to read 5 bytes, but received 3"
    assert body.state == 3
    with pytest.raises(ValueError, match="^Body.state == BODY_ERROR, cannot be used$"):
        body.read()


def test_Body_read_all_refuses_more_than_MAX_IO_SIZE_before_reading() -> None:
    big = Body(io.BytesIO(), MAX_IO_SIZE + 1)
    with pytest.raises(ValueError) as info:
        big.read()
    assert (
        str(info.value)
        == f"would exceed max read size: {MAX_IO_SIZE + 1} > {MAX_IO_SIZE}"
    )
    assert big.state == 0


def test_Body_read_refuses_a_size_over_MAX_IO_SIZE() -> None:
    big = Body(io.BytesIO(), MAX_IO_SIZE + 1)
    with pytest.raises(
        ValueError, match=f"^need 0 <= size <= {MAX_IO_SIZE}; got {MAX_IO_SIZE + 1}$"
    ):
        big.read(MAX_IO_SIZE + 1)


def test_Body_iter_and_write_to() -> None:
    data = b"x" * (IO_SIZE + 10)
    body = Body(io.BytesIO(data), len(data))
    pieces = list(body)
    assert [len(p) for p in pieces] == [IO_SIZE, 10] and body.state == 2
    body = Body(io.BytesIO(data), len(data))
    it = iter(body)
    with pytest.raises(
        ValueError, match="BODY_STARTED, cannot start another operation"
    ):
        iter(body)
    list(it)
    sink = Sink()
    body = Body(io.BytesIO(data), len(data))
    assert body.write_to(sink) == len(data) and bytes(sink.data) == data


def test_ChunkedBody_reads_iterates_writes_and_refuses_bad_framing() -> None:
    src = b"5\r\nhello\r\n5;foo=bar\r\nworld\r\n0\r\n\r\n"
    body = ChunkedBody(io.BytesIO(src))
    assert repr(body) == "ChunkedBody(<rfile>)" and body.chunked
    assert list(body) == [(None, b"hello"), (("foo", "bar"), b"world"), (None, b"")]
    assert body.state == 2
    with pytest.raises(ValueError, match="already consumed"):
        body.readchunk()
    assert ChunkedBody(io.BytesIO(src)).read() == b"helloworld"
    sink = Sink()
    assert ChunkedBody(io.BytesIO(src)).write_to(sink) == len(src)
    assert bytes(sink.data) == src
    bad = ChunkedBody(io.BytesIO(b"5\r\nhelloXX0\r\n\r\n"))
    with pytest.raises(ValueError, match="^bad chunk data termination: b'XX'$"):
        bad.readchunk()
    assert bad.state == 3


def test_BodyIter_writes_exactly_content_length_bytes_of_bytes_items() -> None:
    sink = Sink()
    assert BodyIter([b"ab", b"", b"c"], 3).write_to(sink) == 3
    over = BodyIter([b"ab", b"cd"], 3)
    sink = Sink()
    with pytest.raises(ValueError, match="^exceeds content_length: 4 > 3$"):
        over.write_to(sink)
    assert bytes(sink.data) == b"ab" and over.state == 3
    with pytest.raises(ValueError, match="^deceeds content_length: 2 < 3$"):
        BodyIter([b"ab"], 3).write_to(Sink())
    with pytest.raises(
        TypeError, match="^BodyIter source item: need a <class 'bytes'>"
    ):
        BodyIter(["ab"], 2).write_to(Sink())
    used = BodyIter([], 0)
    used.write_to(Sink())
    with pytest.raises(ValueError, match="^BodyIter.state == BODY_CONSUMED"):
        used.write_to(Sink())


def test_ChunkedBodyIter_writes_chunks_ending_with_one_empty_chunk() -> None:
    sink = Sink()
    ChunkedBodyIter([(None, b"a"), (("k", "v"), b"")]).write_to(sink)
    assert bytes(sink.data) == b"1\r\na\r\n0;k=v\r\n\r\n"
    with pytest.raises(ValueError, match="^additional chunk after empty chunk data$"):
        ChunkedBodyIter([(None, b""), (None, b"")]).write_to(Sink())
    with pytest.raises(ValueError, match="^final chunk data was not empty$"):
        ChunkedBodyIter([]).write_to(Sink())
    with pytest.raises(ValueError, match="^final chunk data was not empty$"):
        ChunkedBodyIter([(None, b"x")]).write_to(Sink())


def test_Range_and_ContentRange_print_compare_and_check_bounds() -> None:
    r = Range(0, 500)
    assert (str(r), repr(r)) == ("bytes=0-499", "Range(0, 500)")
    assert r == Range(0, 500) and r == "bytes=0-499" and r != Range(0, 499)
    with pytest.raises(
        TypeError, match=r"^cannot compare Range\(\) with <class 'int'>$"
    ):
        r == 1  # noqa: B015
    with pytest.raises(TypeError):
        hash(r)
    assert r.content_length(100) == 100
    assert r.content_range(1000) == ContentRange(0, 500, 1000)
    with pytest.raises(
        ValueError, match=r"^Range\(0, 500\) out of bounds \(total=0\)$"
    ):
        r.content_length(0)
    with pytest.raises(ValueError, match="^need start < stop; got 3 >= 3$"):
        Range(3, 3)
    with pytest.raises(
        TypeError, match="^start: need a <class 'int'>; got a <class 'bool'>: True$"
    ):
        Range(True, 3)
    Range(0, MAX_LENGTH)
    with pytest.raises(
        ValueError, match=f"^need 0 <= stop <= {MAX_LENGTH}; got {MAX_LENGTH + 1}$"
    ):
        Range(0, MAX_LENGTH + 1)
    cr = ContentRange(0, 5, 10)
    assert (str(cr), repr(cr)) == ("bytes 0-4/10", "ContentRange(0, 5, 10)")
    with pytest.raises(
        ValueError, match=r"^need start < stop <= total; got \(0, 11, 10\)$"
    ):
        ContentRange(0, 11, 10)


def test_OpenRange_selects_from_start_to_the_end() -> None:
    r = OpenRange(5)
    assert (str(r), repr(r), r.start) == ("bytes=5-", "OpenRange(5)", 5)
    assert r == OpenRange(5) and r == "bytes=5-" and r != OpenRange(4)
    assert r.content_range(10) == ContentRange(5, 10, 10)
    assert r.content_length(10) == 5
    with pytest.raises(ValueError, match=r"^OpenRange\(5\) out of bounds \(total=5\)$"):
        r.content_range(5)
    with pytest.raises(TypeError, match=r"^cannot compare OpenRange\(\) with"):
        r == 5  # noqa: B015
    with pytest.raises(TypeError):
        r == Range(5, 6)  # noqa: B015
    with pytest.raises(TypeError):
        hash(r)
    OpenRange(MAX_LENGTH - 1)
    with pytest.raises(ValueError, match=f"^need 0 <= start <= {MAX_LENGTH - 1}; "):
        OpenRange(MAX_LENGTH)
    with pytest.raises(TypeError, match="^start: need a <class 'int'>"):
        OpenRange(True)


def test_SuffixRange_selects_the_last_bytes_clamped() -> None:
    r = SuffixRange(3)
    assert (str(r), repr(r), r.length) == ("bytes=-3", "SuffixRange(3)", 3)
    assert r == SuffixRange(3) and r == "bytes=-3" and r != SuffixRange(2)
    assert r.content_range(10) == ContentRange(7, 10, 10)
    assert r.content_range(2) == ContentRange(0, 2, 2)  # RFC 9110 §14.1.3
    assert r.content_length(2) == 2
    for total in (0,):
        with pytest.raises(ValueError, match="out of bounds"):
            r.content_range(total)
    with pytest.raises(ValueError, match=r"^SuffixRange\(0\) out of bounds"):
        SuffixRange(0).content_range(10)
    SuffixRange(MAX_LENGTH)
    with pytest.raises(ValueError, match="^need 0 <= length <= "):
        SuffixRange(-1)
    with pytest.raises(ValueError, match="^need 0 <= total <= "):
        r.content_range(-1)


def test_Range_clamps_a_stop_past_the_end() -> None:
    assert Range(0, 100).content_range(5) == ContentRange(0, 5, 5)


def test_ContentRange_content_length_is_stop_minus_start() -> None:
    assert ContentRange(3, 10, 20).content_length == 7


def test_Request_build_proxy_uri_encodes_decoded_components() -> None:
    r = Request("GET", "/a/my%20f%C3%A9?q=%20", {}, None, ["a"], ["my fé"], "q=%20")
    assert r.build_proxy_uri() == "/my%20f%C3%A9?q=%20"
    r = Request("GET", "/x%3Fy%25", {}, None, [], ["x?y%"], None)
    assert r.build_proxy_uri() == "/x%3Fy%25"


@pytest.mark.parametrize("method", ["OPTIONS", "PATCH"])
def test_Request_accepts_OPTIONS_and_PATCH(method: str) -> None:
    assert Request(method, "/", {}, None, [], [], None).method == method


def test_Request_is_read_only_and_shift_path_moves_one_segment() -> None:
    r = Request("GET", "/foo/bar?x", {}, None, [], ["foo", "bar"], "x")
    assert repr(r) == (
        "Request(method='GET', uri='/foo/bar?x', headers={}, body=None, "
        "mount=[], path=['foo', 'bar'], query='x')"
    )
    assert r.build_proxy_uri() == "/foo/bar?x"
    assert r.shift_path() == "foo" and r.mount == ["foo"] and r.path == ["bar"]
    assert r.build_proxy_uri() == "/bar?x"
    r.shift_path()
    assert r.shift_path() is None and r.build_proxy_uri() == "/?x"
    with pytest.raises(AttributeError):
        r.method = "PUT"  # type: ignore[misc]
    with pytest.raises(ValueError, match="^bad method: 'get'$"):
        Request("get", "/", {}, None, [], [], None)
    with pytest.raises(
        TypeError, match="^path: need a <class 'list'>; got a <class 'tuple'>$"
    ):
        Request("GET", "/", {}, None, [], (), None)  # type: ignore[arg-type]


def test_Session_prints_its_address_and_validates_its_arguments() -> None:
    s = Session(("127.0.0.1", 5))
    assert (s.max_requests, s.requests, s.closed, s.message) == (500, 0, False, None)
    assert s.store is s.store and str(s) == "('127.0.0.1', 5)"
    assert repr(s) == "Session(('127.0.0.1', 5))"
    s = Session(b"\x00x", (1, 2, 3), 0)
    assert (
        str(s) == "b'\\x00x' (1, 2, 3)" and repr(s) == "Session(b'\\x00x', (1, 2, 3))"
    )
    with pytest.raises(
        ValueError, match="^credentials: need a 3-tuple; got a 2-tuple$"
    ):
        Session("x", (1, 2))
    with pytest.raises(
        ValueError, match="^need 0 <= max_requests <= 75000; got 75001$"
    ):
        Session("x", None, 75001)


def test_ChunkedBody_read_total_edge() -> None:
    # docs/reference/base.rst: read() joins at most MAX_IO_SIZE bytes; one more is an error.
    half = MAX_IO_SIZE // 2

    def chunked(*sizes: int) -> io.BytesIO:
        parts = [b"%x\r\n" % n + b"x" * n + b"\r\n" for n in sizes]
        return io.BytesIO(b"".join(parts) + b"0\r\n\r\n")

    body = ChunkedBody(chunked(half, half))
    assert len(body.read()) == MAX_IO_SIZE and body.state == 2
    body = ChunkedBody(chunked(half, half, 1))
    with pytest.raises(ValueError) as info:
        body.read()
    assert str(info.value) == (
        f"chunks exceed MAX_IO_SIZE: {MAX_IO_SIZE + 1} > {MAX_IO_SIZE}"
    )
    assert body.state == 3


def test_content_length_edge_for_Body_and_BodyIter() -> None:
    # docs/reference/base.rst: 0 <= content_length <= MAX_LENGTH, exact int.
    assert Body(io.BytesIO(), MAX_LENGTH).content_length == MAX_LENGTH
    assert BodyIter([], MAX_LENGTH).content_length == MAX_LENGTH
    for cls, first in ((Body, io.BytesIO()), (BodyIter, [])):
        with pytest.raises(ValueError) as info:
            cls(first, MAX_LENGTH + 1)
        assert str(info.value) == (
            f"need 0 <= content_length <= {MAX_LENGTH}; got {MAX_LENGTH + 1}"
        )
        with pytest.raises(TypeError, match="^content_length: need a <class 'int'>"):
            cls(first, True)
