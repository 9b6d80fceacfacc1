"""The server's I/O loop: every connection that has no request running.

One thread at a time, the *leader*, waits in one epoll on the listening
socket, a wake-up socket, and every connection that is not running a
request: newly accepted ones, TLS handshakes in progress, idle keep-alive
connections, requests still arriving, and lingering closes.  Such a
connection costs a descriptor and a few hundred bytes, never a thread.

A connection is run only once a whole preamble, and a body that fits the
buffer, has arrived (``degu._serving.advance``).  The leader runs it itself
("inline"): a fast app then costs no hand-over between threads, like an
event loop; after ``INLINE_MAX`` of inline runs it polls again first.  So
that a blocking app never leaves the server without a poller, the thread in
``run()`` (``serve_forever()``'s) is a *standby* that never runs an app: it
looks when a stretch of the leader's inline runs reaches ``INLINE_MAX``, and
sleeps otherwise.  Once the leader has not polled for ``INLINE_MAX`` and is
in an app, the standby vacates the leadership for a spare thread (or a new
one); the old leader, when its app returns, hands its connection back
(``give_back``) like a worker and parks as a spare.  A leader about to
wait for its client's next request (``HOT_WAIT``) vacates the leadership
the same way first.
Requests go to the worker pool (``degu._pool``) instead when every one of the
``max_connections`` slots is taken (the leader holds one while it runs
apps), and while shutting down (docs/explanation/connections.rst).

Invariant: loop state (the epoll, ``_watched``, ``_conns``, ``_busy``, the
waiting-state dicts, ``_todo``, the accept pause) is only touched by the
thread named in ``_leader``.  ``_leader`` changes only under ``_lock``, in
one of three steps: a spare takes a vacant leadership (``_take_lead``); the
standby vacates it while the leader is in an app; the leader vacates it
itself, from its app, before a hot wait.  Both vacating steps first claim the
leader's app run (``_in_app``): the leader claims it too when its app
returns, and only if it got it back does it touch loop state again.  Other
threads reach the leader only through ``give_back()`` and ``wake()``.

Every state has a deadline (docs/explanation/limits.rst):

* TLS handshake, idle keep-alive, request arrival: ``timeout`` each;
* lingering close after an error reply: ``LINGER_TIME``.

When ``max_open_connections`` are open, a newcomer closes the longest-idle
connection, or is refused at once with a 503 when none is idle: nobody waits
behind idle peers.  At EMFILE/ENFILE the listener is left alone for
``ACCEPT_PAUSE`` (or until a connection closes), logged once per episode.
"""

from __future__ import annotations

import errno
import math
import socket
import threading
from collections import deque
from time import monotonic

import degu._pool
from degu._common import TYPE_CHECKING
from degu._pool import WorkerPool
from degu._rendering import render_error_response
from degu._request import Session
from degu._serving import (
    HOT_BUSY_MAX,
    HOT_WAIT,
    RequestRefused,
    ServerConnection,
    ServingRules,
    Verdict,
    advance,
    send_error,
    serve_turn,
)
from degu._stream import LINGER_BYTES, LINGER_TIME, SocketStream, TLSStream

if TYPE_CHECKING:
    import logging
    import select
    from collections.abc import Callable
    from typing import Any

    from degu._log import LazyLogger


__all__ = [
    "ACCEPT_BATCH",
    "ACCEPT_PAUSE",
    "INLINE_MAX",
    "READY_MAX",
    "SHUTDOWN_FORCE_GRACE",
    "ServerLoop",
    "default_max_open",
]

#: Connections accepted per wake-up before other connections get a turn.
ACCEPT_BATCH = 64
#: Out of descriptors: how long the listener is left alone (a close ends it).
ACCEPT_PAUSE = 0.5
#: After shutdown's timeout, how long to wait for forcibly woken workers.
SHUTDOWN_FORCE_GRACE = 2.0
#: How long the leader may run apps without polling: then it polls, or, stuck
#: in an app, the standby has another thread lead (docs/explanation/
#: connections.rst).  With scheduling, the most a blocking app delays the
#: other connections and the accept queue.
INLINE_MAX = 0.002
#: Ready requests the loop holds before it reads more connections: each
#: holds a receive buffer, so a burst from thousands of idle connections
#: costs at most this many buffers beyond the running requests' (peak RSS
#: when 5,000 send at once: bench_peers.py idle).
READY_MAX = 128
#: Descriptors left for everything but connections, beside one per worker
#: (a file being served, a log file, an upstream connection...).
RESERVED_DESCRIPTORS = 32

