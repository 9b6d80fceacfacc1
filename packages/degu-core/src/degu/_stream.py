"""One connected socket, and the time its reads and writes may take.

A *stream* is the only owner of a connected socket: the server's I/O loop,
its workers and the client's ``Connection`` all read, write, wait and close
through one.  It knows nothing about HTTP; ``degu._reader`` buffers what it
receives and ``degu._parsing`` interprets it.

Time is charged to a :class:`Budget`: one message (a preamble, a body, a
response) may keep Degu waiting on its peer for at most ``timeout`` seconds
plus one second per ``min_rate`` bytes moved so far, the rule of Apache's
``mod_reqtimeout`` ``MinRate`` (see docs/explanation/limits.rst).  Only time
spent blocked on the peer is charged, so an app that is slow to produce or to
consume a body is never mistaken for a slow peer.

Implementations:

* :class:`SocketStream` — a plain TCP or Unix socket in blocking mode whose
  waits are bounded by the kernel (``SO_RCVTIMEO``/``SO_SNDTIMEO``): a small
  request is one ``recv`` and one ``send``, with no ``poll()`` before each.
* :class:`TLSStream` — an ``SSLSocket`` in non-blocking mode, waited on with
  ``poll()`` (a blocking ``SSLSocket`` retries forever on a kernel timeout).
* :class:`ObjectStream` — any socket-like object a client subclass returns
  from ``create_socket()``; it keeps that object's own timeouts.
"""

from __future__ import annotations

import socket
from time import monotonic

from degu._common import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Protocol

    class Stream(Protocol):
        """What the reader, the server and the client need of a connection."""

        sock: Any
        #: Whether bytes may wait above the kernel, where poll() cannot see
        #: them (TLS records already decrypted): then ask ``pending()``.
        layered: bool

        def recv_into(self, buf: memoryview, budget: Budget) -> int: ...
        def recv_nowait(self, buf: memoryview) -> int | None: ...
        def recv_within(self, buf: memoryview, seconds: float) -> int: ...
        def send_all(self, data: Any, budget: Budget) -> None: ...
        def send_nowait(self, data: bytes) -> None: ...
        def pending(self) -> int: ...
        def fileno(self) -> int: ...
        def shutdown(self) -> None: ...
        def close(self) -> None: ...


__all__ = [
    "FOREVER",
    "LINGER_BYTES",
    "LINGER_TIME",
    "UNIX_SEND_MAX",
    "Budget",
    "ObjectStream",
    "SocketStream",
    "TLSStream",
    "make_stream",
    "timed_out",
]

#: Lingering close (done by the server's I/O loop): after our last byte,
#: read and drop at most this much ...
LINGER_BYTES = 1048576
#: ... for at most this long (RFC 9112 §9.6).
LINGER_TIME = 1.0
#: Largest piece one ``send`` gets on AF_UNIX.  There the kernel restarts
#: ``SO_SNDTIMEO`` for every buffer it allocates within one call, so only a
#: call that fits one buffer is bounded by it.
UNIX_SEND_MAX = 65536
#: A kernel timeout this close above the one needed is left as it is: one
#: ``setsockopt`` saved per message, at the cost of waiting this much longer.
_SLACK = 0.005
#: Budgets at least this long are unbounded (``timeout=None`` on a client).
FOREVER = 1e9


