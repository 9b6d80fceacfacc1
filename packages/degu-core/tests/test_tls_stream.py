"""TLSStream: what it reads and sends, and how long a TLS peer may keep it waiting.

Each test connects an ``SSLSocket`` (the side under test, as the server's I/O
loop or an SSLClient hands it to a TLSStream) to a peer over a socketpair.
Where the peer must misbehave below TLS (trickle a record byte by byte, stop
reading), it is an ``SSLObject`` whose records the test moves by hand.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import monotonic, sleep
from typing import Any

import pytest

from degu._sslctx import build_client_sslctx, build_server_sslctx
from degu._stream import Budget, TLSStream, _timeval, make_stream
from degu._temppki import TempPKI

TIMEOUT = 10  # bound for every join and handshake


@pytest.fixture(scope="module")
def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    pki = TempPKI()
    return (
        build_server_sslctx(pki.server_sslconfig),
        build_client_sslctx(pki.client_sslconfig),
    )


def _server_side(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext], **options: Any
) -> tuple[ssl.SSLSocket, socket.socket]:
    """A server SSLSocket (*options* to wrap_socket) and its peer's socket."""
    a, b = socket.socketpair()
    a.settimeout(TIMEOUT)
    b.settimeout(TIMEOUT)
    server = contexts[0].wrap_socket(
        a, server_side=True, do_handshake_on_connect=False, **options
    )
    return server, b


def _handshake(server: ssl.SSLSocket, client_handshake: Callable[[], None]) -> None:
    thread = threading.Thread(target=server.do_handshake)
    thread.start()
    client_handshake()
    thread.join(TIMEOUT)


@contextmanager
def tls_pair(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> Iterator[tuple[ssl.SSLSocket, ssl.SSLSocket]]:
    """(server, client) SSLSockets, handshake done, over a socketpair."""
    server, b = _server_side(contexts)
    client = contexts[1].wrap_socket(b, do_handshake_on_connect=False)
    with server, client:
        _handshake(server, client.do_handshake)
        yield server, client


class RawPeer:
    """A TLS client whose records the test sends and receives by hand."""

    def __init__(self, sock: socket.socket, client_ctx: ssl.SSLContext) -> None:
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = client_ctx.wrap_bio(self.incoming, self.outgoing)

    def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                self.flush()
                self.incoming.write(self.sock.recv(65536))
            else:
                self.flush()
                return

    def flush(self) -> None:
        if self.outgoing.pending:
            self.sock.sendall(self.outgoing.read())

    def record(self, data: bytes) -> bytes:
        """*data* encrypted: the bytes the peer would send for it."""
        self.tls.write(data)
        return self.outgoing.read()


@contextmanager
def raw_pair(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext], **options: Any
) -> Iterator[tuple[ssl.SSLSocket, RawPeer]]:
    """(server SSLSocket, RawPeer client), handshake done, over a socketpair."""
    server, b = _server_side(contexts, **options)
    peer = RawPeer(b, contexts[1])
    with server, b:
        _handshake(server, peer.handshake)
        yield server, peer


@contextmanager
def trickling(peer: RawPeer, data: bytes) -> Iterator[None]:
    """*peer* sends *data*'s record one byte every 20 ms, until the block ends."""
    record = peer.record(data)
    stop = threading.Event()

    def trickle() -> None:
        for i in range(len(record)):
            if stop.wait(0.02):
                return
            peer.sock.send(record[i : i + 1])

    thread = threading.Thread(target=trickle)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(TIMEOUT)


def test_make_stream_gives_an_SSLSocket_a_TLSStream(contexts: Any) -> None:
    with tls_pair(contexts) as (server, _):
        stream = make_stream(server, 5.0)
        assert type(stream) is TLSStream
        assert not server.getblocking() and server.gettimeout() == 0.0


def test_TLSStream_round_trip_moves_bytes_both_ways_and_counts_them(
    contexts: Any,
) -> None:
    with tls_pair(contexts) as (server, client):
        s, c = TLSStream(server), TLSStream(client)
        buf = memoryview(bytearray(100))
        sent = Budget(5)
        c.send_all(b"GET / HTTP/1.1\r\n\r\n", sent)
        assert sent.moved == 18
        received = Budget(5)
        assert s.recv_into(buf, received) == 18
        assert received.moved == 18
        s.send_all(memoryview(b"HTTP/1.1 200 OK\r\n\r\n"), Budget(5))
        assert c.recv_into(buf, Budget(5)) == 19
        assert bytes(buf[:19]) == b"HTTP/1.1 200 OK\r\n\r\n"


