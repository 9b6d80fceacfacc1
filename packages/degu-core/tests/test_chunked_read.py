"""ChunkedBody.read() from a Degu reader against readchunk(), chunk by chunk.

read() parses the chunks it finds whole in the reader's buffer in place
(degu._bodies._scan) and leaves the rest to the per-chunk path; both must
agree on every byte, every error message and every status, wherever the
reads happen to split the stream.
"""

from __future__ import annotations

import io
import random
from contextlib import nullcontext
from typing import Any

import pytest

from degu._bodies import ChunkedBody
from degu._limits import (
    CHUNK_DATA_PER_FRAMING_BYTE,
    CHUNK_FRAMING_ALLOWANCE,
    MAX_IO_SIZE,
)
from degu._reader import Reader
from degu._stream import Budget, ObjectStream

TAIL = b"GET /next HTTP/1.1\r\n\r\n"


def reader_of(fake_socket: Any, src: bytes, pieces: list[int]) -> Reader:
    """A Reader receiving *src* in pieces of the given sizes (then the rest)."""
    chunks = []
    pos = 0
    for size in pieces:
        if pos >= len(src):
            break
        chunks.append(src[pos : pos + size])
        pos += size
    if pos < len(src):
        chunks.append(src[pos:])
    reader = Reader(ObjectStream(fake_socket(chunks)))
    reader.budget = Budget(5)
    reader.defer_close = True  # as on the server: keep what follows readable
    return reader


def outcome(reader: Reader, whole: bool) -> tuple[Any, ...]:
    body = ChunkedBody(reader)
    try:
        if whole:
            data = body.read()
        else:
            parts = []
            while body.state < 2:
                parts.append(body.readchunk()[1])
            data = b"".join(parts)
    except ValueError as e:
        return ("error", str(e), reader.error_status, body.state)
    rest = reader.read(len(TAIL)) if not reader.closed else b""
    return ("ok", data, body.state, rest)


def same_both_ways(fake_socket: Any, src: bytes, pieces: list[int]) -> Any:
    fast = outcome(reader_of(fake_socket, src, pieces), whole=True)
    slow = outcome(reader_of(fake_socket, src, pieces), whole=False)
    assert fast == slow
    return fast


def unit(size: int, *, upper: bool = False, ext: bytes = b"") -> bytes:
    line = (b"%X" if upper else b"%x") % size + ext
    return line + b"\r\n" + bytes([0x61 + size % 26]) * size + b"\r\n"


def random_pieces(rng: random.Random, total: int) -> list[int]:
    pieces = []
    while total > 0:
        size = rng.choice((1, 2, 7, 100, 4096, 30000, 70000))
        pieces.append(size)
        total -= size
    return pieces


def test_read_agrees_with_readchunk_on_random_good_bodies(fake_socket: Any) -> None:
    rng = random.Random(11)
    for _ in range(60):
        units = []
        for _ in range(rng.randrange(0, 400)):
            size = rng.choice(
                (1, 2, 15, 16, 255, 256, 4095, 70000, rng.randrange(1, 600))
            )
            ext = b";k=v" if rng.random() < 0.05 else b""
            units.append(unit(size, upper=rng.random() < 0.2, ext=ext))
        src = b"".join(units) + b"0\r\n\r\n" + TAIL
        result = same_both_ways(fake_socket, src, random_pieces(rng, len(src)))
        assert result[0] == "ok" and result[2:] == (2, TAIL)


SMALL = unit(100) * 300  # fills several buffers: errors land mid-scan

BAD_ENDINGS = [
    b"05\r\nhello\r\n0\r\n\r\n",
    b"0x5\r\nhello\r\n0\r\n\r\n",
    b" 5\r\nhello\r\n0\r\n\r\n",
    b"\r\nhello\r\n0\r\n\r\n",
    b"5\nhello\r\n0\r\n\r\n",
    b"5;a=b;c=d\r\nhello\r\n0\r\n\r\n",
    b"5;a=" + b"b" * 5000 + b"\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhelloXX0\r\n\r\n",
    b"5\r\nhello\n0\r\n\r\n",
    b"3\r\nhello\r\n0\r\n\r\n",
    b"1000001\r\n",
    b"5\r\nhel",
    b"0\r\n",
    b"0\r\nX-Trailer: a\r\n\r\n",
    b"5\r\nhello",
    b"5",
]


