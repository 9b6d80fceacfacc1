"""Tests of degu._reader: preamble limit, budgets, lines, body reads, buffer."""

from __future__ import annotations

import socket
from time import monotonic
from typing import Any

import pytest

from degu._errors import ParseError
from degu._limits import BUF_LEN
from degu._reader import Reader
from degu._stream import Budget, ObjectStream, SocketStream
from degu.base import EmptyPreambleError


def reader_of(sock: Any) -> Reader:
    """A Reader over a fake socket, every read within a generous budget."""
    reader = Reader(ObjectStream(sock))
    reader.budget = Budget(5)
    return reader


def preamble(reader: Reader) -> bytes:
    return reader.read_preamble("empty", Budget(5))


def test_Reader_preamble_limit_edge(fake_socket: Any) -> None:
    line = b"GET / HTTP/1.1\r\nx: "
    fill = BUF_LEN - len(line) - 4
    ok = line + b"v" * fill + b"\r\n\r\n"
    assert len(ok) == BUF_LEN
    for split in (0, 1000):
        reader = reader_of(fake_socket(ok + b"tail", split=split))
        assert reader.read_preamble("empty", Budget(5)) == ok[:-4]
        assert reader.read(4) == b"tail"
    too_long = line + b"v" * (fill + 1) + b"\r\n\r\n"
    reader = reader_of(fake_socket(too_long))
    with pytest.raises(ValueError) as info:
        reader.read_preamble("empty", Budget(5))
    end = b"\r\n\r\n"
    assert str(info.value) == f"{end!r} not found in {too_long[:32]!r}..."
    assert reader.overflow
    # The error carries the status the server answers with (RFC 6585 §5).
    assert isinstance(info.value, ParseError) and info.value.status == 431


def test_Reader_empty_preamble(fake_socket: Any) -> None:
    with pytest.raises(EmptyPreambleError) as info:
        reader_of(fake_socket(b"")).read_preamble(
            "request preamble is empty", Budget(5)
        )
    assert str(info.value) == "request preamble is empty"
    assert isinstance(info.value, ConnectionError)


def test_Reader_eof_mid_preamble(fake_socket: Any) -> None:
    reader = reader_of(fake_socket(b"GET / HTTP/1.1\r\n", split=3))
    with pytest.raises(ValueError) as info:
        reader.read_preamble("empty", Budget(5))
    assert str(info.value) == "b'\\r\\n\\r\\n' not found in b'GET / HTTP/1.1\\r\\n'..."
    assert not reader.overflow
    assert not isinstance(info.value, ParseError)  # answered 400, like any ValueError


def test_Reader_keeps_following_messages_buffered(fake_socket: Any) -> None:
    data = b"A\r\n\r\nBB\r\n\r\nCCC\r\n\r\n"
    for split in (0, 1, 2, 7):
        reader = reader_of(fake_socket(data, split=split))
        assert [reader.read_preamble("e", Budget(5)) for _ in range(3)] == [
            b"A",
            b"BB",
            b"CCC",
        ]
        assert reader.buffered == 0
        with pytest.raises(EmptyPreambleError):
            reader.read_preamble("e", Budget(5))


def test_Reader_terminator_split_across_recvs(fake_socket: Any) -> None:
    reader = reader_of(fake_socket([b"A\r", b"\n\r", b"\n"]))
    assert reader.read_preamble("e", Budget(5)) == b"A"


def test_Reader_readline_returns_lines_across_recvs_and_fails_at_eof(
    fake_socket: Any,
) -> None:
    reader = reader_of(fake_socket(b"5\r\nhello\r\n0\r\n\r\n", split=1))
    assert reader.readline(4096) == b"5\r\n"
    assert reader.read(5) == b"hello"
    assert reader.readline(4096) == b"\r\n"
    assert reader.readline(4096) == b"0\r\n"
    assert reader.readline(2) == b"\r\n"
    with pytest.raises(ValueError, match="not found in b''"):
        reader.readline(4096)


def test_Reader_readline_limit_edge(fake_socket: Any) -> None:
    line = b"x" * 4094 + b"\r\n"
    assert reader_of(fake_socket(line)).readline(4096) == line
    with pytest.raises(ValueError, match="not found in"):
        reader_of(fake_socket(b"x" + line)).readline(4096)