class _NoSSLObject:
    """An SSLSocket seen through a Python whose SSLSocket has no ``_sslobj``."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self._sock = sock

    def __getattr__(self, name: str) -> Any:
        if name == "_sslobj":
            raise AttributeError(name)
        return getattr(self._sock, name)


def test_TLSStream_without_the_private_SSL_object_uses_the_public_methods(
    contexts: Any,
) -> None:
    with tls_pair(contexts) as (server, client):
        s, c = TLSStream(_NoSSLObject(server)), TLSStream(_NoSSLObject(client))
        buf = memoryview(bytearray(100))
        c.send_all(b"GET / HTTP/1.1\r\n\r\n", Budget(5))
        assert s.recv_into(buf, Budget(5)) == 18
        assert s.pending() == 0
        s.send_all(b"HTTP/1.1 200 OK\r\n\r\n", Budget(5))
        assert c.recv_within(buf, 5.0) == 19
        assert s.recv_nowait(buf) is None
        with pytest.raises(TimeoutError):
            s.recv_into(buf, Budget(0.05))


def test_TLSStream_sends_a_message_bigger_than_the_socket_buffers(
    contexts: Any,
) -> None:
    """Writes that would block wait for the peer and go on where they stopped."""
    data = bytes(range(256)) * 8192  # 2 MiB, many times what a socketpair holds
    with tls_pair(contexts) as (server, client):
        s = TLSStream(server)
        got = bytearray()

        def read_all() -> None:
            while len(got) < len(data):
                got.extend(client.recv(65536))

        thread = threading.Thread(target=read_all)
        thread.start()
        budget = Budget(5)
        s.send_all(data, budget)
        thread.join(TIMEOUT)
        assert budget.moved == len(data)
        assert got == data


class CountingSSLObject:
    """Stands in for an SSLSocket's ``_sslobj``, counting reads that failed."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.failed_reads = 0

    def read(self, size: int, buf: memoryview) -> int:
        try:
            n: int = self.obj.read(size, buf)
        except ssl.SSLWantReadError:
            self.failed_reads += 1
            raise
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self.obj, name)


def test_TLSStream_waits_for_a_message_before_reading_it(contexts: Any) -> None:
    """A message's first read waits with poll(): no SSLWantReadError raised.

    Raising and catching it cost more than the poll() (bench/bench_tls.py).
    """
    with tls_pair(contexts) as (server, client):
        stream = TLSStream(server)
        counting = CountingSSLObject(server._sslobj)
        server._sslobj = counting  # type: ignore[assignment]
        timer = threading.Timer(0.2, client.sendall, (b"late request",))
        timer.start()
        buf = memoryview(bytearray(100))
        budget = Budget(5)
        assert stream.recv_into(buf, budget) == 12
        timer.join(TIMEOUT)
        assert counting.failed_reads == 0
        assert budget.waited >= 0.1  # the wait was charged to the message
        timer = threading.Timer(0.2, client.sendall, (b"next",))
        timer.start()
        assert stream.recv_within(buf, 5) == 4
        timer.join(TIMEOUT)
        assert counting.failed_reads == 0


@pytest.mark.parametrize("read", ["recv_into", "recv_within"])
def test_TLSStream_record_trickled_byte_by_byte_times_out_within_its_bound(
    contexts: Any, read: str
) -> None:
    """Bytes that keep coming buy no time: a message's budget, or the wait
    between messages, bounds the whole read, not each byte."""
    with raw_pair(contexts) as (server, peer), trickling(peer, b"x" * 1000):
        stream = TLSStream(server)
        buf = memoryview(bytearray(2000))
        budget = Budget(0.5)
        start = monotonic()
        with pytest.raises(TimeoutError, match="^timed out$"):
            if read == "recv_into":
                stream.recv_into(buf, budget)
            else:
                stream.recv_within(buf, 0.5)
        # recv_within: one poll(), then at most as long again for the record.
        assert 0.4 <= monotonic() - start < 3
        if read == "recv_into":
            assert budget.waited >= 0.5


def test_TLSStream_send_to_a_peer_that_never_reads_times_out(contexts: Any) -> None:
    with raw_pair(contexts) as (server, _):
        stream = TLSStream(server)
        start = monotonic()
        budget = Budget(0.3, 1 << 30)
        with pytest.raises(TimeoutError, match="^timed out$"):
            stream.send_all(b"x" * (64 << 20), budget)
        # One wait without progress ends it, whatever the credit earned.
        assert monotonic() - start < 3