class Budget:
    """How long one message may keep us waiting on the peer.

    ``timeout`` seconds, plus one second for every *min_rate* bytes moved
    (``min_rate=None``: no growth, a plain deadline), and never ``timeout``
    in one wait.  Streams charge the time they spend blocked and count the
    bytes they move.
    """

    __slots__ = ("min_rate", "moved", "timeout", "waited")

    def __init__(self, timeout: float, min_rate: float | None = None) -> None:
        self.timeout = timeout
        self.min_rate = min_rate
        #: Bytes received or sent under this budget.
        self.moved = 0
        #: Seconds spent blocked on the peer under this budget.
        self.waited = 0.0

    def left(self) -> float:
        """Seconds the peer may still keep us waiting (<= 0: out of time)."""
        allowed = self.timeout
        if self.min_rate is not None:
            allowed += self.moved / self.min_rate
        return allowed - self.waited

    def check(self) -> float:
        """How long the next wait may last; ``TimeoutError`` when none.

        Never more than ``timeout``: one wait in which the peer moves no
        byte at all ends the message however much credit it has earned.
        """
        left = self.left()
        if left <= 0:
            raise timed_out()
        return min(left, self.timeout)

    def __repr__(self) -> str:
        return (
            f"Budget({self.timeout!r}, {self.min_rate!r}, "
            f"moved={self.moved}, waited={self.waited:.3f})"
        )


def timed_out() -> TimeoutError:
    """The error for an exhausted budget, worded like CPython's own."""
    return TimeoutError("timed out")


def _timeval(seconds: float) -> bytes:
    import struct

    if seconds >= FOREVER:
        return struct.pack("ll", 0, 0)  # the kernel's "no timeout"
    sec = int(seconds)
    # A zero timeval means "wait forever": never round a deadline down to it.
    usec = max(int((seconds - sec) * 1_000_000), 0 if sec else 1)
    return struct.pack("ll", sec, usec)