def test_Reader_readinto_and_read(fake_socket: Any) -> None:
    payload = bytes(range(256)) * 64
    reader = reader_of(fake_socket(b"HEAD\r\n\r\n" + payload, split=5000))
    assert reader.read_preamble("e", Budget(5)) == b"HEAD"
    buf = bytearray(10)
    assert reader.readinto(buf) == 10
    assert bytes(buf) == payload[:10]
    assert reader.read(len(payload) - 10) == payload[10:]
    assert reader.read(5) == b""
    assert reader.readinto(bytearray(5)) == 0


def test_Reader_one_budget_for_the_whole_preamble() -> None:
    """A peer trickling bytes is cut off after timeout, not timeout per recv."""
    a, b = socket.socketpair()
    with a, b:
        reader = Reader(SocketStream(a, 5))
        b.sendall(b"GET / HTTP/1.1\r\n")
        start = monotonic()
        with pytest.raises(TimeoutError, match="^timed out$"):
            reader.read_preamble("empty", Budget(0.3))
        assert 0.25 <= monotonic() - start < 2


def test_Reader_body_read_past_its_budget_is_TimeoutError() -> None:
    a, b = socket.socketpair()
    with a, b:
        reader = Reader(SocketStream(a, 5))
        reader.budget = Budget(0.2)
        with pytest.raises(TimeoutError):
            reader.read(10)
        with pytest.raises(TimeoutError):
            reader.readinto(bytearray(8192))


def test_Reader_big_read_joins_buffered_bytes_and_later_sends() -> None:
    a, b = socket.socketpair()
    with a, b:
        reader = Reader(SocketStream(a, 5))
        b.sendall(b"P\r\n\r\n" + b"x" * 100)
        assert preamble(reader) == b"P"
        b.sendall(b"y" * 10000)
        assert reader.read(10100) == b"x" * 100 + b"y" * 10000


def test_Reader_big_read_stops_short_at_eof() -> None:
    a, b = socket.socketpair()
    with a:
        reader = Reader(SocketStream(a, 5))
        b.sendall(b"z" * 5000)
        b.close()
        assert reader.read(10000) == b"z" * 5000


def test_Reader_drops_its_buffer_when_idle(fake_socket: Any) -> None:
    """An idle connection holds no buffer: release() frees it when empty."""
    reader = reader_of(fake_socket(b"A\r\n\r\nB"))
    assert preamble(reader) == b"A"
    reader.release()  # one byte still buffered: kept
    assert reader.buffered == 1 and reader.read(1) == b"B"
    reader.release()
    assert reader._buf is None and reader.buffered == 0


def test_Reader_preamble_end_scans_each_byte_once(fake_socket: Any) -> None:
    """A trickled preamble is searched from where the last search stopped."""
    reader = reader_of(fake_socket(b"GET / HTTP/1.1\r\nx: y\r\n\r\n", split=1))
    seen = []
    while (end := reader.preamble_end()) < 0:
        seen.append(reader._scanned)
        assert reader.fill(Budget(5)) == 1
    assert seen == sorted(seen)
    assert reader.take_preamble(end) == b"GET / HTTP/1.1\r\nx: y"


def test_Reader_fill_nowait_returns_None_when_nothing_arrived() -> None:
    a, b = socket.socketpair()
    with a, b:
        reader = Reader(SocketStream(a, 5))
        assert reader.fill_nowait() is None
        b.sendall(b"abc")
        assert reader.fill_nowait() == 3
        b.shutdown(socket.SHUT_WR)
        assert reader.fill_nowait() == 0
        assert reader.buffered == 3


def test_Reader_fail_closes_at_once_unless_the_owner_answers(
    fake_socket: Any,
) -> None:
    sock = fake_socket(b"")
    reader = reader_of(sock)
    reader.fail(400)
    assert reader.broken and reader.error_status == 400 and sock.closed
    sock = fake_socket(b"")
    reader = reader_of(sock)
    reader.defer_close = True
    reader.fail(None)
    assert reader.broken and reader.error_status is None and not sock.closed