def test_TLSStream_recv_nowait_gives_None_until_a_whole_record_is_there(
    contexts: Any,
) -> None:
    with raw_pair(contexts) as (server, peer):
        stream = TLSStream(server)
        buf = memoryview(bytearray(100))
        assert stream.recv_nowait(buf) is None
        record = peer.record(b"hello")
        # A socketpair queues the bytes at the peer within sendall(): no wait.
        peer.sock.sendall(record[:-1])
        assert stream.recv_nowait(buf) is None  # half a record decrypts nothing
        peer.sock.sendall(record[-1:])
        assert stream.recv_nowait(buf) == 5
        assert bytes(buf[:5]) == b"hello"


def test_TLSStream_peer_closing_without_close_notify_reads_as_EOF(
    contexts: Any,
) -> None:
    with raw_pair(contexts) as (server, peer):
        stream = TLSStream(server)
        peer.sock.shutdown(socket.SHUT_WR)  # TCP FIN, no TLS close_notify
        assert stream.recv_into(memoryview(bytearray(10)), Budget(5)) == 0
        assert stream.recv_within(memoryview(bytearray(10)), 5) == 0
        assert stream.recv_nowait(memoryview(bytearray(10))) == 0


def test_TLSStream_ragged_EOF_raises_when_the_socket_refuses_them(
    contexts: Any,
) -> None:
    with raw_pair(contexts, suppress_ragged_eofs=False) as (server, peer):
        stream = TLSStream(server)
        peer.sock.shutdown(socket.SHUT_WR)
        with pytest.raises(ssl.SSLEOFError):
            stream.recv_into(memoryview(bytearray(10)), Budget(5))


def test_TLSStream_peer_close_notify_reads_as_EOF(contexts: Any) -> None:
    with raw_pair(contexts) as (server, peer):
        stream = TLSStream(server)
        try:
            peer.tls.unwrap()
        except ssl.SSLWantReadError:
            pass  # sent our close_notify; theirs is not awaited
        peer.flush()
        assert stream.recv_into(memoryview(bytearray(10)), Budget(5)) == 0


def test_TLSStream_closed_raises_instead_of_using_a_stale_descriptor(
    contexts: Any,
) -> None:
    """Once closed, reads and writes fail: the descriptor may be another's now."""
    with tls_pair(contexts) as (server, _):
        stream = TLSStream(server)
        stream.close()
        stream.close()  # idempotent
        assert stream.pending() == 0
        buf = memoryview(bytearray(10))
        with pytest.raises(OSError):
            stream.recv_into(buf, Budget(1))
        with pytest.raises(OSError):
            stream.recv_within(buf, 1)
        with pytest.raises(OSError):
            stream.recv_nowait(buf)
        with pytest.raises(OSError):
            stream.send_all(b"x", Budget(1))
        stream.send_nowait(b"x")  # best effort: never raises


def test_TLSStream_shutdown_wakes_a_waiting_reader(contexts: Any) -> None:
    with tls_pair(contexts) as (server, _):
        stream = TLSStream(server)
        result: list[Any] = []

        def read() -> None:
            try:
                result.append(stream.recv_into(memoryview(bytearray(10)), Budget(30)))
            except OSError as e:
                result.append(e)

        thread = threading.Thread(target=read)
        thread.start()
        sleep(0.1)
        start = monotonic()
        stream.shutdown()
        thread.join(TIMEOUT)
        assert not thread.is_alive() and monotonic() - start < 5
        assert result == [0] or isinstance(result[0], OSError)
        stream.shutdown()  # idempotent


def test_blocking_SSLSocket_retries_past_its_kernel_timeout(contexts: Any) -> None:
    """Why TLSStream polls instead of blocking with SO_RCVTIMEO (Python 3.11+).

    On a blocking SSLSocket, ``_ssl`` retries ``SSL_read`` whenever the
    kernel timeout ends a ``read()`` with EAGAIN: the wait is unbounded.
    """
    with tls_pair(contexts) as (server, client):
        server.settimeout(None)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(0.1))
        result: list[Any] = []

        def read() -> None:
            try:
                result.append(server.recv(10))
            except Exception as e:
                result.append(e)

        thread = threading.Thread(target=read)
        thread.start()
        thread.join(0.6)  # six kernel timeouts
        still_waiting = thread.is_alive()
        client.sendall(b"late")
        thread.join(TIMEOUT)
        assert still_waiting
        assert result == [b"late"]