class SocketStream:
    """A plain socket in blocking mode, bounded by kernel timeouts."""

    __slots__ = (
        "_max_send",
        "_rcvtimeo",
        "_recv_into",
        "_send",
        "_sndtimeo",
        "sock",
    )

    layered = False

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        sock.settimeout(None)
        self._rcvtimeo = self._sndtimeo = 0.0
        self._set_rcvtimeo(timeout)
        self._set_sndtimeo(timeout)
        self._recv_into = sock.recv_into
        self._send = sock.send
        unix = sock.family == socket.AF_UNIX
        self._max_send = UNIX_SEND_MAX if unix else 0

    def __repr__(self) -> str:
        return f"SocketStream({self.sock!r})"

    def _set_rcvtimeo(self, seconds: float) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(seconds))
        self._rcvtimeo = seconds

    def _set_sndtimeo(self, seconds: float) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(seconds))
        self._sndtimeo = seconds

    def recv_into(self, buf: memoryview, budget: Budget) -> int:
        """Receive into *buf*, blocking at most what *budget* has left."""
        # Before its first wait a budget has its whole (positive) timeout
        # left: check() would say so in ~180 ns (2-vCPU VM, best of 5).
        left = budget.check() if budget.waited else budget.timeout
        if not left <= self._rcvtimeo <= left + _SLACK:
            self._set_rcvtimeo(left)
        t0 = monotonic()
        try:
            n: int = self._recv_into(buf)
        except BlockingIOError:
            budget.waited += monotonic() - t0
            raise timed_out() from None
        budget.waited += monotonic() - t0
        budget.moved += n
        return n

    def recv_within(self, buf: memoryview, seconds: float) -> int:
        """Receive into *buf*, waiting at most *seconds*, charged to no message.

        For the wait between two messages (the server's hot wait): no budget,
        no clock reads, and the kernel timeout stays set from one to the next.
        """
        if self._rcvtimeo != seconds:
            self._set_rcvtimeo(seconds)
        try:
            n: int = self._recv_into(buf)
        except BlockingIOError:
            raise timed_out() from None
        return n

    def recv_exact(self, head: bytes, size: int, budget: Budget) -> bytes:
        """*head* plus received bytes up to *size* in all (fewer only at EOF).

        ``recv(n, MSG_WAITALL)`` fills a new bytes object in one call, with
        no zero-filled buffer and no second copy: the fast path for big reads.
        """
        parts = [head] if head else []
        got = len(head)
        recv = self.sock.recv
        while got < size:
            left = budget.check()
            if not left <= self._rcvtimeo <= left + _SLACK:
                self._set_rcvtimeo(left)
            t0 = monotonic()
            try:
                data: bytes = recv(size - got, socket.MSG_WAITALL)
            except BlockingIOError:
                budget.waited += monotonic() - t0
                raise timed_out() from None
            budget.waited += monotonic() - t0
            budget.moved += len(data)
            if not data:
                break
            if not parts and len(data) == size:
                return data
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def recv_nowait(self, buf: memoryview) -> int | None:
        """Receive what is there without waiting; ``None`` when nothing is."""
        try:
            n: int = self._recv_into(buf, 0, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return None
        return n

    def send_all(self, data: Any, budget: Budget) -> None:
        """Send all of *data*, blocked at most what *budget* allows."""
        size = len(data)
        cap = self._max_send
        view = None
        offset = 0
        if not budget.waited and (not cap or size <= cap):
            # Most messages fit the socket buffer: one send that cannot
            # block needs no clock reads and no timeout set.  It waits on
            # nobody, so the budget has nothing to charge.
            try:
                offset = self._send(data, socket.MSG_DONTWAIT)
            except BlockingIOError:
                offset = 0
            budget.moved += offset
        while offset < size:
            left = budget.check()
            if not left <= self._sndtimeo <= left + _SLACK:
                self._set_sndtimeo(left)
            end = min(size, offset + cap) if cap else size
            if offset == 0 and end == size:
                piece = data
            else:
                if view is None:
                    view = memoryview(data)
                piece = view[offset:end]
            t0 = monotonic()
            try:
                n: int = self._send(piece)
            except BlockingIOError:
                budget.waited += monotonic() - t0
                raise timed_out() from None
            budget.waited += monotonic() - t0
            budget.moved += n
            offset += n

    def send_nowait(self, data: bytes) -> None:
        """Best effort: send what fits now, drop the rest (error replies)."""
        try:
            self.sock.send(data, socket.MSG_DONTWAIT)
        except OSError:
            pass

    def pending(self) -> int:
        """Bytes the socket layer holds above the kernel: none for plain sockets."""
        return 0

    def fileno(self) -> int:
        """The socket's file descriptor."""
        return self.sock.fileno()

    def shutdown(self) -> None:
        """Wake a thread blocked on this socket (``SHUT_RDWR``); idempotent."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """Close the socket; idempotent."""
        self.sock.close()


class TLSStream:
    """An ``SSLSocket`` in non-blocking mode, waited on with ``poll()``.

    Not timeout mode, where CPython's ``_ssl`` would ``poll()`` before every
    write and try every read once before waiting, and each change of timeout
    costs an ``ioctl``: 14 syscalls per small request and response instead
    of 8 (client and server together; 4 on plain sockets).  Where the next
    bytes are probably not there yet (the first read of a message),
    ``poll()`` comes first, since a read that fails raises
    ``SSLWantReadError``, which costs more than the ``poll()``.
    Every wait is bounded by what the message's budget has left and charged
    to it, so a peer trickling a record byte by byte gets no more time than
    one sending it whole.

    ``ssl.SSLSocket``'s ``recv_into``, ``read``, ``send`` and ``pending`` are
    Python frames around the C object ``_sslobj`` (~0.35 us a call, ~0.9 us
    more when an ``SSLError`` passes through them; 2-vCPU VM, OpenSSL 3.0):
    the common paths call it directly while the socket has one; once it is
    closed or unwrapped (or on a Python whose SSLSocket has no ``_sslobj``),
    the public methods decide what to raise.
    """

    __slots__ = ("_eof", "_events", "_poll", "_pollin", "_want", "sock")

    layered = True

    def __init__(self, sock: Any) -> None:
        import select
        import ssl

        self.sock = sock
        sock.setblocking(False)
        poll = select.poll()
        poll.register(sock.fileno(), select.POLLIN)
        self._poll = poll
        # It waits for POLLIN but while a write waits (_wait): the common
        # paths call it without checking which events it waits for.
        self._pollin = poll.poll
        self._events = (select.POLLIN, select.POLLOUT)
        # Kept here: an import statement per read or write cost ~1 us.
        self._want = (ssl.SSLWantReadError, ssl.SSLWantWriteError)
        self._eof = ssl.SSLEOFError

    def __repr__(self) -> str:
        return f"TLSStream({self.sock!r})"

    def _wait(self, want_write: bool, budget: Budget) -> None:
        """Wait until the socket is ready, within what *budget* has left."""
        left = budget.check()
        t0 = monotonic()
        if want_write:
            fd = self.sock.fileno()
            pollin, pollout = self._events
            self._poll.modify(fd, pollout)
            try:
                ready = self._pollin(left * 1000.0)
            finally:
                self._poll.modify(fd, pollin)
        else:
            ready = self._pollin(left * 1000.0)
        budget.waited += monotonic() - t0
        if not ready:
            raise timed_out()

    def _ragged_eof(self, error: OSError) -> int:
        """What ``SSLSocket.read()`` makes of a peer closing without close_notify.

        An EOF, unless the socket was made to refuse that.
        """
        if self.sock.suppress_ragged_eofs:
            return 0
        raise error

    def _read_within(self, buf: memoryview, budget: Budget) -> int:
        """Read, waiting as the TLS layer asks, within *budget*: the slow path."""
        sock = self.sock
        want_read_error = self._want[0]
        while True:
            obj = getattr(sock, "_sslobj", None)
            try:
                if obj is None:
                    n: int = sock.recv_into(buf)
                else:
                    n = obj.read(len(buf), buf)
                return n
            except self._want as e:
                want_write = not isinstance(e, want_read_error)
            except self._eof as e:
                return self._ragged_eof(e)
            self._wait(want_write, budget)

    def recv_into(self, buf: memoryview, budget: Budget) -> int:
        """Receive (decrypted) into *buf*, waiting at most what *budget* has left."""
        obj = getattr(self.sock, "_sslobj", None)
        if obj is None:
            n = self._read_within(buf, budget)
        else:
            if not budget.moved and not obj.pending():
                # A message's first bytes: usually still on their way.
                self._wait(False, budget)
            try:
                n = obj.read(len(buf), buf)
            except self._want:
                n = self._read_within(buf, budget)
            except self._eof as e:
                n = self._ragged_eof(e)
        budget.moved += n
        return n

    def recv_within(self, buf: memoryview, seconds: float) -> int:
        """Receive into *buf*, waiting at most *seconds*, charged to no message.

        Polls first: between two messages the next one has usually not
        arrived yet.
        """
        obj = getattr(self.sock, "_sslobj", None)
        if obj is None:
            return self._read_within(buf, Budget(seconds))
        if not obj.pending() and not self._pollin(max(seconds, 0.0) * 1000.0):
            raise timed_out()
        try:
            n: int = obj.read(len(buf), buf)
        except self._want:
            return self._read_within(buf, Budget(seconds))
        except self._eof as e:
            return self._ragged_eof(e)
        return n

    def recv_nowait(self, buf: memoryview) -> int | None:
        """Receive what can be decrypted now; ``None`` when nothing can."""
        obj = getattr(self.sock, "_sslobj", None)
        try:
            if obj is None:
                n: int = self.sock.recv_into(buf)
            else:
                n = obj.read(len(buf), buf)
        except self._want:
            return None
        except self._eof as e:
            return self._ragged_eof(e)
        return n

    def send_all(self, data: Any, budget: Budget) -> None:
        """Encrypt and send all of *data* within what *budget* allows."""
        obj = getattr(self.sock, "_sslobj", None)
        sent = 0
        if obj is not None:
            # Most messages fit the socket buffer: one write, no wait.
            try:
                sent = obj.write(data)
            except self._want:
                pass  # retried below, with the same bytes
            else:
                budget.moved += sent
                if sent == len(data):
                    return
        self._send_rest(memoryview(data)[sent:], budget)

    def _send_rest(self, view: memoryview, budget: Budget) -> None:
        """Send all of *view*, waiting as the TLS layer asks: the slow path."""
        sock = self.sock
        want_read_error = self._want[0]
        while view:
            obj = getattr(sock, "_sslobj", None)
            try:
                # A retried SSL_write must be given the same bytes again.
                n: int = sock.send(view) if obj is None else obj.write(view)
            except self._want as e:
                self._wait(not isinstance(e, want_read_error), budget)
                continue
            budget.moved += n
            view = view[n:]

    def send_nowait(self, data: bytes) -> None:
        """Best effort: send what fits now (error replies)."""
        try:
            self.sock.send(data)
        except (OSError, ValueError):
            pass

    def pending(self) -> int:
        """Decrypted bytes held by the TLS layer, invisible to ``poll()``."""
        obj = getattr(self.sock, "_sslobj", None)
        n: int = obj.pending() if obj is not None else 0
        return n

    def fileno(self) -> int:
        """The socket's file descriptor."""
        n: int = self.sock.fileno()
        return n

    def shutdown(self) -> None:
        """Wake a thread waiting on this socket; idempotent."""
        # The plain-socket method on purpose: it does not touch TLS state,
        # which belongs to the thread using the socket.
        try:
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """Close the socket; idempotent."""
        self.sock.close()


class ObjectStream:
    """Any socket-like object (``recv_into``, ``send``, ``close``), as it is.

    Such an object keeps its own timeouts; a budget is checked between calls
    but cannot interrupt one.
    """

    __slots__ = ("_recv_into", "_send", "sock")

    layered = False

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self._recv_into = sock.recv_into
        self._send = sock.send

    def __repr__(self) -> str:
        return f"ObjectStream({self.sock!r})"

    def recv_into(self, buf: memoryview, budget: Budget) -> int:
        """``sock.recv_into(buf)``, charged to *budget*."""
        budget.check()
        t0 = monotonic()
        n: int = self._recv_into(buf)
        budget.waited += monotonic() - t0
        if type(n) is not int or not 0 <= n <= len(buf):
            raise ValueError(f"need 0 <= received <= {len(buf)}; got {n!r}")
        budget.moved += n
        return n

    def recv_within(self, buf: memoryview, seconds: float) -> int:
        """``recv_into`` under a budget of *seconds* (checked between calls)."""
        return self.recv_into(buf, Budget(seconds))

    def recv_nowait(self, buf: memoryview) -> int | None:
        """Refused: an arbitrary object cannot promise not to block.

        Only the server's I/O loop reads without waiting, and it never holds
        an ObjectStream (those wrap what a client subclass's create_socket()
        returns).
        """
        raise NotImplementedError("recv_nowait on a socket-like object")

    def send_all(self, data: Any, budget: Budget) -> None:
        """Call ``sock.send`` until all of *data* is sent."""
        view = memoryview(data)
        while view:
            budget.check()
            t0 = monotonic()
            n = self._send(view)
            budget.waited += monotonic() - t0
            if type(n) is not int or not 0 < n <= len(view):
                raise ValueError(f"need 0 < wrote <= {len(view)}; got {n!r}")
            budget.moved += n
            view = view[n:]

    def send_nowait(self, data: bytes) -> None:
        """Best effort: one ``send``."""
        try:
            self._send(data)
        except (OSError, ValueError):
            pass

    def pending(self) -> int:
        """Nothing known to be held above the object."""
        return 0

    def fileno(self) -> int:
        """The object's ``fileno()``."""
        n: int = self.sock.fileno()
        return n

    def shutdown(self) -> None:
        """Nothing to wake: the object's own timeouts apply."""

    def close(self) -> None:
        """``sock.close()``."""
        self.sock.close()


def make_stream(sock: Any, timeout: float | None) -> Stream:
    """The stream for *sock*: kernel timeouts for plain sockets, poll for TLS."""
    if type(sock) is socket.socket:
        return SocketStream(sock, timeout if timeout is not None else 0.0)
    import sys

    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(sock, ssl.SSLSocket):
        return TLSStream(sock)
    return ObjectStream(sock)