def test_Reader_close_is_idempotent(fake_socket: Any) -> None:
    sock = fake_socket(b"")
    reader = reader_of(sock)
    reader.close()
    reader.close()
    assert sock.closed and reader.closed
    assert repr(reader) == "<reader>"


def test_Reader_fill_within_buffers_what_arrives_within_seconds() -> None:
    a, b = socket.socketpair()
    with a, b:
        reader = Reader(SocketStream(a, 5))
        start = monotonic()
        with pytest.raises(TimeoutError):
            reader.fill_within(0.1)
        assert monotonic() - start < 2
        assert reader.buffered == 0
        b.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert reader.fill_within(0.1) == 18
        assert reader.preamble_end() == 14
        b.close()
        reader.take_preamble(14)
        assert reader.fill_within(0.1) == 0


def test_Reader_release_keeps_spare_buffers_up_to_SPARE_BUFFERS(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import degu._reader

    spare: list[Any] = []
    monkeypatch.setattr(degu._reader, "_spare", spare)
    a, b = socket.socketpair()
    with a, b:
        stream = SocketStream(a, 5)
        readers = [Reader(stream) for _ in range(degu._reader.SPARE_BUFFERS + 2)]
        bufs = [r.buffered_span()[0] for r in readers]
        assert len({id(buf) for buf in bufs}) == len(readers)
        b.sendall(b"x")
        readers[0].fill_within(1)
        readers[0].release()  # holds an unread byte: keeps its buffer
        assert spare == []
        for r in readers[1:]:
            r.release()
        assert len(spare) == degu._reader.SPARE_BUFFERS
        # The next message reuses one, stale bytes unseen.
        again = Reader(stream)
        buf, start, stop = again.buffered_span()
        assert buf is bufs[-2] and start == stop == 0
        assert again.buffered == 0


def test_Reader_next_preamble_takes_whole_preambles_only(fake_socket: Any) -> None:
    """next_preamble(): None until CRLFCRLF is buffered, then the preamble."""
    reader = reader_of(fake_socket(b"GET / HTTP/1.1\r\nx: y\r\n\r\nGET /b", split=5))
    assert reader.next_preamble() is None  # nothing buffered yet
    got = None
    while got is None:
        assert reader.fill(Budget(5)) > 0
        seen = reader._scanned
        got = reader.next_preamble()
        if got is None:
            # The search resumes where it stopped: each byte scanned once.
            assert reader._scanned >= seen
    assert got == b"GET / HTTP/1.1\r\nx: y"
    while reader.fill(Budget(5)):
        pass
    assert reader.buffered == 6  # the next request stays buffered, unconsumed
    assert reader.next_preamble() is None and reader.buffered == 6


def test_Reader_next_preamble_agrees_with_preamble_end_and_take(
    fake_socket: Any,
) -> None:
    data = b"A\r\n\r\nBB\r\n\r\n\r\n\r\nC"
    one, two = reader_of(fake_socket(data)), reader_of(fake_socket(data))
    one.fill(Budget(5))
    two.fill(Budget(5))
    for _ in range(4):
        end = one.preamble_end()
        expected = None if end < 0 else one.take_preamble(end)
        assert two.next_preamble() == expected
        assert one.buffered == two.buffered
    assert two.buffered_view().tobytes() == b"C"


def test_Reader_take_is_all_or_nothing(fake_socket: Any) -> None:
    reader = reader_of(fake_socket(b"abcdef"))
    reader.fill(Budget(5))
    assert reader.take(7) is None and reader.buffered == 6
    assert reader.take(0) == b""
    assert reader.take(2) == b"ab"
    assert reader.take(4) == b"cdef" and reader.buffered == 0
    assert reader.take(1) is None


def test_Reader_fill_reuses_an_emptied_buffer_from_its_start() -> None:
    a, b = socket.socketpair()
    with a, b:
        reader = Reader(SocketStream(a, 5))
        b.sendall(b"x\r\n\r\n")
        assert reader.fill_within(1) == 5
        assert reader.next_preamble() == b"x"
        b.sendall(b"yy\r\n\r\n")
        assert reader.fill_within(1) == 6
        # Received at the start of the buffer again, not after the old bytes.
        assert reader.buffered_span()[1:] == (0, 6)
        assert reader.next_preamble() == b"yy"