_OUT_OF_DESCRIPTORS = frozenset(
    [errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM]
)
_BUSY = render_error_response(503)
# select.EPOLLIN / EPOLLOUT / EPOLLONESHOT.
_READ = 1
_WRITE = 4
_ONESHOT = 1 << 30
_ACCEPT = "accept"
_WAKE = "wake"
_HANDSHAKE = 5
_ON_WORKER = -1


def default_max_open(max_connections: int) -> tuple[int, int]:
    """The default open-connection bound, from ``RLIMIT_NOFILE``.

    Returns ``(bound, soft_limit)``: the soft limit minus one descriptor per
    worker and ``RESERVED_DESCRIPTORS``, and never below ``max_connections``.
    """
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(soft - max_connections - RESERVED_DESCRIPTORS, max_connections), soft


def _peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    import struct

    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


class ServerLoop:
    """Accepts connections and holds those with no request running."""

    def __init__(
        self,
        lsock: socket.socket,
        rules: ServingRules,
        *,
        workers: int,
        max_open: int,
        max_requests: int,
        wrap: Callable[[socket.socket], Any] | None,
        log: LazyLogger,
        access_log: logging.Logger | None = None,
    ) -> None:
        self._lsock = lsock
        self._rules = rules
        self._pool = WorkerPool(workers, self.work, "degu-worker")
        rules.crowded = self._crowded
        self._max_open = max_open
        self._max_requests = max_requests
        self._timeout = rules.timeout
        self._wrap = wrap
        self._log = log
        self._access_log = access_log
        self._tcp = lsock.family in (socket.AF_INET, socket.AF_INET6)
        self._unix = lsock.family == socket.AF_UNIX
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        # epoll itself, not the selectors module: its bookkeeping (a key
        # object per registration, two mapping lookups per call) cost more
        # than the system calls under wrk -c128 (cProfile).
        self._ep: select.epoll | None = None
        #: fd -> (what to call for its events, the events it is watched for).
        self._watched: dict[int, tuple[Any, int]] = {}
        self._conns: set[ServerConnection] = set()
        # One dict per waiting state, in the order connections entered it:
        # all share one timeout, so the first entry is the next to expire.
        self._handshaking: dict[ServerConnection, None] = {}
        self._idle: dict[ServerConnection, None] = {}
        self._reading: dict[ServerConnection, None] = {}
        self._lingering: dict[ServerConnection, None] = {}
        # Indexed by a waiting state (a Verdict, or _HANDSHAKE).
        self._by_state: tuple[dict[ServerConnection, None], ...] = (
            self._idle,  # Verdict.IDLE
            self._reading,  # Verdict.READING
            {},  # Verdict.READY: not a waiting state
            self._lingering,  # Verdict.LINGER
            {},  # Verdict.CLOSE: not a waiting state
            self._handshaking,  # _HANDSHAKE
        )
        self._busy: set[ServerConnection] = set()
        self._returned: deque[tuple[ServerConnection, int]] = deque()
        #: Connections with a request to run, in the order they got ready.
        self._todo: deque[ServerConnection] = deque()
        # Dispatches in the current and the previous HOT_WAIT window: how
        # many clients are active, which a leader's hot wait would starve.
        self._window_start = 0.0
        self._window_count = 0
        self._window_prev = 0
        self._stopping: Callable[[], bool] = rules.stopping
        self._shutdown_timeout: Callable[[], float] = lambda: 0.0
        # Guarded by _lock: leadership, app slots, the standby and spares.
        self._lock = threading.Lock()
        self._standby_cv = threading.Condition(self._lock)
        self._spare_cv = threading.Condition(self._lock)
        self._slot_cv = threading.Condition(self._lock)
        #: threading.get_ident() of the leader; 0 while leadership is vacant.
        self._leader = 0
        #: Leadership given up, for a spare (or a new thread) to take.
        self._vacant = False
        #: When the leader started running apps without polling (0: polling).
        self._inline_since = 0.0
        #: Holds one item while the leader runs an app inline, the only time
        #: its leadership may be vacated: whoever pops it (an atomic step)
        #: decides whether the leader still leads afterwards.
        self._in_app: deque[bool] = deque()
        #: Stretches of inline runs begun (the standby sleeps when it stalls).
        self._stretches = 0
        #: No thread could be started to lead: the standby leads, unwatched.
        self._orphaned = False
        #: The standby sleeps without a timeout (notify it when inlining).
        self._standby_sleeping = 0
        #: Parked threads, waiting for a vacant leadership.
        self._spares = 0
        #: Free app slots (max_connections minus the requests running).
        self._free = workers
        self._slot_waiters = 0
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._abort = False
        self._finished = False
        self._accept_paused_until = 0.0
        self._accept_failures = 0
        self._accept_failing_since = 0.0
        self._refused = 0

    # -- the public face ----------------------------------------------------

    def wake(self) -> None:
        """Make the loop look at its flags now (any thread, signal handlers)."""
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # full (a wake-up is pending anyway) or closed (loop done)

    def give_back(self, conn: ServerConnection, verdict: int) -> None:
        """A worker is done with *conn*: hand it back (any thread)."""
        with self._lock:
            if not self._finished:
                returned = self._returned
                first = not returned
                returned.append((conn, verdict))
                # The loop empties the whole queue once woken: only the
                # first connection of a batch pays for the wake-up.
                if first:
                    self.wake()
                return
        # The loop is gone (shutdown gave up waiting): close it here.
        self._close_stream(conn)

    def run(
        self, stopping: Callable[[], bool], shutdown_timeout: Callable[[], float]
    ) -> None:
        """Serve until *stopping()*, then drain (see ``Server.shutdown``).

        The calling thread is the standby: it never runs an app, so it
        returns once the last leader has drained, whatever apps still do.
        """
        import select

        self._stopping = stopping
        self._shutdown_timeout = shutdown_timeout
        self._ep = select.epoll()
        try:
            self._watch(self._lsock.fileno(), _READ, _ACCEPT)
            self._watch(self._wake_r.fileno(), _READ, _WAKE)
        except BaseException:
            self._finish()
            raise
        self._vacant = True
        try:
            self._appoint()
            self._stand_by()
        except BaseException:
            # KeyboardInterrupt, say: the leader closes up without a drain.
            self._abort = True
            self.wake()
            self._done.wait(SHUTDOWN_FORCE_GRACE)
            raise
        self._done.wait()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    # -- leadership ---------------------------------------------------------

    def _lead(self) -> bool:
        """Run the loop while this thread leads: False once it finished it."""
        me = threading.get_ident()
        try:
            while not self._stopping() and not self._abort:
                self._step(self._wait_time())
                if self._leader != me:
                    return True  # it left the leadership in an app
            # Nothing runs inline while stopping: the drain keeps its leader.
            if not self._abort:
                self._drain(self._shutdown_timeout())
        except BaseException as e:
            with self._lock:
                if self._leader != me:
                    raise  # from an app it ran inline, after leaving the leadership
            self._error = e
        self._finish()
        return False

    def _appoint(self) -> None:
        """Get the vacant leadership taken: by a spare, or a new thread."""
        with self._lock:
            if self._spares:
                self._spare_cv.notify()
                return
        thread = threading.Thread(target=self._follow, name="degu-leader", daemon=True)
        try:
            thread.start()
        except RuntimeError as e:
            # No thread (a process limit): the standby leads, and runs
            # nothing inline since nobody would watch it.
            self._log.warning("could not start a leader thread: %r", e)
            with self._lock:
                self._orphaned = True
                self._standby_cv.notify()

    def _take_lead(self) -> bool:
        """Take the vacant leadership (under ``_lock``)."""
        if not self._vacant:
            return False
        self._vacant = False
        self._leader = threading.get_ident()
        self._inline_since = 0.0
        return True

    def _follow(self) -> None:
        """A thread other than the standby: leader, then worker, then spare."""
        while self._park():
            if not self._lead():
                return  # it finished the loop

    def _park(self) -> bool:
        """Wait as a spare: True once leading; False to exit."""
        with self._lock:
            while not self._finished:
                if self._take_lead():
                    return True
                self._spares += 1
                try:
                    woken = self._spare_cv.wait(degu._pool.IDLE_EXIT)
                finally:
                    self._spares -= 1
                if not woken and not self._vacant:
                    return False
            return False

    def _stand_by(self) -> None:
        """The standby (the thread in ``run()``): watch the leader's apps.

        Wakes when the leader's current stretch of inline runs reaches
        ``INLINE_MAX``, and every ``INLINE_MAX`` while stretches follow one
        another; sleeps otherwise.  A stretch that began at S is therefore
        looked at by S + ``INLINE_MAX``: if the leader has not polled since
        and is in an app, its leadership is vacated for a spare thread.
        Waking once per ``INLINE_MAX`` rather than every millisecond saves
        the leader a GIL hand-over each time (server CPU per request at
        wrk -c128: see bench/README.md).
        """
        lock = self._lock
        cv = self._standby_cv
        seen = -1
        with lock:
            while not self._finished:
                if self._orphaned:
                    if not self._take_lead():
                        cv.wait(INLINE_MAX)
                        continue
                    lock.release()
                    try:
                        self._lead()  # with nothing inline: see _run_todo
                    finally:
                        lock.acquire()
                    return
                since = self._inline_since
                if since:
                    left = since + INLINE_MAX - monotonic()
                    if left > 0:
                        cv.wait(left)
                    elif self._take_app():
                        # The leader is in an app: it leads no more, and
                        # hands its connection back when the app returns.
                        self._leader = 0
                        self._inline_since = 0.0
                        self._vacant = True
                        lock.release()
                        try:
                            self._appoint()
                        finally:
                            lock.acquire()
                    else:
                        # Between two apps: the leader polls before the next.
                        cv.wait(INLINE_MAX)
                elif self._stretches != seen:
                    # Inline runs lately: look again within INLINE_MAX.
                    seen = self._stretches
                    cv.wait(INLINE_MAX)
                else:
                    self._standby_sleeping += 1
                    cv.wait()
                    self._standby_sleeping -= 1

    def _finish(self) -> None:
        """The last leader's duty: close what is left, release every thread."""
        with self._lock:
            self._finished = True
            self._leader = 0
            self._standby_cv.notify_all()
            self._spare_cv.notify_all()
            self._slot_cv.notify_all()
        try:
            for conn in list(self._conns):
                if conn not in self._busy:
                    self._close(conn, "server shutdown")
            if self._ep is not None:
                self._ep.close()
            self._wake_r.close()
            self._wake_w.close()
            self._pool.stop()
        finally:
            self._done.set()

    # -- one turn of the loop ------------------------------------------------

    def _step(self, timeout: float | None) -> None:
        assert self._ep is not None
        # epoll counts whole milliseconds: round up, or a deadline less than
        # 1 ms away would be polled for in a busy loop.
        timeout = -1.0 if timeout is None else math.ceil(timeout * 1e3) * 1e-3
        watched = self._watched
        for fd, _mask in self._ep.poll(timeout):
            # Looked up now: an earlier event of this batch may have closed
            # (and an accept reused) the fd; a stray event is harmless, as
            # every handler only does what cannot block.
            entry = watched.get(fd)
            if entry is None:
                continue
            tag = entry[0]
            if tag is _ACCEPT:
                self._accept()
            elif tag is _WAKE:
                try:
                    while self._wake_r.recv(4096):
                        pass
                except OSError:
                    pass
            elif tag.state >= 0:
                if len(self._todo) < READY_MAX:
                    self._ready(tag)
                # Else left for a later turn: level-triggered, it is
                # reported again, and meanwhile holds no buffer.
            elif tag.armed:
                # Running a request (bytes it pipelined, a client answering
                # a hot wait): they are for the thread running it.  Stop the
                # reports until it comes back (_arm); EPOLLONESHOT lets at
                # most one more through (a hang-up is always reported).
                try:
                    self._ep.modify(fd, _ONESHOT)
                except OSError:
                    pass  # its app closed the socket: the kernel forgot it
                tag.armed = 0
        self._take_back()
        self._expire(monotonic())
        # Last: after an inline run this thread may no longer lead.
        if self._todo:
            self._run_todo()

    def _wait_time(self) -> float | None:
        deadlines = []
        timeout = self._timeout
        for waiting, limit in (
            (self._handshaking, timeout),
            (self._idle, timeout),
            (self._reading, timeout),
            (self._lingering, LINGER_TIME),
        ):
            if waiting:
                deadlines.append(next(iter(waiting)).since + limit)
        if self._accept_paused_until:
            deadlines.append(self._accept_paused_until)
        if self._todo:
            return 0.0  # requests left to run after a look at the others
        if not deadlines:
            return None
        return max(min(deadlines) - monotonic(), 0.0)

    def _expire(self, now: float) -> None:
        timeout = self._timeout
        for waiting, limit, message in (
            (self._handshaking, timeout, "TLS handshake not done within timeout"),
            (self._idle, timeout, "idle for timeout"),
            (self._reading, timeout, "request not received within timeout"),
            (self._lingering, LINGER_TIME, None),
        ):
            while waiting:
                conn = next(iter(waiting))
                if conn.since + limit > now:
                    break
                if conn.pending is not None:
                    # A parsed request whose body stalled: the app answers
                    # (it may refuse without reading); the body's budget is
                    # spent, so a stalled peer is cut off at its next read.
                    conn.run_anyway = True
                    self._dispatch(conn)
                else:
                    if waiting is self._handshaking or waiting is self._reading:
                        self._log_unanswered(conn.session.address, None)
                    self._close(conn, message)
        if self._accept_paused_until and now >= self._accept_paused_until:
            self._resume_accepting()

    # -- states -------------------------------------------------------------

    def _enter(self, conn: ServerConnection, state: int, events: int) -> None:
        """Put *conn* in waiting *state*, watched for *events*."""
        if conn.state != state:
            if conn.state >= 0:
                self._by_state[conn.state].pop(conn, None)
            conn.state = state
            conn.since = monotonic()
            self._by_state[state][conn] = None
        self._arm(conn, events)

    def _arm(self, conn: ServerConnection, events: int) -> None:
        """Watch *conn* for *events*, level-triggered.

        A connection stays watched while it runs a request, so that one
        served by the leader costs no epoll_ctl() at all (server CPU per
        request at wrk -c128: see bench/README.md); ``_step`` stops the
        reports of one that gets bytes meanwhile.
        """
        if conn.armed == events:
            return
        assert self._ep is not None
        fd = conn.sock.fileno()
        if fd in self._watched:
            try:
                self._ep.modify(fd, events)
            except FileNotFoundError:
                # Closed behind our back (an app's on_connect may close its
                # socket) and the descriptor reused: the kernel forgot it.
                self._ep.register(fd, events)
        else:
            self._ep.register(fd, events)
        self._watched[fd] = (conn, events)
        conn.armed = events

    def _watch(self, fd: int, events: int, tag: Any) -> None:
        assert self._ep is not None
        old = self._watched.get(fd)
        if old is None:
            self._ep.register(fd, events)
        elif old[1] != events:
            self._ep.modify(fd, events)
        elif old[0] is tag:
            return
        self._watched[fd] = (tag, events)

    def _unwatch(self, fd: int) -> None:
        assert self._ep is not None
        if self._watched.pop(fd, None) is not None:
            self._ep.unregister(fd)

    def _leave(self, conn: ServerConnection) -> None:
        """Take *conn* out of its waiting state (it stays registered)."""
        if conn.state >= 0:
            self._by_state[conn.state].pop(conn, None)
        conn.state = _ON_WORKER

    def _unregister(self, conn: ServerConnection) -> None:
        conn.armed = 0
        try:
            fd = conn.sock.fileno()
        except OSError:
            return
        if fd >= 0:
            self._unwatch(fd)

    # -- accepting ------------------------------------------------------------

    def _accept(self) -> None:
        lsock = self._lsock
        for _ in range(ACCEPT_BATCH):
            try:
                sock, address = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as e:
                if e.errno in _OUT_OF_DESCRIPTORS:
                    self._pause_accepting(e)
                else:
                    self._log.warning("accept() failed: %r", e)
                return
            if self._accept_failures:
                self._log.warning(
                    "accepting again after %d failed accept() calls in %.1f s",
                    self._accept_failures,
                    monotonic() - self._accept_failing_since,
                )
                self._accept_failures = 0
            self._admit(sock, address)

    def _pause_accepting(self, error: OSError) -> None:
        now = monotonic()
        if not self._accept_failures:
            self._accept_failing_since = now
            self._log.warning(
                "accept() failed: %s; %d connections open; accepting again "
                "when one closes (at most %.1f s apart)",
                error,
                len(self._conns),
                ACCEPT_PAUSE,
            )
        self._accept_failures += 1
        if not self._accept_paused_until:
            self._unwatch(self._lsock.fileno())
        self._accept_paused_until = now + ACCEPT_PAUSE

    def _resume_accepting(self) -> None:
        if self._accept_paused_until:
            self._accept_paused_until = 0.0
            self._watch(self._lsock.fileno(), _READ, _ACCEPT)

    def _admit(self, sock: socket.socket, address: Any) -> None:
        if len(self._conns) >= self._max_open:
            if self._idle:
                self._close(
                    next(iter(self._idle)),
                    "closed for a newcomer (open-connection limit)",
                )
            else:
                self._refuse_newcomer(sock, address)
                return
        if self._refused:
            self._log.warning(
                "accepting new connections again after refusing %d", self._refused
            )
            self._refused = 0
        try:
            credentials = None
            if self._tcp:
                # Nagle + delayed ACK would add ~40 ms to many responses.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            elif self._unix:
                credentials = _peer_credentials(sock)
            conn = ServerConnection(
                sock, Session(address, credentials, self._max_requests)
            )
            if self._wrap is None:
                conn.attach(SocketStream(sock, self._timeout))
            else:
                conn.sock = self._wrap(sock)
        except Exception as e:
            # One connection's set-up failing (a peer reset before a
            # setsockopt...) must not end serve_forever() for everyone.
            sock.close()
            self._log.warning("Could not start connection %r: %r", address, e)
            return
        self._conns.add(conn)
        if self._wrap is None:
            self._connected(conn)
        else:
            self._handshake(conn)

    def _refuse_newcomer(self, sock: socket.socket, address: Any) -> None:
        if not self._refused:
            self._log.warning(
                "open-connection limit (%d) reached and none idle: refusing "
                "new connections (first: %r)",
                self._max_open,
                address,
            )
        self._refused += 1
        sent = None
        if self._wrap is None:
            try:
                sock.send(_BUSY, socket.MSG_DONTWAIT)
                sent = 503
            except OSError:
                pass
        sock.close()
        self._log_unanswered(address, sent)

    def _handshake(self, conn: ServerConnection) -> None:
        import ssl

        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._enter(conn, _HANDSHAKE, _READ)
            return
        except ssl.SSLWantWriteError:
            self._enter(conn, _HANDSHAKE, _WRITE)
            return
        except (OSError, ValueError) as e:
            # Failed handshakes are the peer's business: one log line.
            self._log_unanswered(conn.session.address, None)
            self._close(conn, f"{type(e).__name__}: {e}")
            return
        conn.attach(TLSStream(conn.sock))
        self._connected(conn)

    def _connected(self, conn: ServerConnection) -> None:
        self._log.info("+ %s New connection", conn.session)
        if self._rules.on_connect is not None:
            self._dispatch(conn)
            return
        conn.connected = True
        self._wait_request(conn, Verdict.IDLE)

    # -- reading requests -----------------------------------------------------

    def _wait_request(self, conn: ServerConnection, state: int) -> None:
        assert conn.reader is not None and conn.stream is not None
        if state == Verdict.IDLE:
            conn.reader.release()
        self._enter(conn, state, _READ)
        if conn.stream.layered and conn.stream.pending():
            # Decrypted bytes the selector cannot see: look at them now.
            self._read(conn)

    def _ready(self, conn: ServerConnection) -> None:
        state = conn.state
        if state == _HANDSHAKE:
            self._handshake(conn)
        elif state == Verdict.LINGER:
            self._drain_linger(conn)
        elif state == Verdict.IDLE or state == Verdict.READING:
            self._read(conn)

    def _read(self, conn: ServerConnection) -> None:
        reader = conn.reader
        stream = conn.stream
        assert reader is not None and stream is not None
        try:
            n = reader.fill_nowait() if not reader.full() else None
            # TLS: decrypted bytes poll() will not report; take them now.
            while n and stream.layered and stream.pending() and not reader.full():
                n = reader.fill_nowait()
            eof = n == 0
        except OSError as e:
            self._close(conn, f"{type(e).__name__}: {e}")
            return
        if not reader.buffered and conn.pending is None:
            if eof:
                self._close(conn, "peer closed the connection")
            return
        try:
            verdict = advance(conn)
        except RequestRefused as e:
            self._refuse(conn, e)
            return
        if verdict == Verdict.READY or (eof and conn.pending is not None):
            # At EOF mid-body the app still runs: its body read reports it.
            conn.run_anyway = True
            self._dispatch(conn)
        elif eof:
            # The peer half-closed mid-preamble: it may still read an answer.
            self._refuse(conn, RequestRefused(400, "EOF in the request preamble"))
        elif conn.state == Verdict.IDLE:
            # Only now: a request that arrived whole goes straight from idle
            # to a worker, without a pass through the reading state.
            self._enter(conn, Verdict.READING, _READ)

    def _refuse(self, conn: ServerConnection, error: RequestRefused) -> None:
        assert conn.stream is not None
        self._log.warning("%s: refused request: %s", conn.session, error)
        conn.session._close(f"refused request: {error}")
        send_error(conn.stream, error.status)
        self._log_unanswered(conn.session.address, error.status)
        self._linger(conn)

    def _dispatch(self, conn: ServerConnection) -> None:
        # It stays watched (see _arm).  It runs at the end of the loop's
        # turn, after every event of the batch.
        if conn.state >= 0:  # self._leave(), inlined: once per request
            self._by_state[conn.state].pop(conn, None)
        conn.state = _ON_WORKER
        self._busy.add(conn)
        self._todo.append(conn)
        now = monotonic()
        if now - self._window_start >= HOT_WAIT:
            recent = now - self._window_start < 2 * HOT_WAIT
            self._window_prev = self._window_count if recent else 0
            self._window_count = 0
            self._window_start = now
        self._window_count += 1

    def _take_app(self) -> bool:
        """Claim the leader's app run: True if it was in one (it no longer
        leads once it returns), False if it had already left it."""
        try:
            self._in_app.pop()
        except IndexError:
            return False
        return True

    def _run_todo(self) -> None:
        """Run the ready requests: inline while a slot is free, else queue.

        Returns early, leaving the rest of ``_todo`` for after a poll, once
        apps have run for ``INLINE_MAX`` without one; or, without touching
        loop state again, when its leadership was vacated meanwhile.  The
        leader holds one app slot from its first inline run to its return.
        """
        lock = self._lock
        todo = self._todo
        in_app = self._in_app
        since = 0.0
        while todo:
            if since:
                if monotonic() - since >= INLINE_MAX:
                    break  # look at the others first (wait time 0)
            else:
                with lock:
                    # Requests queued for a slot before go first.
                    if (
                        self._free > self._slot_waiters
                        and not self._orphaned
                        and not (self._stopping() or self._abort)
                    ):
                        self._free -= 1
                        since = self._inline_since = monotonic()
                        self._stretches += 1
                        if self._standby_sleeping:
                            self._standby_cv.notify_all()
                if not since:
                    self._pool.submit(todo.popleft())
                    continue
            conn = todo.popleft()
            in_app.append(True)
            verdict = Verdict.CLOSE
            try:
                verdict = self._serve(conn)
            finally:
                try:
                    in_app.pop()
                except IndexError:
                    # Its leadership was vacated: back like a worker's,
                    # without touching loop state.
                    with lock:
                        self._free += 1
                        if self._slot_waiters:
                            self._slot_cv.notify()
                    self.give_back(conn, verdict)
                    since = 0.0
            if not since:
                return
            self._busy.discard(conn)
            self._settle(conn, verdict)
        if since:
            with lock:
                self._free += 1
                if self._slot_waiters:
                    self._slot_cv.notify()
                self._inline_since = 0.0

    # -- running requests -----------------------------------------------------

    def _crowded(self) -> bool:
        """Whether serve_turn must not wait for its client's next request.

        Under load a thread hot-waiting on its connection would contend for
        the GIL with the leader and starve other clients: so not while more
        than ``HOT_BUSY_MAX`` connections are busy, or were dispatched in
        this ``HOT_WAIT`` window and the last (read without the lock: a
        stale count only errs one way or the other for one request).
        """
        if (
            len(self._busy) > HOT_BUSY_MAX
            or self._window_prev + self._window_count > HOT_BUSY_MAX
        ):
            return True
        me = threading.get_ident()
        if self._leader != me:
            return False  # a worker: it holds no loop
        with self._lock:
            if not self._take_app():
                return False  # lost the leadership just now: a worker
            # Hot-waiting here would leave the server without a poller:
            # another thread leads from now on; this one is a worker.
            self._leader = 0
            self._inline_since = 0.0
            self._vacant = True
        self._appoint()
        return False

    def work(self, conn: ServerConnection) -> None:
        """Run *conn*'s turn on a worker thread, then hand it back."""
        verdict = Verdict.CLOSE
        try:
            with self._lock:
                while self._free <= 0 and not self._finished:
                    self._slot_waiters += 1
                    self._slot_cv.wait()
                    self._slot_waiters -= 1
                if self._finished:
                    return  # the loop gave up on it: give_back() closes it
                self._free -= 1
            try:
                verdict = self._serve(conn)
            finally:
                with self._lock:
                    self._free += 1
                    if self._slot_waiters:
                        self._slot_cv.notify()
        finally:
            self.give_back(conn, verdict)

    def _serve(self, conn: ServerConnection) -> int:
        """Run *conn*'s turn (any thread); return where it goes next."""
        session = conn.session
        log = self._log
        verdict = Verdict.CLOSE
        try:
            if not conn.connected:
                conn.connected = True
                on_connect = self._rules.on_connect
                assert on_connect is not None
                if on_connect(session, conn.sock) is not True:
                    log.warning("rejected by app.on_connect(): %s", session)
                    session._close("rejected by on_connect")
                    return Verdict.CLOSE
            verdict = serve_turn(conn, self._rules)
        except RequestRefused as e:
            log.warning("%s: refused request: %s", session, e)
            session._close(f"refused request: {e}")
            if not e.after_app:  # else the app's own access log has it
                self._log_unanswered(session.address, e.status)
            verdict = Verdict.LINGER
        except (OSError, EOFError) as e:
            # Timeouts, resets, a peer that closed: not bugs.
            session._close(f"{type(e).__name__}: {e}")
        except Exception as e:
            log.exception("%s: error serving connection", session)
            session._close(f"{type(e).__name__}: {e}")
            verdict = Verdict.LINGER
        return verdict

    def _take_back(self) -> None:
        returned = self._returned
        while returned:
            conn, verdict = returned.popleft()
            self._busy.discard(conn)
            self._settle(conn, verdict)

    def _settle(self, conn: ServerConnection, verdict: int) -> None:
        """Take *conn* back from a request's turn, as *verdict* says."""
        if verdict == Verdict.LINGER:
            self._linger(conn)
        elif verdict == Verdict.CLOSE or self._rules.stopping():
            stopping = self._rules.stopping()
            self._close(conn, "server shutdown" if stopping else "closed")
        else:
            self._wait_request(conn, verdict)

    def _log_unanswered(self, address: Any, status: int | None) -> None:
        """An access line for what no app answered (docs/reference/server.rst).

        *status* is the error status sent, or None when nothing was (a failed
        TLS handshake, a peer that timed out mid-request or vanished).
        """
        access = self._access_log
        if access is None or not access.isEnabledFor(20):  # logging.INFO
            return
        from degu.misc import format_access_line

        size = None if status is None else 0  # error replies have no body
        access.info("%s", format_access_line(address, None, None, status, size))

    # -- closing ------------------------------------------------------------------

    def _linger(self, conn: ServerConnection) -> None:
        # Closing with unread input makes the kernel send RST, which can
        # destroy our reply before the peer reads it: shut our side, then drop
        # what still comes, briefly (RFC 9112 §9.6).
        if type(conn.stream) is not SocketStream or self._rules.stopping():
            self._close(conn, None)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn, None)
            return
        conn.drained = 0
        self._enter(conn, Verdict.LINGER, _READ)

    def _drain_linger(self, conn: ServerConnection) -> None:
        sock = conn.sock
        try:
            while True:
                data = sock.recv(65536, socket.MSG_DONTWAIT)
                if not data:
                    break
                conn.drained += len(data)
                if conn.drained > LINGER_BYTES:
                    break
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._close(conn, None)

    def _close_stream(self, conn: ServerConnection) -> None:
        try:
            if conn.stream is not None:
                conn.stream.close()
            else:
                conn.sock.close()
        except OSError:
            pass

    def _close(self, conn: ServerConnection, message: str | None) -> None:
        if conn not in self._conns:
            return
        self._leave(conn)
        self._unregister(conn)
        self._conns.discard(conn)
        self._close_stream(conn)
        session = conn.session
        if message is not None:
            session._close(message)
        self._log.info(
            "- %s Handled %d requests: %s", session, session.requests, session.message
        )
        if self._accept_paused_until:
            self._resume_accepting()

    # -- shutdown -------------------------------------------------------------------

    def _drain(self, timeout: float) -> None:
        """Stop accepting, close waiting connections, let running requests end."""
        if not self._accept_paused_until:
            self._unwatch(self._lsock.fileno())
        self._accept_paused_until = 0.0
        # Closed, not just ignored: a newcomer is refused at once instead of
        # waiting in the kernel's backlog until the drain ends.
        self._lsock.close()
        for waiting in (self._handshaking, self._idle, self._reading, self._lingering):
            for conn in list(waiting):
                self._close(conn, "server shutdown")
        deadline = monotonic() + timeout
        while self._busy and (left := deadline - monotonic()) > 0:
            self._step(left)
        if not self._busy:
            return
        for conn in list(self._busy):
            self._log.warning("%s: request cut short by shutdown", conn.session)
            if conn.stream is not None:
                conn.stream.shutdown()
        deadline = monotonic() + SHUTDOWN_FORCE_GRACE
        while self._busy and (left := deadline - monotonic()) > 0:
            self._step(left)
