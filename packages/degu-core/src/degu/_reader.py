"""The buffered reader under every Degu connection (SPEC §1.1).

The only module that receives bytes: it owns one reusable ``BUF_LEN`` buffer
filled with ``sock.recv_into`` and enforces the 32 KiB preamble limit.
It knows nothing about HTTP grammar beyond the CRLF
terminators; ``degu._parsing`` turns what it returns into values.
"""

from __future__ import annotations

import socket
from time import monotonic

from degu._common import BUF_LEN, EmptyPreambleError
from degu._errors import ParseError
from degu._timeouts import set_recv_timeout, timed_out

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~6 ms
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Reader"]

_END = b"\r\n\r\n"
_WAITALL = socket.MSG_WAITALL
#: Reads at least this large bypass the buffer and land in the caller's memory.
DIRECT_READ_MIN = 4096


def _not_found(end: bytes, data: bytes | bytearray | memoryview) -> ValueError:
    return ValueError(f"{end!r} not found in {bytes(data[:32])!r}...")


def _too_large(data: bytes | bytearray | memoryview) -> ParseError:
    # RFC 6585 §5: no CRLFCRLF within BUF_LEN bytes.
    return ParseError(431, f"{_END!r} not found in {bytes(data[:32])!r}...")


class Reader:
    """Buffered reads from a socket-like object with ``recv_into``.

    Args:
        sock: needs ``recv_into(buf) -> int`` (and ``settimeout`` when
            *timeout* is given) and ``close()``.
        timeout: when not None, one deadline of this many seconds bounds the
            whole read of a preamble, not each ``recv_into`` (SPEC §14 item 13).
        kernel_timeouts: *sock* is a plain socket prepared by
            ``set_kernel_timeouts(sock, timeout)``; the preamble deadline is
            then applied with ``SO_RCVTIMEO`` instead of ``settimeout``.
    """

    __slots__ = (
        "_buf",
        "_mv",
        "_recv_into",
        "_sock_recv",
        "_start",
        "_stop",
        "close_when_done",
        "closed",
        "kernel_timeouts",
        "overflow",
        "sock",
        "timeout",
    )

    def __init__(
        self, sock: Any, timeout: float | None = None, *, kernel_timeouts: bool = False
    ) -> None:
        self.sock = sock
        self.kernel_timeouts = kernel_timeouts
        self._recv_into = sock.recv_into
        # Only a plain socket takes recv() flags (an SSLSocket refuses them).
        self._sock_recv = sock.recv if type(sock) is socket.socket else None
        self.timeout = timeout
        self._buf = bytearray(BUF_LEN)
        self._mv = memoryview(self._buf)
        self._start = 0
        self._stop = 0
        #: True after close().
        self.closed = False
        #: Close the socket once the current body is consumed.
        self.close_when_done = False
        #: True when the last preamble read failed because BUF_LEN was full.
        self.overflow = False

    def __repr__(self) -> str:
        return "<reader>"

    def close(self) -> None:
        """Close the socket (idempotent); used when a body read fails."""
        if not self.closed:
            self.closed = True
            self.sock.close()

    @property
    def buffered(self) -> int:
        """Bytes received but not yet consumed."""
        return self._stop - self._start

    def _recv(self, start: int) -> int:
        try:
            n: int = self._recv_into(self._mv[start:])
        except BlockingIOError:
            raise timed_out() from None
        return n

    def _set_timeout(self, seconds: float | None) -> None:
        if self.kernel_timeouts and seconds is not None:
            set_recv_timeout(self.sock, seconds)
        else:
            self.sock.settimeout(seconds)

    def _compact(self) -> None:
        start, stop = self._start, self._stop
        if start:
            self._buf[: stop - start] = self._mv[start:stop]
            self._start, self._stop = 0, stop - start

    def read_preamble(self, empty_message: str) -> bytes:
        """Return the next preamble without its CRLFCRLF.

        Raises:
            EmptyPreambleError: the peer closed before sending a byte.
            ValueError: no CRLFCRLF within BUF_LEN bytes, or EOF mid-preamble.
            TimeoutError: the preamble was not complete within ``timeout``.
        """
        buf, start, stop = self._buf, self._start, self._stop
        if start < stop:
            end = buf.find(_END, start, stop)
            if end >= 0:
                self._start = end + 4
                return self._mv[start:end].tobytes()
            self._compact()
            start, stop = 0, self._stop
        else:
            start = stop = self._start = self._stop = 0
        timeout = self.timeout
        # One deadline for the whole preamble, idle keep-alive wait included:
        # the first recv waits with the socket's own timeout (equal to ours),
        # later ones only for what is left (SPEC §14 item 13).
        t0 = 0.0 if timeout is None else monotonic()
        mv = self._mv
        if stop == BUF_LEN:
            self.overflow = True
            raise _too_large(buf)
        try:
            n = self._recv_into(mv[stop:])
        except BlockingIOError:
            raise timed_out() from None
        if n:
            end = buf.find(_END, max(stop - 3, 0), stop + n)
            stop += n
            self._stop = stop
            if end >= 0:
                # The common case: the whole preamble came in one recv.
                self._start = end + 4
                return mv[:end].tobytes()
        elif stop == 0:
            raise EmptyPreambleError(empty_message)
        else:
            raise _not_found(_END, mv[:stop])
        changed = False
        try:
            while True:
                if stop == BUF_LEN:
                    self.overflow = True
                    raise _too_large(buf)
                if timeout is not None:
                    left = t0 + timeout - monotonic()
                    if left <= 0:
                        raise TimeoutError("preamble not received within timeout")
                    self._set_timeout(left)
                    changed = True
                n = self._recv(stop)
                if n == 0:
                    raise _not_found(_END, mv[:stop])
                end = buf.find(_END, max(stop - 3, 0), stop + n)
                stop += n
                self._stop = stop
                if end >= 0:
                    self._start = end + 4
                    return mv[:end].tobytes()
        finally:
            if changed and not self.closed:
                try:
                    self._set_timeout(timeout)
                except OSError:
                    pass

    def readline(self, size: int) -> bytes:
        """Return one line ending in CRLF, at most *size* bytes long."""
        while True:
            start, stop = self._start, self._stop
            end = self._buf.find(b"\r\n", start, min(stop, start + size))
            if end >= 0:
                self._start = end + 2
                return self._mv[start : end + 2].tobytes()
            if stop - start >= size:
                raise _not_found(b"\r\n", self._mv[start:stop])
            if stop == BUF_LEN:
                self._compact()
            elif start == stop:
                self._start = self._stop = 0
            n = self._recv(self._stop)
            if n == 0:
                raise _not_found(b"\r\n", self._mv[self._start : self._stop])
            self._stop += n

    def readinto(self, dst: Any) -> int:
        """Fill up to ``len(dst)`` bytes of *dst*; 0 only at EOF."""
        size = len(dst)
        start, stop = self._start, self._stop
        if start < stop:
            k = min(size, stop - start)
            dst[:k] = self._mv[start : start + k]
            self._start = start + k
            return k
        if size >= DIRECT_READ_MIN:
            try:
                n: int = self._recv_into(dst)
            except BlockingIOError:
                raise timed_out() from None
            return n
        self._start = self._stop = 0
        got = self._recv(0)
        self._stop = got
        n = min(size, got)
        dst[:n] = self._mv[:n]
        self._start = n
        return n

    def read(self, size: int) -> bytes:
        """Return exactly *size* bytes, or fewer only when EOF comes first."""
        start, stop = self._start, self._stop
        avail = stop - start
        if avail >= size:
            self._start = start + size
            return self._mv[start : start + size].tobytes()
        if self._sock_recv is not None and size - avail >= DIRECT_READ_MIN:
            return self._read_waitall(size, avail)
        buf = bytearray(size)
        mv = memoryview(buf)
        got = 0
        while got < size:
            n = self.readinto(mv[got:])
            if n == 0:
                return bytes(mv[:got])
            got += n
        return bytes(buf)

    def _read_waitall(self, size: int, avail: int) -> bytes:
        # Big reads from a plain socket: recv(n, MSG_WAITALL) fills a new
        # bytes object in one syscall, with no zero-filled buffer and no
        # second copy (what read() would otherwise return is that copy).
        parts = []
        if avail:
            parts.append(self._mv[self._start : self._stop].tobytes())
        self._start = self._stop = 0
        recv: Any = self._sock_recv
        got = avail
        try:
            while got < size:
                data: bytes = recv(size - got, _WAITALL)
                if not data:
                    break
                if not parts and len(data) == size:
                    return data
                parts.append(data)
                got += len(data)
        except BlockingIOError:
            raise timed_out() from None
        return b"".join(parts)
