"""Socket timeouts enforced by the kernel instead of by ``poll()``.

A Python-level timeout (``sock.settimeout``) makes CPython ``poll()`` the
socket before every ``recv`` and ``send``: two syscalls where one would do,
a large share of a small request's cost.  ``SO_RCVTIMEO``/``SO_SNDTIMEO``
bound each blocking call in the kernel instead.  An expired kernel timeout
surfaces as ``BlockingIOError`` (EAGAIN); Degu reports it as the
``TimeoutError`` a Python timeout would have raised.  Only for plain
sockets: an ``SSLSocket`` keeps its Python timeout.
"""

from __future__ import annotations

import socket
from time import monotonic

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~6 ms
if TYPE_CHECKING:
    from typing import Any

__all__ = ["KernelWriter", "set_kernel_timeouts", "set_recv_timeout", "timed_out"]


def _timeval(seconds: float) -> bytes:
    import struct

    sec = int(seconds)
    # A zero timeval means "wait forever": never round a deadline down to it.
    usec = max(int((seconds - sec) * 1_000_000), 0 if sec else 1)
    return struct.pack("ll", sec, usec)


def timed_out() -> TimeoutError:
    """The error for an expired timeout, worded like CPython's own."""
    return TimeoutError("timed out")


def set_kernel_timeouts(sock: socket.socket, timeout: float) -> None:
    """Put *sock* in blocking mode with *timeout* on each send and receive."""
    value = _timeval(timeout)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    sock.settimeout(None)


def set_recv_timeout(sock: socket.socket, seconds: float) -> None:
    """Change only the kernel receive timeout (for a deadline's remainder)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(seconds))


class KernelWriter:
    """``write(buf)`` = a ``sendall`` bounded by *timeout* in total.

    A blocking ``send`` returns a short count only when ``SO_SNDTIMEO``
    expired (or a signal arrived) part-way; the rest then gets only what is
    left of the deadline, so a peer reading a trickle cannot stretch one
    write beyond *timeout* (as with Python's ``sendall``, SPEC §14 item 13).
    """

    __slots__ = ("_send", "_sock", "_timeout")

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self._sock = sock
        self._send = sock.send
        self._timeout = timeout

    def write(self, buf: Any) -> int:
        """Send all of *buf*; return ``len(buf)``."""
        t0 = monotonic()
        size = len(buf)
        try:
            sent: int = self._send(buf)
        except BlockingIOError:
            raise timed_out() from None
        if sent != size:
            self.finish(memoryview(buf)[sent:], t0 + self._timeout)
        return size

    def finish(self, view: memoryview, deadline: float) -> None:
        """Send the rest of a short write before *deadline* (a monotonic time)."""
        sock = self._sock
        try:
            while view:
                left = deadline - monotonic()
                if left <= 0:
                    raise timed_out()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(left))
                try:
                    view = view[sock.send(view) :]
                except BlockingIOError:
                    raise timed_out() from None
        finally:
            try:
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(self._timeout)
                )
            except OSError:
                pass
