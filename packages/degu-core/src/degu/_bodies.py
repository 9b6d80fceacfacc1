"""The four body classes (docs/reference/base.rst) and outgoing framing
(docs/explanation/wire.rst).

Bodies do I/O only through the file-like objects they are given: an input
body reads with ``rfile.readinto`` / ``rfile.readline`` (a ``degu._reader``
Reader when it comes from a Degu connection), an output body writes with
``wfile.write``.  Bytes on the wire are produced by ``degu._rendering`` and
interpreted by ``degu._parsing``.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator

from degu._checks import check_int, check_length, type_error
from degu._common import TYPE_CHECKING
from degu._limits import (
    CHUNK_DATA_PER_FRAMING_BYTE,
    CHUNK_FRAMING_ALLOWANCE,
    IO_SIZE,
    MAX_IO_SIZE,
    MAX_LINE_LEN,
)
from degu._parsing import parse_chunk_line
from degu._ranges import ContentRange, OpenRange, Range, SuffixRange
from degu._reader import Reader
from degu._rendering import check_chunk, render_chunk_line

if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "API",
    "BODY_CONSUMED",
    "BODY_ERROR",
    "BODY_READY",
    "BODY_STARTED",
    "Body",
    "BodyIter",
    "ChunkedBody",
    "ChunkedBodyIter",
    "Response",
    "api",
    "failed_read_answer",
    "framing_without_body",
    "set_output_framing",
    "write_all",
]

#: A body's states, one-way (docs/reference/base.rst, ``Body.state``).
BODY_READY = 0
BODY_STARTED = 1
BODY_CONSUMED = 2
BODY_ERROR = 3
STATE_NAMES = ("BODY_READY", "BODY_STARTED", "BODY_CONSUMED", "BODY_ERROR")

Chunk = tuple[tuple[str, str] | None, bytes]

#: Distinct short size lines ChunkedBody.read() remembers per body.
_SIZE_LINES_MAX = 1024
#: Chunks at least this big are kept as their own part by ChunkedBody.read().
_OWN_PART_MIN = 65536
#: ChunkedBody.read() gathers small chunks in buffers of about this size, so
#: its peak memory is twice the data plus one of them: one buffer for it all
#: would grow by reallocation, with slack, and be copied once more at the end.
_PART_SIZE = 1048576


def _method(obj: Any, name: str) -> Callable[..., Any]:
    # A missing attribute raises AttributeError by itself (docs/reference/base.rst).
    method = getattr(obj, name)
    if callable(method):
        return method  # type: ignore[no-any-return]
    kind = "wfile" if name == "write" else "rfile"
    raise TypeError(f"{kind}.{name}() is not callable")


def write_all(write: Callable[[Any], int], buf: Any) -> int:
    """Call ``write`` until all of *buf* is written; return ``len(buf)``."""
    size = len(buf)
    n = write(buf)
    if n == size and type(n) is int:
        return size
    mv = memoryview(buf)
    done = 0
    while True:
        if type(n) is not int:  # TypeError, as Degu 0.19 raises
            type_error("wfile.write() result", int, n)
        if not 0 < n <= size - done:
            raise ValueError(f"need 0 < wrote <= {size - done}; got {n!r}")
        done += n
        if done == size:
            return size
        n = write(mv[done:])


def _read_exact(readinto: Callable[[Any], int], size: int) -> bytes:
    buf = bytearray(size)
    mv = memoryview(buf)
    got = 0
    while got < size:
        n = readinto(mv[got:])
        if type(n) is not int or not 0 <= n <= size - got:
            raise ValueError(f"need 0 <= received <= {size - got}; got {n!r}")
        if n == 0:
            raise ValueError(f"expected to read {size} bytes, but received {got}")
        got += n
    return bytes(buf)


def state_error(cls_name: str, state: int) -> ValueError:
    """The error for a body used in the wrong *state* (docs/reference/base.rst)."""
    if state == BODY_STARTED:
        what = "cannot start another operation"
    elif state == BODY_CONSUMED:
        what = "already consumed"
    else:
        what = "cannot be used"
    return ValueError(f"{cls_name}.state == {STATE_NAMES[state]}, {what}")


class _InputBody:
    __slots__ = ("_reader", "_readinto", "_rfile", "_state")

    def __init__(self, rfile: Any) -> None:
        self._readinto = _method(rfile, "readinto")
        self._rfile = rfile
        self._reader = rfile if type(rfile) is Reader else None
        self._state = BODY_READY

    @property
    def rfile(self) -> Any:
        """The file-like object (or Degu reader) the body reads from."""
        return self._rfile

    @property
    def state(self) -> int:
        """0 READY, 1 STARTED, 2 CONSUMED or 3 ERROR (one-way)."""
        return self._state

    def _fail(self, status: int | None = None) -> None:
        # An error poisons the body and the connection under it; *status* is
        # the answer a server owes the peer for it (400 bad framing, 413 too
        # much), None when the peer is gone or too slow.
        self._state = BODY_ERROR
        if self._reader is not None:
            self._reader.fail(status)

    def _read(self, size: int) -> bytes:
        try:
            if self._reader is None:
                return _read_exact(self._readinto, size)
            data = self._reader.read(size)
            if len(data) != size:
                raise ValueError(
                    f"expected to read {size} bytes, but received {len(data)}"
                )
            return data
        except BaseException:
            self._fail()
            raise

    def _consumed(self) -> None:
        self._state = BODY_CONSUMED
        # A client response carrying "connection: close" ends the connection
        # once its body is fully read (docs/explanation/rgi.rst).
        reader = self._reader
        if reader is not None and reader.close_when_done:
            reader.close()

    def _rname(self) -> str:
        return "<reader>" if self._reader is not None else "<rfile>"


def failed_read_answer(body: object) -> int | None:
    """What a server answered a request whose body failed to read.

    400 or 413 when the server refused the body, 0 when it sent nothing (the
    peer vanished or was too slow), ``None`` when *body* is not a body of a
    Degu connection whose read failed.  Internal interface of
    ``degu.misc.AccessLogger``, so that its line shows what the peer got.
    """
    if not isinstance(body, _InputBody):
        return None
    reader = body._reader
    if body._state != BODY_ERROR or reader is None:
        return None
    return reader.error_status or 0


class Body(_InputBody):
    """A body framed by a content-length, read from *rfile*."""

    __slots__ = ("_content_length", "_remaining")
    chunked = False

    def __init__(self, rfile: Any, content_length: int) -> None:
        super().__init__(rfile)
        self._content_length = check_length("content_length", content_length)
        self._remaining = content_length

    @classmethod
    def _new(cls, reader: Reader, content_length: int) -> Body:
        """A body of *content_length* bytes over a connection's *reader*.

        Internal interface of ``degu.client`` and ``degu._serving``,
        whose parser already validated the length; not public API
        (docs/reference/base.rst documents ``Body(rfile, content_length)``).
        """
        # Bypasses __init__ (keep the two in step): 203 ns instead of 864 ns
        # per body, measured on a 2-vCPU VM (median of 7).
        self = cls.__new__(cls)
        self._readinto = reader.readinto
        self._rfile = self._reader = reader
        self._state = BODY_READY
        self._content_length = self._remaining = content_length
        return self

    @property
    def content_length(self) -> int:
        """Total body size in bytes."""
        return self._content_length

    def __repr__(self) -> str:
        return f"Body({self._rname()}, {self._content_length})"

    def read(self, size: int | None = None) -> bytes:
        """Read all remaining bytes (``size=None``) or at most *size* bytes."""
        state = self._state
        if state > BODY_STARTED:
            raise state_error("Body", state)
        remaining = self._remaining
        if size is None:
            if remaining > MAX_IO_SIZE:
                raise ValueError(
                    f"would exceed max read size: {remaining} > {MAX_IO_SIZE}"
                )
            n = remaining
        else:
            n = min(check_int("size", size, 0, MAX_IO_SIZE), remaining)
        if remaining == 0:
            self._consumed()
            return b""
        reader = self._reader
        # Already received (a small request or response): no call that
        # could fail, and one call in all (Reader.take): Body._new() plus
        # read() of 108 buffered bytes 525 ns instead of 603 ns (timeit,
        # best of 7, 2-vCPU VM).
        data = reader.take(n) if reader is not None else None
        if data is None:
            data = self._read(n) if n else b""
        self._remaining = remaining - n
        if size is None:
            self._consumed()
        else:
            self._state = BODY_STARTED
        return data

    def __iter__(self) -> Iterator[bytes]:
        if self._state != BODY_READY:
            raise state_error("Body", self._state)
        self._state = BODY_STARTED
        return self._iter()

    def _iter(self) -> Iterator[bytes]:
        reader = self._reader
        if reader is not None and reader.buffered and self._remaining:
            # What came with the preamble is a piece of its own, so every
            # later piece is received straight into its own bytes object:
            # joining it to the next 1 MiB would copy that MiB into fresh
            # memory (~256 page faults) once per body.
            n = min(reader.buffered, self._remaining, IO_SIZE)
            data = reader.take(n)
            assert data is not None  # n <= reader.buffered
            self._remaining -= n
            yield data
        while self._remaining:
            n = min(IO_SIZE, self._remaining)
            data = self._read(n)
            self._remaining -= n
            yield data
        self._consumed()

    def write_to(self, wfile: Any) -> int:
        """Stream the remaining body to ``wfile.write`` in IO_SIZE pieces."""
        write = _method(wfile, "write")
        if self._state != BODY_READY:
            raise state_error("Body", self._state)
        self._state = BODY_STARTED
        remaining = self._remaining
        # One reusable buffer, no per-piece copies: readinto() then write().
        mv = memoryview(bytearray(min(IO_SIZE, remaining)))
        readinto = self._readinto
        total = 0
        try:
            while remaining:
                n = readinto(mv[: min(IO_SIZE, remaining)])
                if type(n) is not int or not 0 <= n <= remaining:
                    raise ValueError(f"need 0 <= received <= {remaining}; got {n!r}")
                if n == 0:
                    raise ValueError(
                        f"expected to read {remaining} bytes, but received 0"
                    )
                total += write_all(write, mv[:n])
                remaining -= n
                self._remaining = remaining
        except BaseException:
            self._fail()
            raise
        self._consumed()
        return total


class ChunkedBody(_InputBody):
    """A chunk-encoded body read from *rfile*, chunk extensions preserved.

    Framing is paid for with data: beyond :data:`CHUNK_FRAMING_ALLOWANCE`
    bytes of size lines and CRLFs, a body may spend one framing byte per
    :data:`CHUNK_DATA_PER_FRAMING_BYTE` data bytes; past that it is refused
    (bad framing, status 400).  So a body of one-byte chunks costs time and
    memory in proportion to its data, not to its chunk count
    (docs/explanation/limits.rst, "Chunked bodies").
    """

    __slots__ = ("_data_bytes", "_framing_bytes", "_readline")
    chunked = True

    def __init__(self, rfile: Any) -> None:
        self._readline = _method(rfile, "readline")
        super().__init__(rfile)
        self._framing_bytes = 0
        self._data_bytes = 0

    def __repr__(self) -> str:
        return f"ChunkedBody({self._rname()})"

    def _next(self) -> Chunk:
        try:
            line = self._readline(MAX_LINE_LEN)
            if type(line) is not bytes or len(line) > MAX_LINE_LEN:
                raise ValueError(f"bad chunk line: {line!r}")
            size, ext = parse_chunk_line(line)
        except ValueError:
            self._fail(400)
            raise
        except BaseException:
            self._fail()
            raise
        self._framing_bytes += len(line) + 2
        self._data_bytes += size
        allowed = (
            CHUNK_FRAMING_ALLOWANCE + self._data_bytes // CHUNK_DATA_PER_FRAMING_BYTE
        )
        if self._framing_bytes > allowed:
            self._fail(400)
            raise ValueError(
                f"chunk framing exceeds its allowance: {self._framing_bytes} bytes "
                f"of framing for {self._data_bytes} bytes of data"
            )
        data = self._read(size) if size else b""
        end = self._read(2)
        if end != b"\r\n":
            self._fail(400)
            raise ValueError(f"bad chunk data termination: {end!r}")
        if size == 0:
            self._consumed()
        return ext, data

    def readchunk(self) -> Chunk:
        """Return the next ``(extension, data)``; the last has ``data == b''``."""
        if self._state > BODY_STARTED:
            raise state_error("ChunkedBody", self._state)
        self._state = BODY_STARTED
        return self._next()

    def read(self) -> bytes:
        """Return all remaining chunk data joined (extensions dropped)."""
        if self._state > BODY_STARTED:
            raise state_error("ChunkedBody", self._state)
        self._state = BODY_STARTED
        if self._reader is not None:
            return self._read_buffered(self._reader)
        # One growing buffer: memory in proportion to the data, not to the
        # number of chunks (a list of a million one-byte objects is ~100 MB).
        out = bytearray()
        while self._state == BODY_STARTED:
            data = self._next()[1]
            if len(out) + len(data) > MAX_IO_SIZE:
                self._fail(413)
                raise ValueError(
                    f"chunks exceed MAX_IO_SIZE: {len(out) + len(data)} > {MAX_IO_SIZE}"
                )
            out += data
        return bytes(out)

    def _read_buffered(self, reader: Reader) -> bytes:
        # read() from a Degu reader.  Chunks that lie whole in the reader's
        # buffer are scanned in place by _scan(); everything else (a partial
        # chunk at the end of the buffer, a big chunk, EOF, any error) goes
        # through _next(), which reads and fails exactly as readchunk() does.
        # The scan's checks are summed per buffer: when the sum is not clearly
        # within the bounds, that buffer is redone through _next(), so errors
        # come at the same chunk, in the same order, with the same status.
        # Per-chunk Python work is what small chunks cost: 128-byte chunks
        # took 8.5-9.6x the CPU of one chunk through _next() alone
        # (bench/bench_peers.py chunked).
        parts: list[bytes | bytearray] = []  # joined once at the end
        acc = bytearray()  # small chunks' data, so memory follows the data
        total = 0
        sizes: dict[bytes, int] = {}
        # True when the reader stands at the CRLF that ends the last chunk
        # _scan() took: the next scan starts with it, a _next() must read it.
        at_crlf = False
        while True:
            view = reader.buffered_view()
            # Each unit _scan() takes is CRLF, size line, CRLF, data; before
            # the first one, a CRLF the reader does not hold stands in.
            block = view.tobytes() if at_crlf else b"\r\n" + view
            skip = 0 if at_crlf else 2
            mark = len(acc)
            pos, done = _scan(block, acc, sizes)
            data = len(acc) - mark
            framing = self._framing_bytes + pos - data
            slow = 0
            if pos > skip and (
                framing
                > CHUNK_FRAMING_ALLOWANCE
                + self._data_bytes // CHUNK_DATA_PER_FRAMING_BYTE
                or total + data > MAX_IO_SIZE
            ):
                # Maybe over a bound somewhere in this buffer: redo it.
                del acc[mark:]
                slow = len(block) - skip
            elif pos > skip:
                reader.consume(pos - skip)
                self._framing_bytes = framing
                self._data_bytes += data
                total += data
                at_crlf = not done
                if done:
                    self._consumed()
                    break
                if len(acc) >= _PART_SIZE:
                    parts.append(acc)
                    acc = bytearray()
            while True:
                # One chunk through _next(), then more until the redone
                # buffer is passed.
                before = self._framing_bytes + self._data_bytes
                if at_crlf:
                    end = self._read(2)
                    if end != b"\r\n":
                        self._fail(400)
                        raise ValueError(f"bad chunk data termination: {end!r}")
                    at_crlf = False
                    slow -= 2
                chunk = self._next()[1]
                slow -= self._framing_bytes + self._data_bytes - before
                total += len(chunk)
                if total > MAX_IO_SIZE:
                    self._fail(413)
                    raise ValueError(
                        f"chunks exceed MAX_IO_SIZE: {total} > {MAX_IO_SIZE}"
                    )
                if len(chunk) >= _OWN_PART_MIN:
                    # Kept as it came (no copy); a lone one is returned as is.
                    if acc:
                        parts.append(acc)
                        acc = bytearray()
                    parts.append(chunk)
                else:
                    acc += chunk
                if self._state != BODY_STARTED or slow <= 0:
                    break
            if self._state != BODY_STARTED:
                break
        if acc:
            parts.append(acc)
        if len(parts) == 1 and type(parts[0]) is bytes:
            return parts[0]
        return b"".join(parts)

    def __iter__(self) -> Iterator[Chunk]:
        if self._state != BODY_READY:
            raise state_error("ChunkedBody", self._state)
        self._state = BODY_STARTED
        return self._iter()

    def _iter(self) -> Iterator[Chunk]:
        while self._state == BODY_STARTED:
            yield self._next()

    def write_to(self, wfile: Any) -> int:
        """Re-encode every chunk, the terminal one included, to ``wfile.write``."""
        write = _method(wfile, "write")
        chunks = iter(self)
        total = 0
        try:
            for ext, data in chunks:
                total += _write_chunk(write, ext, data)
        except BaseException:
            self._fail()
            raise
        return total


def _scan(block: bytes, acc: bytearray, sizes: dict[bytes, int]) -> tuple[int, bool]:
    """Append the data of the whole chunks at the start of *block* to *acc*.

    *block* holds units of CRLF, size line, CRLF and data (the CRLF ending
    each chunk's data leads the next unit).  Returns where the scan stopped
    and whether it took the last chunk (with its final CRLF).  It stops,
    without raising, at anything it cannot take whole and clean: the caller
    reads that with ChunkedBody._next().  Bounds are the caller's to check.
    """
    end = len(block)
    mv = memoryview(block)
    pos = 0
    while True:
        # Unbounded find: it passes at most this block once, and a line
        # longer than readline() would take is left to _next() to refuse.
        i = block.find(b"\r\n", pos + 2)
        if i < 0 or i - pos > MAX_LINE_LEN:
            return pos, False
        # *sizes* maps units' "CRLF size-line" prefixes already validated in
        # this body to their size: a stream of small chunks repeats a few.
        size = sizes.get(block[pos:i], -1)
        if size < 0:
            if block[pos : pos + 2] != b"\r\n":
                return pos, False
            try:
                size = parse_chunk_line(block[pos + 2 : i + 2])[0]
            except ValueError:
                return pos, False
            # Only short lines without extension: bounded keys and entries.
            if i - pos <= 5 and len(sizes) < _SIZE_LINES_MAX:
                sizes[block[pos:i]] = size
        stop = i + 2 + size
        if stop > end:
            return pos, False
        if not size:
            if block[stop : stop + 2] != b"\r\n":
                return pos, False
            return stop + 2, True
        acc += mv[i + 2 : stop]
        pos = stop


def _write_chunk(
    write: Callable[[Any], int], ext: tuple[str, str] | None, data: bytes
) -> int:
    line = render_chunk_line(len(data), ext)
    if len(data) <= 65536:
        return write_all(write, line + data + b"\r\n")
    # Big chunks: three writes beat copying megabytes into one buffer.
    return write_all(write, line) + write_all(write, data) + write_all(write, b"\r\n")


class _OutputBody:
    __slots__ = ("_source", "_state")

    def __init__(self, source: Iterable[Any]) -> None:
        self._source = source
        self._state = BODY_READY

    @property
    def source(self) -> Iterable[Any]:
        """The iterable the body is generated from."""
        return self._source

    @property
    def state(self) -> int:
        """0 READY, 1 STARTED, 2 CONSUMED or 3 ERROR (one-way)."""
        return self._state

    def _begin(self, wfile: Any) -> Callable[[Any], int]:
        write = _method(wfile, "write")
        if self._state != BODY_READY:
            raise state_error(type(self).__name__, self._state)
        self._state = BODY_STARTED
        return write


class BodyIter(_OutputBody):
    """An output body from an iterable of ``bytes`` with a promised length."""

    __slots__ = ("_content_length",)
    chunked = False

    def __init__(self, source: Iterable[bytes], content_length: int) -> None:
        super().__init__(source)
        self._content_length = check_length("content_length", content_length)

    @property
    def content_length(self) -> int:
        """The promised total size in bytes."""
        return self._content_length

    def __repr__(self) -> str:
        return f"BodyIter(<source>, {self._content_length})"

    def write_to(self, wfile: Any) -> int:
        """Write every item of ``source``, checking the running total."""
        write = self._begin(wfile)
        limit = self._content_length
        total = 0
        try:
            for data in self._source:
                if type(data) is not bytes:
                    type_error("BodyIter source item", bytes, data)
                total += len(data)
                # Checked before writing: an overrun never reaches the wire
                # (docs/explanation/rgi.rst).
                if total > limit:
                    raise ValueError(f"exceeds content_length: {total} > {limit}")
                if data:
                    write_all(write, data)
            if total < limit:
                raise ValueError(f"deceeds content_length: {total} < {limit}")
        except BaseException:
            self._state = BODY_ERROR
            raise
        self._state = BODY_CONSUMED
        return total


class ChunkedBodyIter(_OutputBody):
    """A chunked output body from an iterable of ``(extension, data)``."""

    __slots__ = ()
    chunked = True

    def __repr__(self) -> str:
        return "ChunkedBodyIter(<source>)"

    def write_to(self, wfile: Any) -> int:
        """Validate and write every chunk; the last must have empty data."""
        write = self._begin(wfile)
        total = 0
        done = False
        try:
            for chunk in self._source:
                if done:
                    raise ValueError("additional chunk after empty chunk data")
                ext, data = check_chunk(chunk)
                done = not data
                total += _write_chunk(write, ext, data)
            if not done:
                raise ValueError("final chunk data was not empty")
        except BaseException:
            self._state = BODY_ERROR
            raise
        self._state = BODY_CONSUMED
        return total


#: Types accepted as outgoing bodies, with the framing header they imply.
_LENGTH_BODIES = (Body, BodyIter)
_CHUNKED_BODIES = (ChunkedBody, ChunkedBodyIter)


def framing_without_body(headers: dict[str, Any]) -> str | None:
    """The framing header a message without a body carries, or ``None``.

    Such a header would make the peer wait for bytes that never come, or
    read the next message as this one's body.  Returned as ``name: value``
    for the caller's error message (the server's and the client's differ).
    """
    length = headers.get("content-length")
    if length is not None and length != 0:
        return f"content-length: {length!r}"
    if "transfer-encoding" in headers:
        return f"transfer-encoding: {headers['transfer-encoding']!r}"
    return None


def set_output_framing(headers: dict[str, Any], body: object) -> None:
    """Set the framing header *body* implies in *headers*, in place.

    The rules are those of docs/explanation/wire.rst.
    """
    if type(headers) is not dict:
        type_error("headers", dict, headers)
    if body is None:
        return
    kind = type(body)
    value: int | str
    if kind is bytes:
        value = len(body)  # type: ignore[arg-type]
        if value > MAX_IO_SIZE:
            raise ValueError(f"need len(body) <= {MAX_IO_SIZE}; got {value}")
        key, other = "content-length", "transfer-encoding"
    elif kind in _LENGTH_BODIES:
        value = body.content_length  # type: ignore[attr-defined]
        key, other = "content-length", "transfer-encoding"
    elif kind in _CHUNKED_BODIES:
        value, key, other = "chunked", "transfer-encoding", "content-length"
    else:
        raise TypeError(f"bad body type: {kind!r}: {body!r}")
    if kind is not bytes and body._state != BODY_READY:  # type: ignore[attr-defined]
        # write_to() would refuse it after the preamble went out: refuse it
        # now, while a 500 (or nothing at all) can still be sent
        # (docs/explanation/wire.rst).
        raise state_error(kind.__name__, body._state)  # type: ignore[attr-defined]
    if key in headers:
        given = headers[key]
        if given != value:
            raise ValueError(f"{key!r} mismatch: {value!r} != {given!r}")
    else:
        headers[key] = value
    if other in headers:
        # Never emit both framing headers (RFC 9112 §6.3 item 3).
        raise ValueError(f"cannot send {other!r} with a {key!r} body")


if TYPE_CHECKING:
    # Typed fields for a type checker, declared at the public home.
    from degu.base import API
else:
    API = namedtuple(
        "API",
        "Body ChunkedBody BodyIter ChunkedBodyIter Range ContentRange "
        "OpenRange SuffixRange",
    )
    API.__doc__ = "The body and range classes handed to every RGI call."
api = API(
    Body, ChunkedBody, BodyIter, ChunkedBodyIter, Range, ContentRange, OpenRange,
    SuffixRange,
)  # fmt: skip

if TYPE_CHECKING:
    # Typed fields for a type checker, declared at the public home.
    from degu.base import Response
else:
    #: One HTTP response: what Connection.request() returns and an app may
    #: return (docs/reference/base.rst).
    Response = namedtuple("Response", "status reason headers body")
    Response.__doc__ = "An HTTP response: ``(status, reason, headers, body)``."
