"""The I/O loop's leader runs requests itself; a standby keeps it honest.

Pins docs/explanation/connections.rst ("Who runs a request"): a blocking app
run by the leader delays other clients and newcomers by at most
``INLINE_MAX`` plus scheduling; ``max_connections`` still bounds the apps
running at once, and with every slot taken the loop keeps accepting,
refusing and timing out; shutdown, ``max_requests`` and ``on_connect`` work
whichever thread leads.  Waits are bounded; pacing uses Event.wait.
"""

from __future__ import annotations

import socket
import threading
from time import monotonic
from typing import Any

import pytest

from degu.base import Request, Session
from degu.client import Client
from degu.server import Server

#: Generous bound for "at once" on a noisy 2-core machine (INLINE_MAX is 2 ms).
PROMPTLY = 1.0

GET = b"GET /%s HTTP/1.1\r\n\r\n"


class Gate:
    """An app whose ``/block`` requests wait for ``open()``; others answer."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        #: Names of the threads that ran requests.
        self.threads: set[str] = set()

    def __call__(self, session: Session, request: Request, api: Any) -> Any:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.add(threading.current_thread().name)
        try:
            if request.path == ["block"]:
                self.started.release()
                self.release.wait(10)
            return (200, "OK", {}, b"/".join(p.encode() for p in request.path))
        finally:
            with self.lock:
                self.running -= 1

    def open(self) -> None:
        self.release.set()


def answered_within(address: Any, path: str = "fast") -> float:
    """Seconds a fresh client takes to connect and get one answer."""
    start = monotonic()
    with Client(address, timeout=10).connect() as conn:
        assert conn.get("/" + path, {}).body.read() == path.encode()
    return monotonic() - start


def read_reply(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n\r\n") and b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_a_blocking_app_does_not_hold_up_other_clients(live_server: Any) -> None:
    gate = Gate()
    live = live_server(("127.0.0.1", 0), gate, max_connections=4)
    with socket.create_connection(live.address, timeout=10) as blocked:
        try:
            blocked.sendall(GET % b"block")
            assert gate.started.acquire(timeout=5)
            # The first request runs on the thread that polled: the standby
            # has taken the leadership, so these are served while it blocks.
            for _ in range(3):
                assert answered_within(live.address) < PROMPTLY
        finally:
            gate.open()
        assert read_reply(blocked).startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_blocking_app_does_not_hold_up_a_keep_alive_neighbour(
    live_server: Any,
) -> None:
    """Requests ready in the same batch as a blocking one are not stuck behind it."""
    gate = Gate()
    live = live_server(("127.0.0.1", 0), gate, max_connections=4)
    socks = [socket.create_connection(live.address, timeout=10) for _ in range(4)]
    try:
        for sock in socks[:3]:  # connected and idle in the loop first
            sock.sendall(GET % b"warm")
            assert read_reply(sock).startswith(b"HTTP/1.1 200 OK\r\n")
        socks[0].sendall(GET % b"block")
        start = monotonic()
        for sock in socks[1:]:
            sock.sendall(GET % b"next")
        for sock in socks[1:]:
            assert read_reply(sock).startswith(b"HTTP/1.1 200 OK\r\n")
        assert monotonic() - start < PROMPTLY
        assert gate.started.acquire(timeout=5)
    finally:
        gate.open()
        assert read_reply(socks[0]).startswith(b"HTTP/1.1 200 OK\r\n")
        for sock in socks:
            sock.close()


def test_max_connections_bounds_apps_running_at_once(live_server: Any) -> None:
    gate = Gate()
    live = live_server(("127.0.0.1", 0), gate, max_connections=2, timeout=10)
    socks = [socket.create_connection(live.address, timeout=10) for _ in range(5)]
    try:
        for sock in socks:
            sock.sendall(GET % b"block")
        assert gate.started.acquire(timeout=5) and gate.started.acquire(timeout=5)
        # The other three wait for a slot, unstarted, however long it takes.
        assert not gate.started.acquire(timeout=0.3)
        assert gate.running == 2
        # And the loop still serves: a newcomer is accepted (then waits).
        with socket.create_connection(live.address, timeout=10) as late:
            late.sendall(GET % b"late")
            gate.open()
            assert read_reply(late).startswith(b"HTTP/1.1 200 OK\r\n")
        for sock in socks:
            assert read_reply(sock).startswith(b"HTTP/1.1 200 OK\r\n")
        assert gate.most == 2
    finally:
        gate.open()
        for sock in socks:
            sock.close()


def test_with_every_slot_busy_the_loop_still_accepts_and_times_out(
    live_server: Any,
) -> None:
    """With the only slot stuck in an app, requests queue; the loop lives on.

    (The 503 at ``max_open_connections`` with every slot busy is pinned by
    test_loop.py.)
    """
    gate = Gate()
    live = live_server(("127.0.0.1", 0), gate, max_connections=1, timeout=0.5)
    busy = socket.create_connection(live.address, timeout=10)
    queued = socket.create_connection(live.address, timeout=10)
    try:
        busy.sendall(GET % b"block")
        assert gate.started.acquire(timeout=5)
        queued.sendall(GET % b"queued")  # waits for the only slot
        with socket.create_connection(live.address, timeout=10) as slow:
            slow.sendall(b"GET / HTTP/1.1\r\n")  # never finished
            start = monotonic()
            assert slow.recv(100) == b""  # closed at its timeout
            assert monotonic() - start < 0.5 + PROMPTLY
        with socket.create_connection(live.address, timeout=10) as idle:
            start = monotonic()
            assert idle.recv(100) == b""  # idle for timeout: closed
            assert monotonic() - start < 0.5 + PROMPTLY
        assert gate.running == 1 and gate.most == 1
        gate.open()
        assert read_reply(busy).startswith(b"HTTP/1.1 200 OK\r\n")
        assert read_reply(queued).startswith(b"HTTP/1.1 200 OK\r\n")
        assert gate.most == 1
    finally:
        gate.open()
        busy.close()
        queued.close()


def test_a_hot_wait_does_not_hold_up_other_clients(
    live_server: Any, monkeypatch: Any
) -> None:
    """A thread that waits for its client's next request leads no more."""
    import degu._serving

    monkeypatch.setattr(degu._serving, "HOT_WAIT", 3.0)
    live = live_server(("127.0.0.1", 0), Gate())
    with Client(live.address, timeout=10).connect() as first:
        # Served inline, then hot-waiting (3 s) for this client's next one.
        assert first.get("/one", {}).body.read() == b"one"
        assert answered_within(live.address) < PROMPTLY
        assert first.get("/two", {}).body.read() == b"two"


