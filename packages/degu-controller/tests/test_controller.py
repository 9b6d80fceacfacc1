"""Tests for degu.controller.Controller.

Every test talks to the controlled server over real loopback sockets and
checks what is left behind: "nothing listening" means a connection attempt
is refused, and the thread count must return to its starting value.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import inspect
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from degu import controller as controller_module
from degu.controller import STOP_TIMEOUT, TIMEOUT_ENV, Controller

Check = Callable[[], None]
IO_TIMEOUT = 5.0  # seconds any client socket in these tests may block
SLOW = 60.0  # a ready_timeout no passing test ever waits for


class EchoProtocol(asyncio.Protocol):
    """Write back whatever arrives."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: cast.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class EchoController(Controller):
    def factory(self) -> asyncio.BaseProtocol:
        return EchoProtocol()


class FuncController(Controller):
    """A controller whose factory is any callable (set per test)."""

    def __init__(self, make: Callable[[], Any], *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.make = make

    def factory(self) -> asyncio.BaseProtocol:
        result: asyncio.BaseProtocol = self.make()
        return result


def connect(address: Any) -> socket.socket:
    family = socket.AF_INET6 if len(address) == 4 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(IO_TIMEOUT)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def echo(address: Any, data: bytes = b"ping") -> bytes:
    with connect(address) as sock:
        sock.sendall(data)
        received = b""
        while len(received) < len(data):
            more = sock.recv(len(data) - len(received))
            if not more:
                break
            received += more
        return received


def assert_refused(address: Any) -> None:
    with pytest.raises(ConnectionRefusedError):
        connect(address).close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (used where a failure hides it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def assert_closed_by_peer(sock: socket.socket) -> None:
    """The server side closed: EOF, or a reset when data was unread."""
    try:
        assert sock.recv(100) == b""
    except ConnectionResetError:
        pass


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A loop owned by the test (the controller must never close it)."""
    new = asyncio.new_event_loop()
    yield new
    new.close()


# ---- the classic controller's surface ------------------------------------


def test_Controller_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Controller("127.0.0.1", 0)  # type: ignore[abstract]

    class NoFactory(Controller):
        pass

    with pytest.raises(TypeError, match="factory"):
        NoFactory("127.0.0.1", 0)  # type: ignore[abstract]


def test_Controller_signature_matches_the_seed() -> None:
    params = inspect.signature(Controller).parameters
    assert list(params) == ["hostname", "port", "ready_timeout", "loop"]
    assert params["ready_timeout"].default == 1.0
    assert params["loop"].default is None
    assert controller_module.__all__ == ("Controller",)


def test_Controller_attributes_before_start() -> None:
    c = EchoController("127.0.0.1", 0)
    assert (c.hostname, c.port, c.ready_timeout) == ("127.0.0.1", 0, 1.0)
    assert isinstance(c.loop, asyncio.AbstractEventLoop)
    assert not c.loop.is_closed()
    assert c.server is None
    assert c.address is None
    c.loop.close()


def test_Controller_keeps_the_given_loop(loop: asyncio.AbstractEventLoop) -> None:
    c = EchoController("::1", 8000, 2.5, loop)
    assert (c.hostname, c.port, c.ready_timeout) == ("::1", 8000, 2.5)
    assert c.loop is loop


def test_Controller_environment_timeout_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "2.5")
    c = EchoController("127.0.0.1", 0, ready_timeout=7)
    assert c.ready_timeout == 2.5
    c.loop.close()
    monkeypatch.setenv(TIMEOUT_ENV, "3")
    c = EchoController("127.0.0.1", 0)
    assert c.ready_timeout == 3.0
    c.loop.close()


@pytest.mark.parametrize("value", ["abc", "1,5", "1s", "", " "])
def test_Controller_rejects_unparsable_environment_timeout(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, value)
    with pytest.raises(ValueError) as info:
        EchoController("127.0.0.1", 0)
    assert str(info.value) == f"{TIMEOUT_ENV}: need a number of seconds; got {value!r}"


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_Controller_rejects_out_of_range_environment_timeout(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, value)
    with pytest.raises(ValueError, match=f"^{TIMEOUT_ENV}: need a finite number"):
        EchoController("127.0.0.1", 0)


@pytest.mark.parametrize("value", [0, -0.5, float("nan"), float("inf")])
def test_Controller_rejects_bad_ready_timeout_value(value: float) -> None:
    with pytest.raises(ValueError) as info:
        EchoController("127.0.0.1", 0, value)
    assert str(info.value) == (
        f"ready_timeout: need a finite number of seconds > 0; got {value!r}"
    )


@pytest.mark.parametrize("value", ["1", None, True])
def test_Controller_rejects_bad_ready_timeout_type(value: object) -> None:
    with pytest.raises(TypeError) as info:
        EchoController("127.0.0.1", 0, value)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"ready_timeout: need a {float!r}; got a {type(value)!r}: {value!r}"
    )


def test_Controller_accepts_the_smallest_positive_ready_timeout() -> None:
    c = EchoController("127.0.0.1", 0, 5e-324)
    assert c.ready_timeout == 5e-324
    c.loop.close()


# ---- start / stop ----------------------------------------------------------


def test_Controller_serves_on_port_zero(wait_thread_baseline: Check) -> None:
    c = EchoController("127.0.0.1", 0)
    c.start()
    try:
        host, port = c.address
        assert host == "127.0.0.1" and port > 0
        assert c.port == 0  # the argument is kept unchanged
        assert isinstance(c.server, asyncio.Server)
        assert c.server.sockets[0].getsockname() == c.address
        [thread] = [t for t in threading.enumerate() if t.name == "degu-controller"]
        assert thread.daemon
        # No retry loop: start() returned, so the server accepts right now.
        assert echo(c.address, b"hello") == b"hello"
    finally:
        address = c.address
        c.stop()
    assert c.server is None and c.address is None
    assert_refused(address)
    wait_thread_baseline()


def test_Controller_serves_ipv6(wait_thread_baseline: Check) -> None:
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) on this machine")
    with EchoController("::1", 0) as c:
        host, port, _flowinfo, _scope = c.address
        assert host == "::1" and port > 0
        assert echo(c.address) == b"ping"
        address = c.address
    assert_refused(address)
    wait_thread_baseline()


def test_Controller_resolves_a_hostname_and_joins_resolver_threads(
    wait_thread_baseline: Check,
) -> None:
    """'localhost' goes through getaddrinfo in the loop's executor threads."""
    with EchoController("localhost", 0) as c:
        assert echo(c.address) == b"ping"
    wait_thread_baseline()


def test_Controller_start_twice_is_a_no_op() -> None:
    with EchoController("127.0.0.1", 0) as c:
        server, address = c.server, c.address
        c.start()
        assert (c.server, c.address) == (server, address)
        assert echo(address) == b"ping"


def test_Controller_stop_before_start_and_twice(wait_thread_baseline: Check) -> None:
    c = EchoController("127.0.0.1", 0)
    c.stop()
    c.start()
    c.stop()
    c.stop()
    assert c.server is None
    wait_thread_baseline()


def test_Controller_as_context_manager(wait_thread_baseline: Check) -> None:
    c = EchoController("127.0.0.1", 0)
    with c as entered:
        assert entered is c
        address = c.address
        assert echo(address) == b"ping"
    assert c.server is None
    assert_refused(address)
    wait_thread_baseline()


def test_Controller_restarts_with_its_own_loop(wait_thread_baseline: Check) -> None:
    c = EchoController("127.0.0.1", 0)
    first_loop = c.loop
    c.start()
    c.stop()
    assert first_loop.is_closed()  # ours, so closed by stop()
    c.start()
    try:
        assert c.loop is not first_loop
        assert echo(c.address, b"again") == b"again"
    finally:
        c.stop()
    assert c.loop.is_closed()
    wait_thread_baseline()


def test_Controller_restarts_with_a_given_loop_and_never_closes_it(
    loop: asyncio.AbstractEventLoop, wait_thread_baseline: Check
) -> None:
    c = EchoController("127.0.0.1", 0, loop=loop)
    for _ in range(3):
        c.start()
        assert c.loop is loop
        assert echo(c.address) == b"ping"
        c.stop()
        assert not loop.is_closed()
    # The loop is still usable by its owner, with nothing of ours queued.
    assert loop.run_until_complete(asyncio.sleep(0, "mine")) == "mine"
    wait_thread_baseline()


def test_Controller_start_rejects_a_closed_given_loop() -> None:
    given = asyncio.new_event_loop()
    given.close()
    c = EchoController("127.0.0.1", 0, loop=given)
    with pytest.raises(RuntimeError, match="closed"):
        c.start()


def test_Controller_runs_and_restarts_on_a_uvloop_loop(
    wait_thread_baseline: Check,
) -> None:
    uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed")
    given = uvloop.new_event_loop()
    try:
        c = EchoController("127.0.0.1", 0, loop=given)
        for _ in range(2):  # restart too
            with c:
                assert echo(c.address) == b"ping"
                address = c.address
            assert_refused(address)
    finally:
        given.close()
    wait_thread_baseline()


def test_Controller_garbage_collected_unstarted_closes_its_loop() -> None:
    c = EchoController("127.0.0.1", 0)
    loop = c.loop
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del c
        gc.collect()
    assert loop.is_closed()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_Controller_exits_the_interpreter_while_running() -> None:
    """A running controller (daemon thread) never delays or dirties exit."""
    script = (
        "import asyncio\n"
        "from degu.controller import Controller\n"
        "class C(Controller):\n"
        "    def factory(self):\n"
        "        return asyncio.Protocol()\n"
        "c = C('127.0.0.1', 0)\n"
        "c.start()\n"
        "print(c.address[1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", script],
        capture_output=True,
        timeout=30,
        text=True,
    )
    assert done.returncode == 0
    assert done.stderr == ""
    assert int(done.stdout) > 0


# ---- failed starts: original error, at once, nothing left behind -----------


def test_Controller_start_on_a_busy_port_raises_at_once(
    wait_thread_baseline: Check,
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = busy.getsockname()
        c = EchoController("127.0.0.1", address[1], ready_timeout=SLOW)
        began = time.monotonic()
        with pytest.raises(OSError) as info:
            c.start()
        assert time.monotonic() - began < SLOW / 2  # did not wait it out
        assert info.value.errno == errno.EADDRINUSE
        assert c.server is None and c.address is None
    assert_refused(address)
    wait_thread_baseline()
    assert c.loop.is_closed()


def test_Controller_start_on_a_bad_host_raises(wait_thread_baseline: Check) -> None:
    # 192.0.2.1 (TEST-NET-1, RFC 5737) is no local address: bind() fails
    # with EADDRNOTAVAIL at once, without any name lookup.
    c = EchoController("192.0.2.1", 0, ready_timeout=SLOW)
    with pytest.raises(OSError) as info:
        c.start()
    # asyncio's own error: Python 3.13 rewords it and drops the errno.
    error = info.value
    assert error.errno == errno.EADDRNOTAVAIL or "192.0.2.1" in str(error)
    wait_thread_baseline()


class FactoryBroke(Exception):
    pass


def broken_factory() -> asyncio.BaseProtocol:
    raise FactoryBroke("no protocol today")


def test_Controller_start_reraises_the_factory_error(
    wait_thread_baseline: Check,
) -> None:
    port = free_port()
    c = FuncController(broken_factory, "127.0.0.1", port, ready_timeout=SLOW)
    with pytest.raises(FactoryBroke, match="no protocol today") as info:
        c.start()
    # The original traceback, from inside the loop thread, is kept.
    names = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "broken_factory" in names
    assert c.server is None
    assert_refused(("127.0.0.1", port))
    wait_thread_baseline()


def test_Controller_start_rejects_a_factory_returning_None(
    wait_thread_baseline: Check,
) -> None:
    port = free_port()
    c = FuncController(lambda: None, "127.0.0.1", port, ready_timeout=SLOW)
    with pytest.raises(TypeError, match=r"factory\(\) returned None"):
        c.start()
    assert_refused(("127.0.0.1", port))
    wait_thread_baseline()


def test_Controller_start_after_a_failed_start(wait_thread_baseline: Check) -> None:
    calls = []

    def flaky() -> asyncio.BaseProtocol:
        calls.append(1)
        if len(calls) == 1:
            raise FactoryBroke("first call")
        return EchoProtocol()

    c = FuncController(flaky, "127.0.0.1", 0)
    with pytest.raises(FactoryBroke):
        c.start()
    with c:
        assert echo(c.address) == b"ping"
    wait_thread_baseline()


class NeverBindsLoop(asyncio.SelectorEventLoop):
    """A loop whose create_server() waits (asynchronously) forever."""

    async def create_server(self, *args: Any, **kw: Any) -> Any:
        await asyncio.Event().wait()


def test_Controller_start_times_out_naming_the_knob(
    wait_thread_baseline: Check,
) -> None:
    slow = NeverBindsLoop()
    try:
        c = EchoController("127.0.0.1", 0, ready_timeout=0.05, loop=slow)
        with pytest.raises(TimeoutError) as info:
            c.start()
        message = str(info.value)
        assert "ready_timeout=0.05" in message
        assert TIMEOUT_ENV in message
        assert "still blocked" not in message
        assert c.server is None and c.address is None
        wait_thread_baseline()
        assert not slow.is_closed()  # given, so never closed by us
    finally:
        slow.close()


def test_Controller_start_times_out_by_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch, wait_thread_baseline: Check
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.05")
    slow = NeverBindsLoop()
    try:
        c = EchoController("127.0.0.1", 0, ready_timeout=SLOW, loop=slow)
        with pytest.raises(TimeoutError, match=r"ready_timeout=0\.05 "):
            c.start()
    finally:
        slow.close()
    wait_thread_baseline()


class LateBindingLoop(asyncio.SelectorEventLoop):
    """A loop whose create_server() binds, then blocks the loop a while."""

    bound = threading.Event()

    async def create_server(self, *args: Any, **kw: Any) -> Any:
        server = await super().create_server(*args, **kw)
        self.bound.set()
        time.sleep(0.3)  # synchronous on purpose: nothing can cancel it now
        return server


def test_Controller_closes_a_server_bound_after_the_timeout(
    wait_thread_baseline: Check,
) -> None:
    port = free_port()
    late = LateBindingLoop()
    try:
        c = EchoController("127.0.0.1", port, ready_timeout=0.05, loop=late)
        with pytest.raises(TimeoutError):
            c.start()
        assert late.bound.is_set()  # it did bind, after start() gave up ...
        assert_refused(("127.0.0.1", port))  # ... and nothing listens
        wait_thread_baseline()
    finally:
        late.close()


def test_Controller_start_timeout_with_a_blocked_loop_then_stop(
    wait_thread_baseline: Check,
) -> None:
    release = threading.Event()

    def blocking_factory() -> asyncio.BaseProtocol:
        release.wait(IO_TIMEOUT)
        return EchoProtocol()

    c = FuncController(blocking_factory, "127.0.0.1", 0, ready_timeout=0.05)
    c.stop_timeout = 0.05
    with pytest.raises(TimeoutError, match="still blocked"):
        c.start()
    with pytest.raises(RuntimeError, match="previous stop"):
        c.start()
    release.set()
    c.stop()  # now the loop thread can finish its clean-up
    wait_thread_baseline()
    c.start()  # and the controller is usable again
    try:
        assert echo(c.address) == b"ping"
    finally:
        c.stop()


# ---- stop() always returns, closes every client, cancels every task ---------


def test_Controller_stop_with_idle_clients(wait_thread_baseline: Check) -> None:
    c = EchoController("127.0.0.1", 0)
    c.start()
    clients = [connect(c.address) for _ in range(5)]
    try:
        for sock in clients:  # each one is accepted and served
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
        c.stop()
        for sock in clients:
            assert_closed_by_peer(sock)
    finally:
        for sock in clients:
            sock.close()
    wait_thread_baseline()


def test_Controller_stop_with_a_client_mid_request(wait_thread_baseline: Check) -> None:
    started = threading.Event()
    cancelled = threading.Event()

    class SlowHandler(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            asyncio.get_running_loop().create_task(self.handle())

        async def handle(self) -> None:
            started.set()
            try:
                await asyncio.sleep(SLOW)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    c = FuncController(SlowHandler, "127.0.0.1", 0)
    c.start()
    with connect(c.address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert started.wait(IO_TIMEOUT)
        c.stop()
        assert cancelled.is_set()
        assert_closed_by_peer(sock)
    wait_thread_baseline()


def test_Controller_stop_closes_asyncio_stream_handlers(
    wait_thread_baseline: Check,
) -> None:
    """Stream-based servers (StreamReaderProtocol) are tracked too."""
    reading = threading.Event()
    outcome: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: Any) -> None:
        reading.set()
        try:
            await reader.read(100)
            outcome.append("eof")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        finally:
            writer.close()

    def streams() -> asyncio.BaseProtocol:
        return asyncio.StreamReaderProtocol(asyncio.StreamReader(), handler)

    c = FuncController(streams, "127.0.0.1", 0)
    c.start()
    with connect(c.address) as sock:
        assert reading.wait(IO_TIMEOUT)
        c.stop()
        assert_closed_by_peer(sock)
    assert outcome in (["cancelled"], ["eof"])
    wait_thread_baseline()


def test_Controller_stop_with_a_task_ignoring_cancellation(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    wait_thread_baseline: Check,
) -> None:
    monkeypatch.setattr(controller_module, "UNWIND_TIMEOUT", 0.05)
    started = threading.Event()
    release = threading.Event()

    class Stubborn(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            asyncio.get_running_loop().create_task(self.refuse_to_die())

        async def refuse_to_die(self) -> None:
            started.set()
            while not release.is_set():
                try:
                    await asyncio.sleep(0.01)
                except asyncio.CancelledError:
                    pass

    c = FuncController(Stubborn, "127.0.0.1", 0)
    c.start()
    with connect(c.address), caplog.at_level(logging.WARNING, "degu.controller"):
        assert started.wait(IO_TIMEOUT)
        c.stop()  # bounded, although the task never ends
    release.set()
    assert "ignore cancel" in caplog.text
    wait_thread_baseline()


def test_Controller_stop_raises_when_the_loop_is_blocked(
    wait_thread_baseline: Check,
) -> None:
    release = threading.Event()
    blocked = threading.Event()

    class Blocking(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            blocked.set()
            release.wait(IO_TIMEOUT)  # synchronous code that stalls the loop

    c = FuncController(Blocking, "127.0.0.1", 0, ready_timeout=0.05)
    c.stop_timeout = 0.1
    c.start()
    with connect(c.address) as sock:
        sock.sendall(b"x")
        assert blocked.wait(IO_TIMEOUT)
        with pytest.raises(TimeoutError, match=r"within 0\.1 seconds"):
            c.stop()
        release.set()
        c.stop()  # the retry completes once the loop runs again
        assert_closed_by_peer(sock)
    assert c.server is None
    wait_thread_baseline()


def test_Controller_stop_waits_for_a_loop_blocked_less_than_the_bound(
    wait_thread_baseline: Check,
) -> None:
    blocked = threading.Event()

    class BriefBlock(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            blocked.set()
            time.sleep(0.05)

    c = FuncController(BriefBlock, "127.0.0.1", 0)
    assert c.stop_timeout == STOP_TIMEOUT
    c.start()
    with connect(c.address) as sock:
        sock.sendall(b"x")
        assert blocked.wait(IO_TIMEOUT)
        c.stop()
    wait_thread_baseline()


def test_Controller_stop_from_the_loop_thread_is_refused() -> None:
    errors: list[BaseException] = []

    class SelfStopper(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            try:
                c.stop()
            except RuntimeError as exc:
                errors.append(exc)
            transport.close()

    c = FuncController(SelfStopper, "127.0.0.1", 0)
    with c, connect(c.address) as sock:
        assert_closed_by_peer(sock)
    assert [str(e) for e in errors] == [
        "Controller.stop() called from its own loop thread"
    ]


# ---- factory() on later connections -----------------------------------------


def test_Controller_logs_a_factory_failing_later_and_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = []

    def sometimes() -> asyncio.BaseProtocol | None:
        calls.append(1)
        if len(calls) == 3:
            raise FactoryBroke("third call")
        if len(calls) == 4:
            return None
        return EchoProtocol()

    c = FuncController(sometimes, "127.0.0.1", 0)
    with c, caplog.at_level(logging.ERROR, "degu.controller"):
        assert echo(c.address) == b"ping"  # the instance made by start()
        assert echo(c.address) == b"ping"  # call 2
        for _ in range(2):  # calls 3 and 4 fail: those connections close
            with connect(c.address) as sock:
                assert_closed_by_peer(sock)
        assert echo(c.address) == b"ping"  # call 5: still serving
    failures = [r for r in caplog.records if r.name == "degu.controller"]
    assert len(failures) == 2
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], FactoryBroke)
    assert failures[1].exc_info is not None
    assert isinstance(failures[1].exc_info[1], TypeError)


def test_Controller_keeps_a_buffered_protocol_buffered() -> None:
    class BufferedEcho(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buffer = bytearray(64)

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buffer

        def buffer_updated(self, nbytes: int) -> None:
            self.transport.write(b"B" + bytes(self.buffer[:nbytes]))

    with FuncController(BufferedEcho, "127.0.0.1", 0) as c:
        assert echo(c.address, b"xyz") == b"Bxy"  # 3 of 4 bytes read


def test_Controller_forwards_flow_control_to_the_protocol() -> None:
    size = 8 * 1024 * 1024  # far above any socket and transport buffer
    events: list[str] = []

    class Flood(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            cast(asyncio.Transport, transport).write(b"z" * size)

        def pause_writing(self) -> None:
            events.append("pause")

        def resume_writing(self) -> None:
            events.append("resume")

    with FuncController(Flood, "127.0.0.1", 0) as c, connect(c.address) as sock:
        received = 0
        while received < size:
            chunk = sock.recv(1 << 20)
            assert chunk
            received += len(chunk)
    assert events[:2] == ["pause", "resume"]


def test_Controller_stop_with_a_client_that_never_reads(
    wait_thread_baseline: Check,
) -> None:
    """Unsent data does not hold stop() up: transports are aborted."""
    paused = threading.Event()

    class Flood(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            cast(asyncio.Transport, transport).write(b"z" * (8 * 1024 * 1024))

        def pause_writing(self) -> None:
            paused.set()

    c = FuncController(Flood, "127.0.0.1", 0)
    c.start()
    with connect(c.address):
        assert paused.wait(IO_TIMEOUT)
        c.stop()
    wait_thread_baseline()


def test_Controller_start_rejects_a_loop_running_elsewhere() -> None:
    elsewhere = asyncio.new_event_loop()
    running = threading.Event()
    elsewhere.call_soon(running.set)
    thread = threading.Thread(target=elsewhere.run_forever)
    thread.start()
    try:
        assert running.wait(IO_TIMEOUT)
        c = EchoController("127.0.0.1", 0, loop=elsewhere)
        with pytest.raises(RuntimeError, match="running"):
            c.start()
        assert c.server is None
    finally:
        elsewhere.call_soon_threadsafe(elsewhere.stop)
        thread.join(IO_TIMEOUT)
        elsewhere.close()


def test_Controller_stop_right_after_a_client_connects(
    wait_thread_baseline: Check,
) -> None:
    """A connection the loop has not accepted yet is closed, never leaked.

    With both threads on one CPU, stop() usually lands while asyncio is still
    setting the new connection up (the race behind a socket leak in
    asyncio's Server._attach() on 3.11).
    """
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})  # this thread, and threads it starts
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(20):
                c = EchoController("127.0.0.1", 0)
                c.start()
                with connect(c.address) as sock:
                    c.stop()
                    assert_closed_by_peer(sock)
            gc.collect()
    finally:
        os.sched_setaffinity(0, cpus)
    assert [str(w.message) for w in caught] == []
    wait_thread_baseline()
