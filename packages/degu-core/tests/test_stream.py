"""Tests of degu._stream: budgets, and the bounds streams put on one message."""

from __future__ import annotations

import socket
import threading
from time import monotonic
from typing import Any

import pytest

from degu._stream import (
    FOREVER,
    UNIX_SEND_MAX,
    Budget,
    ObjectStream,
    SocketStream,
    make_stream,
)


def test_Budget_grows_with_bytes_moved_at_min_rate() -> None:
    budget = Budget(2, 100)
    assert budget.left() == 2
    budget.moved = 50
    assert budget.left() == 2.5
    budget.waited = 2.4
    assert budget.left() == pytest.approx(0.1)


def test_Budget_check_never_allows_more_than_timeout_in_one_wait() -> None:
    budget = Budget(1, 10)
    budget.moved = 1000  # 100 s of credit
    assert budget.check() == 1
    budget.waited = 101
    with pytest.raises(TimeoutError, match="^timed out$"):
        budget.check()


def test_Budget_without_min_rate_is_a_plain_deadline() -> None:
    budget = Budget(1)
    budget.moved = 10**9
    budget.waited = 0.5
    assert budget.left() == 0.5
    assert "moved=1000000000" in repr(budget)


def test_SocketStream_send_to_a_peer_that_never_reads_times_out() -> None:
    a, b = socket.socketpair()
    with a, b:
        stream = SocketStream(a, 5)
        start = monotonic()
        with pytest.raises(TimeoutError):
            stream.send_all(b"x" * (64 << 20), Budget(0.3, 1 << 30))
        # One wait without progress ends it, whatever the credit earned.
        assert monotonic() - start < 3