@pytest.mark.parametrize("ending", BAD_ENDINGS)
def test_read_fails_like_readchunk_at_the_same_chunk(
    fake_socket: Any, ending: bytes
) -> None:
    rng = random.Random(13)
    src = SMALL + ending
    for pieces in ([len(src)], [1] * 50, random_pieces(rng, len(src))):
        result = same_both_ways(fake_socket, src, pieces)
        assert result[0] == "error"
        assert result[2] in (400, None) and result[3] == 3


def test_read_refuses_framing_past_the_allowance_at_its_edge(
    fake_socket: Any,
) -> None:
    # k one-byte chunks and the last chunk: 5 * k + 5 bytes of framing for k
    # bytes of data (docs/explanation/limits.rst); the largest k allowed.
    per = CHUNK_DATA_PER_FRAMING_BYTE
    k = next(
        n
        for n in range(CHUNK_FRAMING_ALLOWANCE, 0, -1)
        if 5 * n + 5 <= CHUNK_FRAMING_ALLOWANCE + n // per
    )
    for n, ok in ((k, True), (k + 1, False)):
        src = unit(1) * n + b"0\r\n\r\n" + TAIL
        result = same_both_ways(fake_socket, src, [32768] * (len(src) // 32768 + 1))
        if ok:
            assert result == ("ok", b"b" * n, 2, TAIL)
        else:
            assert result[0] == "error" and result[2] == 400
            assert result[1] == (
                "chunk framing exceeds its allowance: "
                f"{5 * n + 5} bytes of framing for {n} bytes of data"
            )


def test_read_takes_a_long_body_of_the_smallest_steady_chunks(
    fake_socket: Any,
) -> None:
    # Past the constant allowance, chunks this small pay for their framing.
    per = CHUNK_DATA_PER_FRAMING_BYTE
    size = next(n for n in range(1, 4096) if n >= per * (len(b"%x" % n) + 4))
    count = 3 * CHUNK_FRAMING_ALLOWANCE // (len(b"%x" % size) + 4)
    src = unit(size) * count + b"0\r\n\r\n" + TAIL
    result = same_both_ways(fake_socket, src, [32768] * (len(src) // 32768 + 1))
    assert result[0] == "ok" and len(result[1]) == size * count


def test_read_refuses_more_than_MAX_IO_SIZE_at_the_same_chunk(
    fake_socket: Any,
) -> None:
    big = 0x100000
    # Exactly MAX_IO_SIZE, the last bytes in small chunks read in place.
    head = unit(big) * (MAX_IO_SIZE // big - 1) + unit(big - 300) + unit(100) * 3
    for extra, ok in ((b"", True), (unit(1), False)):
        src = head + extra + b"0\r\n\r\n" + TAIL
        # readchunk() has no total to check: compare with read() on a file.
        result = outcome(reader_of(fake_socket, src, [65536] * 300), whole=True)
        with pytest.raises(ValueError) if not ok else nullcontext():
            assert len(ChunkedBody(io.BytesIO(src)).read()) == MAX_IO_SIZE
        if ok:
            assert result[0] == "ok" and len(result[1]) == MAX_IO_SIZE
        else:
            assert result[1:3] == (
                f"chunks exceed MAX_IO_SIZE: {MAX_IO_SIZE + 1} > {MAX_IO_SIZE}",
                413,
            )


def test_read_returns_a_lone_big_chunk_without_copying_it(fake_socket: Any) -> None:
    src = unit(200000) + b"0\r\n\r\n"
    reader = reader_of(fake_socket, src, [100, 100000])
    data = ChunkedBody(reader).read()
    assert data == bytes([0x61 + 200000 % 26]) * 200000
