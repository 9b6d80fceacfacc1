"""Kernel-enforced socket timeouts (degu._timeouts) and big reads over them."""

from __future__ import annotations

import socket
import threading
from time import monotonic

import pytest

from degu._reader import Reader
from degu._timeouts import KernelWriter, set_kernel_timeouts, set_recv_timeout


def test_set_kernel_timeouts_makes_a_blocking_socket_with_both_timeouts() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.settimeout(7)
        set_kernel_timeouts(a, 1.25)
        assert a.gettimeout() is None
        for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
            raw = a.getsockopt(socket.SOL_SOCKET, option, 16)
            seconds = int.from_bytes(raw[:8], "little")
            seconds += int.from_bytes(raw[8:], "little") / 1e6
            assert 1.2 < seconds < 1.3  # the kernel keeps it in ticks


def test_set_recv_timeout_never_rounds_down_to_wait_forever() -> None:
    a, b = socket.socketpair()
    with a, b:
        set_recv_timeout(a, 1e-9)  # a zero timeval would mean no timeout
        start = monotonic()
        with pytest.raises(BlockingIOError):
            a.recv(1)
        assert monotonic() - start < 1


def test_KernelWriter_write_to_a_peer_that_never_reads_times_out() -> None:
    a, b = socket.socketpair()
    with a, b:
        set_kernel_timeouts(a, 0.3)
        writer = KernelWriter(a, 0.3)
        assert writer.write(b"x" * 10) == 10
        start = monotonic()
        with pytest.raises(TimeoutError, match="^timed out$"):
            writer.write(b"y" * (16 << 20))
        assert monotonic() - start < 3


def test_KernelWriter_bounds_the_whole_write_against_a_trickling_reader() -> None:
    """Over TCP a reader freeing a little room now and then cannot stretch a write.

    (Not over AF_UNIX, where the kernel restarts SO_SNDTIMEO for each buffer
    it allocates; the server streams big bodies there with Python timeouts.)
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        b = socket.create_connection(listener.getsockname())
        a = listener.accept()[0]
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.02):
            try:
                b.recv(65536)
            except OSError:
                return

    reader = threading.Thread(target=trickle)
    with a, b:
        set_kernel_timeouts(a, 0.5)
        writer = KernelWriter(a, 0.5)
        reader.start()
        try:
            start = monotonic()
            with pytest.raises(TimeoutError):
                writer.write(b"z" * (256 << 20))
            assert monotonic() - start < 3
        finally:
            stop.set()
            reader.join(5)


def test_KernelWriter_restores_the_send_timeout_after_a_short_write() -> None:
    a, b = socket.socketpair()
    with a, b:
        set_kernel_timeouts(a, 0.2)
        before = a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16)
        with pytest.raises(TimeoutError):
            KernelWriter(a, 0.2).write(b"y" * (16 << 20))
        assert a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16) == before


def test_Reader_big_read_joins_buffered_bytes_and_later_sends() -> None:
    a, b = socket.socketpair()
    payload = bytes(range(256)) * 8192  # 2 MiB
    with a, b:
        set_kernel_timeouts(a, 5)
        reader = Reader(a, 5, kernel_timeouts=True)
        b.sendall(b"P\r\n\r\n" + payload[:1000])
        assert reader.read_preamble("e") == b"P"

        def send_rest() -> None:
            for i in range(1000, len(payload), 300000):
                b.sendall(payload[i : i + 300000])

        sender = threading.Thread(target=send_rest)
        sender.start()
        try:
            assert reader.read(1 << 20) == payload[: 1 << 20]
            assert reader.read(1 << 20) == payload[1 << 20 :]
        finally:
            sender.join(5)


def test_Reader_big_read_stops_short_at_eof() -> None:
    a, b = socket.socketpair()
    with a, b:
        reader = Reader(a)
        b.sendall(b"q" * 10000)
        b.shutdown(socket.SHUT_WR)
        assert reader.read(1 << 20) == b"q" * 10000
        assert reader.read(1 << 20) == b""