def _trickle_reader(sock: socket.socket, stop: threading.Event, rate: int) -> None:
    """Read *rate* bytes about every 0.1 s until *stop* or EOF."""
    while not stop.wait(0.1):
        try:
            if not sock.recv(rate // 10):
                return
        except OSError:
            return


@pytest.mark.parametrize("family", [socket.AF_UNIX, socket.AF_INET])
def test_SocketStream_reader_slower_than_min_rate_is_cut_off(family: int) -> None:
    """A peer reading well below min_rate ends the write (TCP and AF_UNIX)."""
    if family == socket.AF_UNIX:
        a, b = socket.socketpair()
    else:
        with socket.create_server(("127.0.0.1", 0)) as lsock:
            b = socket.create_connection(lsock.getsockname())
            a = lsock.accept()[0]
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stop = threading.Event()
    thread = threading.Thread(target=_trickle_reader, args=(b, stop, 20000))
    thread.start()
    try:
        with a, b:
            stream = SocketStream(a, 5)
            budget = Budget(0.5, 1 << 20)  # wants 1 MiB/s; gets ~20 KB/s
            start = monotonic()
            with pytest.raises(TimeoutError):
                stream.send_all(b"y" * (256 << 20), budget)
            elapsed = monotonic() - start
            # Cut off once waiting exceeds 0.5 s + what was sent at 1 MiB/s.
            assert elapsed < 0.5 + budget.moved / (1 << 20) + 3
            assert budget.moved < 64 << 20
    finally:
        stop.set()
        thread.join(5)


def test_SocketStream_sends_AF_UNIX_in_pieces_one_kernel_buffer_each() -> None:
    """On AF_UNIX, SO_SNDTIMEO bounds a send only if it fits one buffer."""
    a, b = socket.socketpair()
    sizes: list[int] = []
    with a, b:
        stream = SocketStream(a, 5)
        real = stream._send

        def send(data: Any) -> int:
            sizes.append(len(data))
            n: int = real(data)
            return n

        stream._send = send  # type: ignore[misc]
        done = threading.Event()

        def drain() -> None:
            got = 0
            while got < 300000:
                got += len(b.recv(65536))
            done.set()

        thread = threading.Thread(target=drain)
        thread.start()
        stream.send_all(b"z" * 300000, Budget(5))
        thread.join(5)
        assert done.is_set()
    assert max(sizes) <= UNIX_SEND_MAX
    assert sum(sizes) >= 300000


def test_SocketStream_recv_waits_at_most_the_budget() -> None:
    a, b = socket.socketpair()
    with a, b:
        stream = SocketStream(a, 30)
        budget = Budget(0.2)
        start = monotonic()
        with pytest.raises(TimeoutError):
            stream.recv_into(memoryview(bytearray(10)), budget)
        assert 0.15 <= monotonic() - start < 2
        assert 0.15 <= budget.waited < 2
        b.sendall(b"hi")
        buf = bytearray(10)
        assert stream.recv_into(memoryview(buf), Budget(1)) == 2
        assert stream.recv_nowait(memoryview(buf)) is None


def test_SocketStream_without_timeout_waits_forever_in_the_kernel() -> None:
    a, b = socket.socketpair()
    with a, b:
        SocketStream(a, FOREVER)
        raw = a.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
        assert raw == bytes(16)  # a zero timeval: no kernel timeout


class _Liar:
    def __init__(self, sent: Any) -> None:
        self.sent = sent

    def recv_into(self, buf: Any) -> Any:
        return self.sent

    def send(self, data: Any) -> Any:
        return self.sent

    def close(self) -> None:
        pass


@pytest.mark.parametrize("value", [-1, 11, "3", None])
def test_ObjectStream_checks_what_a_socket_like_object_returns(value: Any) -> None:
    stream = ObjectStream(_Liar(value))
    with pytest.raises(ValueError, match="need 0 <= received <= 10"):
        stream.recv_into(memoryview(bytearray(10)), Budget(1))
    with pytest.raises(ValueError, match="need 0 < wrote <= 3"):
        stream.send_all(b"abc", Budget(1))


def test_make_stream_picks_by_socket_type() -> None:
    a, b = socket.socketpair()
    with a, b:
        assert type(make_stream(a, 5)) is SocketStream
        assert type(make_stream(_Liar(0), 5)) is ObjectStream


def test_SocketStream_recv_within_waits_at_most_seconds_and_keeps_the_timeout() -> None:
    a, b = socket.socketpair()
    with a, b:
        stream = SocketStream(a, 30)
        buf = memoryview(bytearray(10))
        start = monotonic()
        with pytest.raises(TimeoutError, match="^timed out$"):
            stream.recv_within(buf, 0.2)
        assert 0.15 <= monotonic() - start < 2
        # The kernel timeout stays set for the next wait between messages.
        raw = a.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
        assert raw == socket_timeval(0.2)
        b.sendall(b"hi")
        assert stream.recv_within(buf, 0.2) == 2
        assert bytes(buf[:2]) == b"hi"
        b.close()
        assert stream.recv_within(buf, 0.2) == 0


def socket_timeval(seconds: float) -> bytes:
    import struct

    return struct.pack("ll", int(seconds), round(seconds % 1 * 1_000_000))


def _recording_send(stream: SocketStream) -> list[tuple[int, tuple[Any, ...]]]:
    calls: list[tuple[int, tuple[Any, ...]]] = []
    real = stream._send

    def send(data: Any, *flags: Any) -> int:
        calls.append((len(data), flags))
        n: int = real(data, *flags)
        return n

    stream._send = send  # type: ignore[misc]
    return calls


def test_SocketStream_small_send_is_one_call_that_cannot_block() -> None:
    a, b = socket.socketpair()
    with a, b:
        stream = SocketStream(a, 5)
        calls = _recording_send(stream)
        budget = Budget(5)
        stream.send_all(b"hello", budget)
        assert calls == [(5, (socket.MSG_DONTWAIT,))]
        assert (budget.moved, budget.waited) == (5, 0.0)
        assert b.recv(10) == b"hello"


def test_SocketStream_send_waits_within_budget_once_the_buffer_is_full() -> None:
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    data = b"w" * UNIX_SEND_MAX
    got = bytearray()

    def drain() -> None:
        while len(got) < len(data) and (chunk := b.recv(65536)):
            got.extend(chunk)

    with a, b:
        stream = SocketStream(a, 5)
        calls = _recording_send(stream)
        thread = threading.Thread(target=drain)
        thread.start()
        budget = Budget(5)
        stream.send_all(data, budget)
        thread.join(5)
        assert got == data
        assert budget.moved == len(data)
        # First a send that cannot block, then sends bounded by the kernel.
        assert calls[0][1] == (socket.MSG_DONTWAIT,)
        assert calls[0][0] == len(data) > sum(n for n, f in calls[1:] if not f) > 0


def test_SocketStream_send_with_a_spent_budget_times_out_without_sending() -> None:
    a, b = socket.socketpair()
    with a, b:
        stream = SocketStream(a, 5)
        budget = Budget(0.1)
        budget.waited = 0.2
        with pytest.raises(TimeoutError):
            stream.send_all(b"late", budget)
        assert budget.moved == 0
        assert stream.recv_nowait(memoryview(bytearray(10))) is None
        b.setblocking(False)
        with pytest.raises(BlockingIOError):
            b.recv(10)


def test_ObjectStream_recv_within_is_a_budgeted_recv() -> None:
    stream = ObjectStream(_Liar(3))
    assert stream.recv_within(memoryview(bytearray(10)), 0.5) == 3
    with pytest.raises(ValueError, match="need 0 <= received <= 2"):
        stream.recv_within(memoryview(bytearray(2)), 0.5)


def test_TLSStream_recv_within_waits_at_most_seconds() -> None:
    from degu._sslctx import build_client_sslctx, build_server_sslctx
    from degu._stream import TLSStream
    from degu._temppki import TempPKI

    pki = TempPKI()
    a, b = socket.socketpair()
    server_ctx = build_server_sslctx(pki.server_sslconfig)
    client_ctx = build_client_sslctx(pki.client_sslconfig)
    with server_ctx.wrap_socket(
        a, server_side=True, do_handshake_on_connect=False
    ) as s:
        c = client_ctx.wrap_socket(b, do_handshake_on_connect=False)
        with c:
            thread = threading.Thread(target=c.do_handshake)
            thread.start()
            s.do_handshake()
            thread.join(5)
            stream = TLSStream(s)
            buf = memoryview(bytearray(100))
            start = monotonic()
            with pytest.raises(TimeoutError, match="^timed out$"):
                stream.recv_within(buf, 0.2)
            assert 0.15 <= monotonic() - start < 2
            c.sendall(b"onetwo")  # one record
            assert stream.recv_within(buf[:3], 1) == 3
            # The rest is decrypted, in the TLS layer: no wait for the kernel.
            start = monotonic()
            assert stream.recv_within(buf[3:6], 5) == 3
            assert monotonic() - start < 2
            assert bytes(buf[:6]) == b"onetwo"
