"""1 GiB through a server process keeps its memory bounded.

The server runs in a subprocess (so its RSS is its own) with a sink/source
app that streams: uploads are iterated piece by piece, downloads come from a
generator.  ``/proc/PID/status`` is sampled while our client pushes 1 GiB up
(``BodyIter``, then ``ChunkedBodyIter``) and pulls 1 GiB down both ways; the peak
(``VmHWM``) must stay within ``RSS_BOUND`` of the idle baseline.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from degu.base import BodyIter, ChunkedBodyIter
from degu.client import Client

GIB = 1 << 30
PIECE = 1 << 20
#: The most the server may grow while streaming 1 GiB (docs/explanation/limits.rst IO_SIZE pieces).
RSS_BOUND = 64 * 1024 * 1024

SERVER = """
import sys
from degu.server import Server

def app(session, request, api):
    body = request.body
    if body is not None:
        total = 0
        if body.chunked:
            for _ext, data in body:
                total += len(data)
        else:
            for piece in body:
                total += len(piece)
        return (200, 'OK', {}, str(total).encode())
    size = int(request.path[-1])
    piece = b'd' * 1048576
    def source():
        for _ in range(size // len(piece)):
            yield piece
    if request.path[0] == 'chunked':
        chunks = ((None, p) for p in (*source(), b''))
        return (200, 'OK', {}, api.ChunkedBodyIter(chunks))
    return (200, 'OK', {}, api.BodyIter(source(), size))

server = Server(('127.0.0.1', 0), app, timeout=30)
print(repr(server.address), flush=True)
server.serve_forever()
"""


def status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{key} not in /proc/{pid}/status")


def pieces(total: int) -> Iterator[bytes]:
    piece = b"u" * PIECE
    for _ in range(total // PIECE):
        yield piece


@pytest.fixture
def server_process() -> Iterator[tuple[subprocess.Popen[bytes], Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, env=dict(os.environ)
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded by the pytest timeout
        assert line, "server process did not start"
        yield proc, ast.literal_eval(line.decode())
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.slow
def test_1GiB_up_and_down_keeps_server_rss_bounded(
    server_process: tuple[subprocess.Popen[bytes], Any],
) -> None:
    proc, address = server_process
    client = Client(address, timeout=30)
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            samples.append(status_kib(proc.pid, "VmRSS"))

    with client.connect() as conn:
        # Warm up every code path once, then take the idle baseline.
        assert (
            conn.put("/", {}, BodyIter(pieces(PIECE), PIECE)).body.read()
            == b"%d" % PIECE
        )
        r = conn.get(f"/{PIECE}", {})
        assert sum(len(p) for p in r.body) == PIECE
        baseline = status_kib(proc.pid, "VmRSS") * 1024
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            r = conn.put("/", {}, BodyIter(pieces(GIB), GIB))
            assert r.body.read() == b"%d" % GIB
            chunks = ((None, p) for p in (*pieces(GIB), b""))
            r = conn.post("/", {}, ChunkedBodyIter(chunks))
            assert r.body.read() == b"%d" % GIB
            r = conn.get(f"/{GIB}", {})
            assert r.headers["content-length"] == GIB
            received = 0
            for piece in r.body:
                received += len(piece)
            assert received == GIB
            r = conn.get(f"/chunked/{GIB}", {})
            assert r.headers["transfer-encoding"] == "chunked"
            received = 0
            for _ext, data in r.body:
                received += len(data)
            assert received == GIB
        finally:
            stop.set()
            sampler.join(5)
    peak = status_kib(proc.pid, "VmHWM") * 1024
    assert samples, "no RSS samples taken"
    assert max(samples) * 1024 - baseline < RSS_BOUND
    assert peak - baseline < RSS_BOUND, (peak, baseline)
