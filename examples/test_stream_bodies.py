"""Tests for examples/stream_bodies.py: streaming both ways in bounded memory."""

from __future__ import annotations

import hashlib
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# examples/ is a folder of scripts, not a package: make the example importable.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import stream_bodies  # noqa: E402
from stream_bodies import (  # noqa: E402
    LINES,
    SIZE,
    build_app,
    chunks_of,
    download_to_file,
    generate,
    read_lines,
    upload_file,
    upload_generated,
)

from degu.base import BodyIter, ChunkedBodyIter  # noqa: E402
from degu.client import Client  # noqa: E402
from degu.server import Server  # noqa: E402

# The server fixtures come from Degu's opt-in pytest plugin
# (docs/howto/pytest-fixtures.rst); the tests below only name the app.
pytest_plugins = ["degu.pytest_plugin"]

#: Size of the file uploaded in the memory test (three times SIZE).
BIG = 3 * SIZE
#: Most traced memory a transfer may need: a few 1 MiB pieces, not the body.
BOUND = 8 * 1024 * 1024
EXPECTED = hashlib.sha256(b"".join(generate(SIZE))).hexdigest()


@pytest.fixture
def degu_app() -> Any:
    return build_app()


@pytest.fixture
def degu_server_options() -> dict[str, Any]:
    return {"timeout": 10}


@pytest.fixture
def conn(degu_server: Any) -> Iterator[Any]:
    with degu_server.client(timeout=10).connect() as c:
        yield c


class Peak:
    """The peak of traced Python memory while the block runs."""

    def __enter__(self) -> Peak:
        tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def test_main_prints_matching_results(capsys: pytest.CaptureFixture[str]) -> None:
    stream_bodies.main()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"file upload: {{'size': {SIZE}, 'sha256': '{EXPECTED}'}}"
    assert out[1] == f"chunked upload: {{'size': {SIZE}, 'sha256': '{EXPECTED}'}}"
    assert out[2:] == [
        f"downloaded to file: {SIZE} bytes",
        "lines: 1000 checksum ok: True",
    ]


def test_file_upload_in_bounded_memory(conn: Any, tmp_path: Path) -> None:
    path = tmp_path / "up.bin"
    with path.open("wb") as f:
        for data in generate(BIG):
            f.write(data)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    with Peak() as peak:
        assert upload_file(conn, str(path)) == {"size": BIG, "sha256": expected}
    # Client and server share this process: a whole copy would show up.
    # What remains is a few 1 MiB pieces in flight, whatever the size.
    assert peak.bytes < BOUND


def test_chunked_upload_in_bounded_memory(conn: Any) -> None:
    with Peak() as peak:
        assert upload_generated(conn) == {"size": SIZE, "sha256": EXPECTED}
    assert peak.bytes < BOUND


def test_download_to_file_in_bounded_memory(conn: Any, tmp_path: Path) -> None:
    path = tmp_path / "down.bin"
    with Peak() as peak:
        assert download_to_file(conn, str(path)) == SIZE
    assert peak.bytes < BOUND
    assert hashlib.sha256(path.read_bytes()).hexdigest() == EXPECTED


def test_lines_end_with_their_checksum(conn: Any) -> None:
    assert read_lines(conn) == (LINES, True)
    assert read_lines(conn) == (LINES, True)  # keep-alive: same connection again


def test_chunks_of_skips_empty_pieces() -> None:
    assert list(chunks_of(iter([b"a", b"", b"b"]))) == [
        (None, b"a"),
        (None, b"b"),
        (None, b""),
    ]


def test_empty_bodies(conn: Any) -> None:
    empty = hashlib.sha256(b"").hexdigest()
    r = conn.put("/upload", {}, BodyIter([], 0))
    assert r.body.read() == b'{"size": 0, "sha256": "%s"}' % empty.encode()
    r = conn.put("/upload", {}, ChunkedBodyIter([(None, b"")]))
    assert r.body.read() == b'{"size": 0, "sha256": "%s"}' % empty.encode()


def test_a_short_BodyIter_never_reaches_the_server_app() -> None:
    # The client checks the promise while sending: a source that runs short
    # raises, and the connection is closed rather than left half-written.
    server = Server(("127.0.0.1", 0), build_app(), timeout=10)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = Client(server.address, timeout=10).connect()
        with pytest.raises(ValueError, match="deceeds content_length: 3 < 4"):
            conn.put("/upload", {}, BodyIter([b"abc"], 4))
        assert conn.closed
    finally:
        server.shutdown()
        thread.join(10)
