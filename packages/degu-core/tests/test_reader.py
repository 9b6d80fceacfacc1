"""Tests of degu._reader: preamble limit, one deadline, lines and body reads."""

from __future__ import annotations

import socket
from time import monotonic
from typing import Any

import pytest

from degu._common import BUF_LEN
from degu._errors import ParseError
from degu._reader import Reader
from degu._timeouts import set_kernel_timeouts
from degu.base import EmptyPreambleError


def test_Reader_preamble_limit_edge(fake_socket: Any) -> None:
    line = b"GET / HTTP/1.1\r\nx: "
    fill = BUF_LEN - len(line) - 4
    ok = line + b"v" * fill + b"\r\n\r\n"
    assert len(ok) == BUF_LEN
    for split in (0, 1000):
        reader = Reader(fake_socket(ok + b"tail", split=split))
        assert reader.read_preamble("empty") == ok[:-4]
        assert reader.read(4) == b"tail"
    too_long = line + b"v" * (fill + 1) + b"\r\n\r\n"
    reader = Reader(fake_socket(too_long))
    with pytest.raises(ValueError) as info:
        reader.read_preamble("empty")
    end = b"\r\n\r\n"
    assert str(info.value) == f"{end!r} not found in {too_long[:32]!r}..."
    assert reader.overflow
    # The error carries the status the server answers with (RFC 6585 §5).
    assert isinstance(info.value, ParseError) and info.value.status == 431


def test_Reader_empty_preamble(fake_socket: Any) -> None:
    with pytest.raises(EmptyPreambleError) as info:
        Reader(fake_socket(b"")).read_preamble("request preamble is empty")
    assert str(info.value) == "request preamble is empty"
    assert isinstance(info.value, ConnectionError)


def test_Reader_eof_mid_preamble(fake_socket: Any) -> None:
    reader = Reader(fake_socket(b"GET / HTTP/1.1\r\n", split=3))
    with pytest.raises(ValueError) as info:
        reader.read_preamble("empty")
    assert str(info.value) == "b'\\r\\n\\r\\n' not found in b'GET / HTTP/1.1\\r\\n'..."
    assert not reader.overflow
    assert not isinstance(info.value, ParseError)  # answered 400, like any ValueError


def test_Reader_keeps_following_messages_buffered(fake_socket: Any) -> None:
    data = b"A\r\n\r\nBB\r\n\r\nCCC\r\n\r\n"
    for split in (0, 1, 2, 7):
        reader = Reader(fake_socket(data, split=split))
        assert [reader.read_preamble("e") for _ in range(3)] == [b"A", b"BB", b"CCC"]
        assert reader.buffered == 0
        with pytest.raises(EmptyPreambleError):
            reader.read_preamble("e")


def test_Reader_terminator_split_across_recvs(fake_socket: Any) -> None:
    reader = Reader(fake_socket([b"A\r", b"\n\r", b"\n"]))
    assert reader.read_preamble("e") == b"A"


def test_Reader_readline(fake_socket: Any) -> None:
    reader = Reader(fake_socket(b"5\r\nhello\r\n0\r\n\r\n", split=1))
    assert reader.readline(4096) == b"5\r\n"
    assert reader.read(5) == b"hello"
    assert reader.readline(4096) == b"\r\n"
    assert reader.readline(4096) == b"0\r\n"
    assert reader.readline(2) == b"\r\n"
    with pytest.raises(ValueError, match="not found in b''"):
        reader.readline(4096)


def test_Reader_readline_limit_edge(fake_socket: Any) -> None:
    line = b"x" * 4094 + b"\r\n"
    assert Reader(fake_socket(line)).readline(4096) == line
    with pytest.raises(ValueError, match="not found in"):
        Reader(fake_socket(b"x" + line)).readline(4096)


def test_Reader_readinto_and_read(fake_socket: Any) -> None:
    payload = bytes(range(256)) * 64
    reader = Reader(fake_socket(b"HEAD\r\n\r\n" + payload, split=5000))
    assert reader.read_preamble("e") == b"HEAD"
    buf = bytearray(10)
    assert reader.readinto(buf) == 10
    assert bytes(buf) == payload[:10]
    assert reader.read(len(payload) - 10) == payload[10:]
    assert reader.read(5) == b""
    assert reader.readinto(bytearray(5)) == 0


def test_Reader_one_deadline_for_whole_preamble() -> None:
    """A peer trickling bytes is cut off after timeout, not timeout per recv."""
    a, b = socket.socketpair()
    with a, b:
        a.settimeout(0.3)
        reader = Reader(a, timeout=0.3)
        b.sendall(b"GET / HTTP/1.1\r\n")
        with pytest.raises(TimeoutError):
            reader.read_preamble("empty")
        assert a.gettimeout() == 0.3


def test_Reader_kernel_timeouts_one_deadline_for_whole_preamble() -> None:
    """Same bound with SO_RCVTIMEO: the kernel timeout is restored afterwards."""
    a, b = socket.socketpair()
    with a, b:
        set_kernel_timeouts(a, 0.3)
        before = a.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
        assert a.gettimeout() is None
        reader = Reader(a, timeout=0.3, kernel_timeouts=True)
        b.sendall(b"GET / HTTP/1.1\r\n")
        start = monotonic()
        with pytest.raises(TimeoutError, match="^timed out$"):
            reader.read_preamble("empty")
        assert 0.25 <= monotonic() - start < 2
        assert a.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16) == before
        assert a.gettimeout() is None


def test_Reader_kernel_timeout_on_body_read_is_TimeoutError() -> None:
    a, b = socket.socketpair()
    with a, b:
        set_kernel_timeouts(a, 0.2)
        reader = Reader(a, timeout=0.2, kernel_timeouts=True)
        with pytest.raises(TimeoutError):
            reader.read(10)
        with pytest.raises(TimeoutError):
            reader.readinto(bytearray(8192))


def test_Reader_close_is_idempotent(fake_socket: Any) -> None:
    sock = fake_socket(b"")
    reader = Reader(sock)
    reader.close()
    reader.close()
    assert sock.closed and reader.closed
    assert repr(reader) == "<reader>"
