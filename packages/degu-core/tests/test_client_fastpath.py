"""The client's per-request shortcuts give the same results as the long way.

A request preamble is remembered per method and URI (degu._rendering), a
response preamble that arrives in one receive skips the general reader loop
(Reader.recv_preamble), and a budget that has not waited yet skips its
check.  Each test pins that the shortcut and the long way cannot be told
apart, errors included.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from degu import _rendering
from degu._errors import EmptyPreambleError
from degu._reader import Reader
from degu._rendering import render_request
from degu._stream import Budget, ObjectStream, SocketStream
from degu.client import MAX_INTERIM_RESPONSES, Connection

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"


class _Str(str):
    """Equal to its value, yet a different type: never rendered from a cache."""

    def __str__(self) -> str:
        return "from-str"


def test_render_request_repeats_give_the_same_bytes() -> None:
    headers = {"host": "example.com", "content-length": 3}
    first = render_request("POST", "/cached", headers)
    assert render_request("POST", "/cached", dict(headers)) == first
    # Insertion order does not matter: names are sorted either way.
    again = {"content-length": 3, "host": "example.com"}
    assert render_request("POST", "/cached", again) == first
    assert first == (
        b"POST /cached HTTP/1.1\r\ncontent-length: 3\r\nhost: example.com\r\n\r\n"
    )


def test_render_request_renders_equal_values_of_other_types_by_their_type() -> None:
    assert render_request("GET", "/types", {"x": 1}).endswith(b"\r\nx: 1\r\n\r\n")
    # True == 1 and 1.0 == 1, but each renders as itself.
    assert render_request("GET", "/types", {"x": True}).endswith(b"x: True\r\n\r\n")
    assert render_request("GET", "/types", {"x": 1.0}).endswith(b"x: 1.0\r\n\r\n")
    assert render_request("GET", "/types", {"x": "a"}).endswith(b"x: a\r\n\r\n")
    out = render_request("GET", "/types", {"x": _Str("a")})
    assert out.endswith(b"x: from-str\r\n\r\n")


def test_render_request_checks_names_and_values_after_a_cached_render() -> None:
    assert render_request("GET", "/checked", {"host": "a"})
    with pytest.raises(TypeError):
        render_request("GET", "/checked", {_Str("host"): "a"})
    with pytest.raises(ValueError, match="bad val"):
        render_request("GET", "/checked", {"host": "a\r\nx: y"})
    with pytest.raises(ValueError, match="bad uri"):
        render_request("GET", _Str("/checked"), {"host": "a"})
    with pytest.raises(ValueError, match="bad method"):
        render_request(_Str("GET"), "/checked", {"host": "a"})
    # A changed header gives a new preamble, never the remembered one.
    assert render_request("GET", "/checked", {"host": "b"}).endswith(b"host: b\r\n\r\n")


def test_render_request_cache_is_bounded() -> None:
    _rendering._preambles.clear()
    long_value = "v" * _rendering.PREAMBLE_CACHE_MAX_LEN
    render_request("GET", "/long", {"x": long_value})
    assert ("GET", "/long") not in _rendering._preambles
    for i in range(_rendering.KEY_CACHE_SIZE + 10):
        render_request("GET", f"/many/{i}", {})
        assert len(_rendering._preambles) <= _rendering.KEY_CACHE_SIZE
    # The cached copy is not the caller's dict: changing it changes nothing.
    headers = {"host": "a"}
    render_request("GET", "/copy", headers)
    headers["host"] = "b"
    assert _rendering._preambles["GET", "/copy"][0] == {"host": "a"}


def test_Connection_response_in_one_receive_or_byte_by_byte(fake_socket: Any) -> None:
    for split in (0, 1, 7):
        sock = fake_socket(OK, split=split)
        sock.chunks += fake_socket(OK, split=split).chunks
        conn = Connection(sock, None)
        for _ in range(2):
            r = conn.get("/", {})
            assert (r.status, r.reason, r.headers) == (200, "OK", {"content-length": 2})
            assert r.body.read() == b"hi"
        assert not conn.closed
        if split == 0:
            assert sock.recv_calls == 2  # one receive per response


def test_Connection_interim_responses_in_and_across_receives(
    fake_socket: Any,
) -> None:
    interim = b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
    for chunks in (
        [interim + OK],
        [interim, OK],
        [interim * MAX_INTERIM_RESPONSES + OK],
        [interim] * MAX_INTERIM_RESPONSES + [OK],
    ):
        conn = Connection(fake_socket(chunks), None)
        r = conn.get("/", {})
        assert r.status == 200 and r.body.read() == b"hi"
    for chunks in (
        [interim * (MAX_INTERIM_RESPONSES + 1) + OK],
        [interim] * (MAX_INTERIM_RESPONSES + 1) + [OK],
    ):
        conn = Connection(fake_socket(chunks), None)
        with pytest.raises(ValueError, match="^more than 8 interim responses$"):
            conn.get("/", {})
        assert conn.closed
    bad = b"HTTP/1.1 100 Continue\r\ncontent-length: 0\r\n\r\n"
    for chunks in ([bad + OK], [interim, bad + OK]):
        conn = Connection(fake_socket(chunks), None)
        with pytest.raises(ValueError, match="^unexpected interim response: 100"):
            conn.get("/", {})
        assert conn.closed


def test_Connection_empty_and_truncated_responses(fake_socket: Any) -> None:
    conn = Connection(fake_socket(b""), None)
    with pytest.raises(EmptyPreambleError, match="^response preamble is empty$"):
        conn.get("/", {})
    assert conn.closed
    conn = Connection(fake_socket(b"HTTP/1.1 200 OK\r\n"), None)
    with pytest.raises(ValueError, match="not found in"):
        conn.get("/", {})
    assert conn.closed


def test_Reader_recv_preamble_keeps_what_follows_or_an_incomplete_preamble(
    fake_socket: Any,
) -> None:
    reader = Reader(ObjectStream(fake_socket([OK + b"HTTP/1.1", b" 204 X\r\n\r\n"])))
    assert reader.recv_preamble(Budget(5)) == b"HTTP/1.1 200 OK\r\ncontent-length: 2"
    assert reader.read(2) == b"hi" and reader.buffered == 8
    reader.read(8)
    # Nothing buffered again: the next receive brings an incomplete preamble,
    # kept for read_preamble() to finish.
    reader = Reader(ObjectStream(fake_socket([b"HTTP/1.1", b" 204 X\r\n\r\n"])))
    assert reader.recv_preamble(Budget(5)) is None
    assert reader.buffered == 8
    assert reader.read_preamble("empty", Budget(5)) == b"HTTP/1.1 204 X"
    reader = Reader(ObjectStream(fake_socket(b"")))
    assert reader.recv_preamble(Budget(5)) is None and reader.buffered == 0


def test_SocketStream_recv_into_charges_waits_and_refuses_a_spent_budget() -> None:
    a, b = socket.socketpair()
    with a, b:
        stream = SocketStream(a, 5.0)
        budget = Budget(0.05)
        # The first wait may take the whole timeout, and is charged.
        with pytest.raises(TimeoutError):
            stream.recv_into(memoryview(bytearray(10)), budget)
        assert budget.waited >= 0.04
        # Once charged, check() applies: a spent budget waits no more.
        budget.waited = 1.0
        b.send(b"x")
        with pytest.raises(TimeoutError):
            stream.recv_into(memoryview(bytearray(10)), budget)
        fresh = Budget(5.0)
        assert stream.recv_into(memoryview(bytearray(10)), fresh) == 1
        assert fresh.moved == 1 and fresh.waited >= 0.0


def test_Body_iteration_yields_what_came_with_the_preamble_as_its_own_piece() -> None:
    # A body that arrived partly with the preamble: those bytes first, then
    # pieces received whole from the socket (no join of the two).
    body = bytes(range(256)) * 300  # 76800 bytes, more than the reader's buffer
    preamble = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body)
    a, b = socket.socketpair()
    with a, b:
        b.sendall(preamble + body)
        conn = Connection(a, None)
        r = conn.get("/", {})
        first = 32768 - len(preamble)  # the rest of the reader's first receive
        pieces = list(r.body)
        assert [len(p) for p in pieces] == [first, len(body) - first]
        assert all(type(p) is bytes for p in pieces)
        assert b"".join(pieces) == body
        assert r.body.state == 2  # BODY_CONSUMED
        assert not conn.closed


def test_Body_iteration_of_a_body_all_buffered_is_one_piece() -> None:
    a, b = socket.socketpair()
    with a, b:
        b.sendall(OK)
        conn = Connection(a, None)
        r = conn.get("/", {})
        assert list(r.body) == [b"hi"]
        assert r.body.state == 2  # BODY_CONSUMED


def test_Connection_base_headers_are_added_as_before(fake_socket: Any) -> None:
    # Kept as a dict for a faster update(): same result, later pairs win.
    sock = fake_socket(OK)
    conn = Connection(sock, (("host", "a"), ("x-b", "1"), ("host", "c")))
    headers = {"host": "mine", "x-a": "2"}
    assert conn.get("/", headers).body.read() == b"hi"
    assert headers == {"host": "c", "x-a": "2", "x-b": "1"}
    assert conn.base_headers == (("host", "a"), ("x-b", "1"), ("host", "c"))


def test_Connection_bad_base_headers_fail_each_request_as_update_does(
    fake_socket: Any,
) -> None:
    with pytest.raises(ValueError) as expected:
        {}.update((("host",),))  # type: ignore[arg-type]
    conn = Connection(fake_socket(OK), (("host",),))
    with pytest.raises(ValueError) as got:
        conn.get("/", {})
    assert str(got.value) == str(expected.value)
    assert conn.closed