def test_shutdown_while_the_leader_runs_an_app() -> None:
    gate = Gate()
    server = Server(("127.0.0.1", 0), gate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(GET % b"block")
        assert gate.started.acquire(timeout=5)
        stopper = threading.Thread(target=server.shutdown, args=(5,))
        stopper.start()
        # The drain closes the listener; the running request still finishes.
        deadline = monotonic() + 5
        while monotonic() < deadline:
            try:
                socket.create_connection(server.address, timeout=1).close()
            except OSError:
                break
            threading.Event().wait(0.01)
        else:
            pytest.fail("the listener stayed open during shutdown")
        gate.open()
        assert read_reply(sock).startswith(b"HTTP/1.1 200 OK\r\n")
        stopper.join(10)
        thread.join(10)
        assert not thread.is_alive() and not stopper.is_alive()


def test_shutdown_cuts_an_app_the_leader_ran_that_outlives_it() -> None:
    """serve_forever()'s thread is the standby: it never waits on an app."""
    import degu._loop

    gate = Gate()
    server = Server(("127.0.0.1", 0), gate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(server.address, timeout=10) as sock:
            sock.sendall(GET % b"block")
            assert gate.started.acquire(timeout=5)
            start = monotonic()
            server.shutdown(0.2)
            thread.join(10)
            assert not thread.is_alive()
            bound = 0.2 + degu._loop.SHUTDOWN_FORCE_GRACE
            assert monotonic() - start < bound + PROMPTLY
    finally:
        gate.open()


def test_max_requests_closes_connections_run_by_the_leader(live_server: Any) -> None:
    live = live_server(("127.0.0.1", 0), Gate(), max_requests=3)
    socks = [socket.create_connection(live.address, timeout=10) for _ in range(8)]
    try:
        for _ in range(3):
            for sock in socks:  # one batch of ready requests per round
                sock.sendall(GET % b"r")
            for sock in socks:
                assert read_reply(sock).startswith(b"HTTP/1.1 200 OK\r\n")
        for sock in socks:
            sock.settimeout(5)
            assert sock.recv(100) == b""  # closed after its third request
    finally:
        for sock in socks:
            sock.close()


def test_pipelined_requests_from_many_clients_are_answered_in_order(
    live_server: Any,
) -> None:
    live = live_server(("127.0.0.1", 0), Gate())
    socks = [socket.create_connection(live.address, timeout=10) for _ in range(16)]
    try:
        for i, sock in enumerate(socks):
            sock.sendall(b"".join(GET % b"%d-%d" % (i, n) for n in range(3)))
        for i, sock in enumerate(socks):
            data = b""
            expected = [b"%d-%d" % (i, n) for n in range(3)]
            while data.count(b"HTTP/1.1 200 OK") < 3 or not data.endswith(expected[2]):
                chunk = sock.recv(65536)
                assert chunk
                data += chunk
            bodies = [
                part.rpartition(b"\r\n\r\n")[2] for part in data.split(b"HTTP/1.1 ")[1:]
            ]
            assert bodies == expected
    finally:
        for sock in socks:
            sock.close()


def test_on_connect_runs_inline_and_can_refuse(live_server: Any) -> None:
    seen: list[int] = []
    gate = Gate()

    class App:
        def __call__(self, session: Session, request: Request, api: Any) -> Any:
            return gate(session, request, api)

        def on_connect(self, session: Session, sock: Any) -> bool:
            seen.append(session.address[1])
            return len(seen) % 2 == 1  # every other connection refused

    live = live_server(("127.0.0.1", 0), App())
    for n in range(6):
        with socket.create_connection(live.address, timeout=10) as sock:
            sock.sendall(GET % b"hi")
            try:
                reply = read_reply(sock)
            except ConnectionResetError:  # closed with our request unread
                reply = b""
            if n % 2 == 0:
                assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
            else:
                assert reply == b""
    assert len(seen) == 6


def test_a_blocking_on_connect_does_not_hold_up_other_clients(
    live_server: Any,
) -> None:
    release = threading.Event()
    started = threading.Event()

    class App:
        def __call__(self, session: Session, request: Request, api: Any) -> Any:
            return (200, "OK", {}, b"fast")

        def on_connect(self, session: Session, sock: Any) -> bool:
            if not started.is_set():
                started.set()
                release.wait(10)
            return True

    live = live_server(("127.0.0.1", 0), App())
    with socket.create_connection(live.address, timeout=10) as first:
        try:
            assert started.wait(5)
            assert answered_within(live.address) < PROMPTLY
        finally:
            release.set()
        first.sendall(GET % b"x")
        assert read_reply(first).startswith(b"HTTP/1.1 200 OK\r\n")


def test_at_rest_the_server_keeps_a_leader_and_one_standby(
    live_server: Any, monkeypatch: Any
) -> None:
    import degu._pool

    monkeypatch.setattr(degu._pool, "IDLE_EXIT", 0.2)
    before = set(threading.enumerate())

    def ours() -> int:
        return len(set(threading.enumerate()) - before)

    gate = Gate()
    live = live_server(("127.0.0.1", 0), gate, max_connections=8)
    socks = [socket.create_connection(live.address, timeout=10) for _ in range(6)]
    try:
        for sock in socks:
            sock.sendall(GET % b"block")
        for _ in socks:
            assert gate.started.acquire(timeout=5)
        # Six apps blocked at once: six threads, a leader and the standby.
        assert ours() <= 6 + 2
        gate.open()
        for sock in socks:
            assert read_reply(sock).startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        gate.open()
        for sock in socks:
            sock.close()
    # The standby is the thread in serve_forever(); spares leave.
    deadline = monotonic() + 10
    while ours() != 2 and monotonic() < deadline:
        threading.Event().wait(0.05)
    assert ours() == 2


def test_without_a_leader_thread_the_standby_leads_and_runs_nothing_itself(
    live_server: Any, monkeypatch: Any, caplog: Any
) -> None:
    """No thread to lead (a process limit): serve_forever()'s thread leads,
    unwatched, so every request goes to a worker and none can block it."""
    start = threading.Thread.start

    def refuse_leaders(thread: threading.Thread) -> None:
        if thread.name == "degu-leader":
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", refuse_leaders)
    gate = Gate()
    live = live_server(("127.0.0.1", 0), gate, max_connections=4)
    with socket.create_connection(live.address, timeout=10) as blocked:
        try:
            blocked.sendall(GET % b"block")
            assert gate.started.acquire(timeout=5)
            assert answered_within(live.address) < PROMPTLY
        finally:
            gate.open()
        assert read_reply(blocked).startswith(b"HTTP/1.1 200 OK\r\n")
    assert not [t for t in threading.enumerate() if t.name == "degu-leader"]
    assert gate.threads and all(n.startswith("degu-worker") for n in gate.threads)
    assert "could not start a leader thread" in caplog.text


@pytest.mark.parametrize("more", ["a pipelined request", "a half-close"])
def test_a_client_sending_more_while_its_request_runs_does_not_make_the_loop_spin(
    live_server: Any, more: str
) -> None:
    """A running request's connection stays watched (level-triggered) until
    its socket gets bytes; then the loop stops its reports until it is back."""
    import time

    gate = Gate()
    live = live_server(("127.0.0.1", 0), gate, max_connections=4)
    with socket.create_connection(live.address, timeout=10) as sock:
        try:
            sock.sendall(GET % b"block")
            assert gate.started.acquire(timeout=5)
            if more == "a half-close":
                sock.shutdown(socket.SHUT_WR)
            else:
                sock.sendall(GET % b"after")
            # Readable for the whole wait: a loop that kept being told so
            # would burn a CPU second per second.
            cpu = time.process_time()
            gate.release.wait(0.5)
            spent = time.process_time() - cpu
            assert spent < 0.2, f"{spent:.2f} s of CPU in 0.5 s"
        finally:
            gate.open()
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            if more != "a half-close" and data.endswith(b"after"):
                break
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        if more == "a pipelined request":
            assert data.count(b"HTTP/1.1 200 OK") == 2


def test_a_burst_of_ready_requests_holds_at_most_READY_MAX_in_the_loop(
    live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections beyond READY_MAX stay unread (and bufferless) until the
    loop has room; level-triggered, they are reported again and answered."""
    import degu._loop

    monkeypatch.setattr(degu._loop, "READY_MAX", 2)
    most = [0]
    dispatch = degu._loop.ServerLoop._dispatch

    def counting(self: Any, conn: Any) -> None:
        dispatch(self, conn)
        most[0] = max(most[0], len(self._todo))

    monkeypatch.setattr(degu._loop.ServerLoop, "_dispatch", counting)
    live = live_server(("127.0.0.1", 0), Gate())
    socks = [socket.create_connection(live.address, timeout=10) for _ in range(40)]
    try:
        for sock in socks:
            sock.sendall(GET % b"burst")
        for sock in socks:
            assert read_reply(sock).startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        for sock in socks:
            sock.close()
    assert 1 <= most[0] <= 2
