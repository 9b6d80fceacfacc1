"""Shared fixtures of the degu-core tests: a fake socket and a live server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from degu.server import Server, SSLServer


class FakeSocket:
    """Feeds ``recv_into`` from a list of byte chunks; records what is sent.

    Each ``recv_into`` returns at most one chunk (so a list of 1-byte chunks
    replays a message one byte at a time), then ``b''`` (EOF).
    """

    def __init__(self, chunks: list[bytes] | bytes = b"", *, split: int = 0) -> None:
        if isinstance(chunks, bytes):
            if split:
                chunks = [chunks[i : i + split] for i in range(0, len(chunks), split)]
            else:
                chunks = [chunks] if chunks else []
        self.chunks = list(chunks)
        self.sent = bytearray()
        self.closed = False
        self.timeouts: list[float | None] = []
        self.recv_calls = 0

    def recv_into(self, buf: Any) -> int:
        self.recv_calls += 1
        if not self.chunks:
            return 0
        chunk = self.chunks[0]
        n = min(len(buf), len(chunk))
        buf[:n] = chunk[:n]
        if n < len(chunk):
            self.chunks[0] = chunk[n:]
        else:
            self.chunks.pop(0)
        return n

    def send(self, data: Any) -> int:
        self.sent += data
        return len(data)

    def sendall(self, data: Any) -> None:
        self.sent += data

    def settimeout(self, value: float | None) -> None:
        self.timeouts.append(value)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_socket() -> type[FakeSocket]:
    return FakeSocket


class LiveServer:
    """A server running serve_forever() in a thread; shut down on exit."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> Any:
        return self.server.address

    def stop(self, timeout: float | None = 5) -> None:
        self.server.shutdown(timeout)
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """``start(address, app, **options)``: a running ``Server``."""
    started: list[LiveServer] = []

    def start(address: Any, app: Callable[..., Any], **options: Any) -> LiveServer:
        live = LiveServer(Server(address, app, **options))
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


@pytest.fixture
def live_sslserver() -> Iterator[Callable[..., LiveServer]]:
    """``start(sslctx, address, app, **options)``: a running ``SSLServer``."""
    started: list[LiveServer] = []

    def start(
        sslctx: Any, address: Any, app: Callable[..., Any], **options: Any
    ) -> LiveServer:
        live = LiveServer(SSLServer(sslctx, address, app, **options))
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()
