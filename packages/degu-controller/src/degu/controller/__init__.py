"""Run an asyncio server in a daemon thread, started and stopped from outside.

This module implements ``Controller`` and its context manager
(docs/reference/controller.rst).  It uses the standard library only and imports no
other ``degu`` module, so degu-controller can be installed on its own.

Design, in one paragraph: every start creates a fresh ``_Run`` record that the
caller's thread and the loop thread share.  The loop thread reports exactly
once, under a lock, whether the server came up, failed, or was abandoned by a
caller that stopped waiting; whatever happens, that thread closes the server,
every client transport it saw, and (for a loop it created) the loop itself
before it ends.  The caller only ever waits with a bound.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final, Self

__all__ = ("Controller",)

log = logging.getLogger(__name__)

#: Environment variable that, when set, replaces the
#: ``ready_timeout`` argument (docs/reference/controller.rst).
TIMEOUT_ENV: Final = "PYTHONASYNCIOCONTROLLERTIMEOUT"

#: Seconds :meth:`Controller.stop` waits for the loop thread to finish (or
#: ``ready_timeout`` when that is larger) before raising ``TimeoutError``.
STOP_TIMEOUT: Final = 5.0

#: Seconds the loop thread gives cancelled tasks, closed transports and the
#: closed server to finish unwinding during a stop; whatever is still pending
#: afterwards is abandoned (and logged) so that stop() stays bounded.
UNWIND_TIMEOUT: Final = 1.0

# States of a _Run (see _Run.settle).
_PENDING: Final = "pending"
_READY: Final = "ready"
_FAILED: Final = "failed"
_ABANDONED: Final = "abandoned"


def _check_timeout(value: object, name: str) -> float:
    """Return *value* as a float number of seconds, finite and > 0."""
    if type(value) not in (int, float):
        # The format of docs/explanation/wire.rst, spelled out here because
        # degu-controller imports nothing from degu-core.
        raise TypeError(f"{name}: need a {float!r}; got a {type(value)!r}: {value!r}")
    seconds = float(value)  # type: ignore[arg-type]
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{name}: need a finite number of seconds > 0; got {value!r}")
    return seconds


def _resolve_ready_timeout(argument: object) -> float:
    """The environment variable wins over the argument."""
    raw = os.environ.get(TIMEOUT_ENV)
    # Set at all (even to an empty string) means it must parse
    # (docs/reference/controller.rst).
    if raw is None:
        return _check_timeout(argument, "ready_timeout")
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}: need a number of seconds; got {raw!r}")
    return _check_timeout(seconds, TIMEOUT_ENV)


class _Run:
    """What the caller's thread and the loop thread share for one start."""

    def __init__(self, loop: asyncio.AbstractEventLoop, owned: bool) -> None:
        self.loop = loop
        self.owned = owned
        self.lock = threading.Lock()
        self.settled = threading.Event()
        self.state: str = _PENDING
        self.error: BaseException | None = None
        self.server: asyncio.Server | None = None
        self.address: Any = None
        # Touched only from the loop thread:
        self.transports: set[asyncio.BaseTransport] = set()
        self.wakeup: asyncio.Future[None] | None = None
        self.stop_requested = False
        # Set (under lock) once the loop no longer serves us, so that no
        # stop callback is left queued in a loop that is not ours.
        self.loop_done = False

    def settle(self, state: str, error: BaseException | None = None) -> bool:
        """Record the outcome once; False when the caller already gave up."""
        with self.lock:
            if self.state != _PENDING:
                return False
            self.state = state
            self.error = error
        self.settled.set()
        return True

    def request_stop(self) -> None:
        """Ask the loop thread to tear down (runs in the loop thread)."""
        self.stop_requested = True
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)


class _Tracking:
    """Forward protocol callbacks to the user's protocol, noting its transport.

    Python 3.11 and 3.12 have no ``Server.close_clients()``, so this is how
    stop() finds every client connection to close.
    """

    def __init__(self, inner: Any, run: _Run) -> None:
        self._inner = inner
        self._run = run
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._run.transports.add(transport)
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._run.transports.discard(self._transport)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result


class _Refused(asyncio.Protocol):
    """Close at once a connection that ``factory()`` failed to serve."""

    def __init__(self, run: _Run) -> None:
        self._run = run
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._run.transports.add(transport)
        transport.abort()  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._run.transports.discard(self._transport)


class _StreamTracking(_Tracking, asyncio.Protocol):
    """Tracking wrapper for an ordinary (streaming) protocol."""


class _BufferedTracking(_Tracking, asyncio.BufferedProtocol):
    """Tracking wrapper that keeps a ``BufferedProtocol`` buffered."""

    def get_buffer(self, sizehint: int) -> Any:
        return self._inner.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        self._inner.buffer_updated(nbytes)


def _wrap(inner: object, run: _Run) -> asyncio.BaseProtocol:
    if isinstance(inner, asyncio.BufferedProtocol):
        return _BufferedTracking(inner, run)
    return _StreamTracking(inner, run)


class Controller(abc.ABC):
    """Run the server made by :meth:`factory` in a background daemon thread.

    Args:
        hostname: passed as ``host=`` to ``loop.create_server()``.
        port: passed as ``port=``; ``0`` picks a free port (see :attr:`address`).
        ready_timeout: seconds :meth:`start` waits for the server; the
            ``PYTHONASYNCIOCONTROLLERTIMEOUT`` environment variable wins.
        loop: an event loop to run; by default the controller creates its own.

    Raises:
        ValueError: ``ready_timeout`` or the environment variable is not a
            finite number of seconds > 0.
    """

    #: Seconds :meth:`stop` waits for the loop thread (see ``STOP_TIMEOUT``).
    stop_timeout: float = STOP_TIMEOUT

    def __init__(
        self,
        hostname: str | Sequence[str] | None,
        port: int,
        ready_timeout: float = 1.0,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        # Validate before creating a loop, so a bad value leaks nothing.
        self.ready_timeout: float = _resolve_ready_timeout(ready_timeout)
        self.hostname = hostname
        self.port = port
        self._owns_loop = loop is None
        self.loop: asyncio.AbstractEventLoop = (
            asyncio.new_event_loop() if loop is None else loop
        )
        self.server: asyncio.Server | None = None
        self._run: _Run | None = None
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def factory(self) -> asyncio.BaseProtocol:
        """Return a new protocol instance; called once per accepted connection."""

    @property
    def address(self) -> Any:
        """The bound address of the first listening socket, or ``None``."""
        run = self._run
        return None if run is None or run.state != _READY else run.address

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __del__(self) -> None:
        # A never-started (or cleanly stopped) controller must not leave its
        # own loop to the garbage collector, which would warn about it.
        loop = getattr(self, "loop", None)
        if (
            getattr(self, "_owns_loop", False)
            and getattr(self, "_thread", None) is None
            and loop is not None
            and not loop.is_closed()
            and not loop.is_running()
        ):
            loop.close()

    def _join_bound(self) -> float:
        return max(self.stop_timeout, self.ready_timeout)

    def start(self) -> None:
        """Start serving in a daemon thread; return once connections are accepted.

        Raises:
            Exception: whatever ``factory()`` or ``create_server()`` raised
                (``TypeError`` when ``factory()`` returned ``None``).
            TimeoutError: the server was not ready within ``ready_timeout``.
            RuntimeError: the loop is closed or already running elsewhere,
                or an earlier :meth:`stop` has not finished.
        """
        if self._thread is not None:
            if self._run is not None and self._run.stop_requested:
                raise RuntimeError("Controller: the previous stop() has not finished")
            return
        if self._owns_loop and self.loop.is_closed():
            self.loop = asyncio.new_event_loop()  # restart: a fresh loop
        if self.loop.is_closed():
            raise RuntimeError(f"Controller: the given loop is closed: {self.loop!r}")
        if self.loop.is_running():
            raise RuntimeError(f"Controller: the loop is running: {self.loop!r}")
        run = _Run(self.loop, self._owns_loop)
        thread = threading.Thread(
            target=self._thread_main, args=(run,), name="degu-controller", daemon=True
        )
        self._run, self._thread = run, thread
        thread.start()
        if not run.settled.wait(self.ready_timeout) and run.settle(_ABANDONED):
            detail = ""
            try:
                self._teardown(run, thread, wait=self._join_bound())
            except TimeoutError:
                detail = "; its thread is still blocked, call stop() to finish"
            raise TimeoutError(
                f"Controller: server not ready within ready_timeout="
                f"{self.ready_timeout} seconds (set by the ready_timeout argument"
                f" or the {TIMEOUT_ENV} environment variable){detail}"
            )
        if run.state == _FAILED:
            error = run.error
            assert error is not None
            try:
                self._teardown(run, thread, wait=self._join_bound())
            except TimeoutError as exc:
                error.add_note(str(exc))
            raise error
        self.server = run.server

    def stop(self) -> None:
        """Stop the server, close its connections and join the loop thread.

        Raises:
            TimeoutError: the loop thread did not finish within
                ``max(stop_timeout, ready_timeout)``, e.g. because synchronous
                code blocks the loop; calling :meth:`stop` again retries.
            RuntimeError: called from the loop's own thread.
        """
        run, thread = self._run, self._thread
        if run is None or thread is None:
            return
        if thread is threading.current_thread():
            raise RuntimeError("Controller.stop() called from its own loop thread")
        run.settle(_ABANDONED)  # no-op unless a start() is still waiting
        self._teardown(run, thread, wait=self._join_bound())

    def _teardown(self, run: _Run, thread: threading.Thread, *, wait: float) -> None:
        if not run.stop_requested:
            run.stop_requested = True  # read by start() and by the loop thread
            with run.lock:
                if not run.loop_done:
                    run.loop.call_soon_threadsafe(run.request_stop)
        thread.join(wait)
        if thread.is_alive():
            raise TimeoutError(
                f"Controller: the loop thread did not finish within {wait} seconds;"
                " is synchronous code blocking the event loop?"
            )
        self._run = self._thread = None
        self.server = None

    # ---- everything below runs in the loop thread ------------------------

    def _thread_main(self, run: _Run) -> None:
        loop = run.loop
        try:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._serve(run))
        except BaseException as exc:  # report anything, even from the loop itself
            if not run.settle(_FAILED, exc):
                log.exception("Controller: the event loop thread failed")
        finally:
            with run.lock:
                run.loop_done = True
            try:
                # Also runs any stop callback queued before loop_done was set.
                loop.run_until_complete(loop.shutdown_asyncgens())
                if run.owned:
                    # Joins the resolver threads create_server() may have used;
                    # a loop we were given keeps its executor (its owner's).
                    loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                if run.owned:
                    loop.close()

    def _protocol_factory(
        self, first: asyncio.BaseProtocol, run: _Run
    ) -> Callable[[], asyncio.BaseProtocol]:
        pending = [first]  # the instance made during start() serves the first client

        def make() -> asyncio.BaseProtocol:
            if pending:
                return _wrap(pending.pop(), run)
            try:
                protocol = self.factory()
                if protocol is None:
                    raise TypeError("factory() returned None; need a protocol")
            except Exception:
                # asyncio drops this silently outside debug mode and leaks the
                # accepted socket; we log it and close that one connection.
                log.exception("Controller: factory() failed; connection closed")
                return _Refused(run)
            return _wrap(protocol, run)

        return make

    async def _serve(self, run: _Run) -> None:
        loop = asyncio.get_running_loop()
        run.wakeup = loop.create_future()
        try:
            server = await self._create_server(run)
        except Exception as exc:
            run.settle(_FAILED, exc)
            return
        if server is None:
            return  # stopped (or abandoned) before the server was up
        try:
            run.server = server
            run.address = server.sockets[0].getsockname() if server.sockets else None
            if run.settle(_READY) and not run.stop_requested:
                await run.wakeup
        finally:
            await self._close_everything(server, run)

    async def _create_server(self, run: _Run) -> asyncio.Server | None:
        loop = asyncio.get_running_loop()
        first = self.factory()
        if first is None:
            raise TypeError("factory() returned None; need a protocol instance")
        # start_serving=False: create_server() then has no await left after
        # binding, so cancelling it can never lose a bound socket; listening
        # starts below, in code nobody cancels.
        creating = loop.create_task(
            loop.create_server(
                self._protocol_factory(first, run),
                host=self.hostname,
                port=self.port,
                start_serving=False,
            )
        )
        assert run.wakeup is not None
        await asyncio.wait((creating, run.wakeup), return_when=asyncio.FIRST_COMPLETED)
        if not creating.done():
            creating.cancel()
            await asyncio.wait((creating,))
        if creating.cancelled():
            return None
        server = creating.result()
        if run.stop_requested:
            server.close()
            return None
        await server.start_serving()
        return server

    async def _close_everything(self, server: asyncio.Server, run: _Run) -> None:
        # A connection accepted just before server.close() is set up later in
        # a task of asyncio's own, which then fails an assertion in
        # Server._attach() and leaks the socket (seen on CPython 3.11).  So stop
        # accepting first, let those tasks reach connection_made() (where
        # they are tracked), and only then close the server.
        loop = asyncio.get_running_loop()
        if isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
            for sock in server.sockets:
                loop.remove_reader(sock.fileno())
        for _ in range(3):
            await asyncio.sleep(0)
        server.close()  # closes the listening sockets
        for transport in list(run.transports):
            transport.abort()  # type: ignore[attr-defined]
        this = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not this]
        for task in tasks:
            task.cancel()
        deadline = time.monotonic() + UNWIND_TIMEOUT
        if tasks:
            _, stubborn = await asyncio.wait(tasks, timeout=UNWIND_TIMEOUT)
            if stubborn:
                log.warning("Controller: %d task(s) ignore cancel", len(stubborn))
        for transport in list(run.transports):
            transport.abort()  # type: ignore[attr-defined]
        # abort() closes the socket in a callback; wait for those to run.
        spins = 0
        while run.transports and time.monotonic() < deadline:
            # Usually one loop iteration is enough; then back off a little.
            await asyncio.sleep(0 if spins < 10 else 0.001)
            spins += 1
        try:
            await asyncio.wait_for(server.wait_closed(), UNWIND_TIMEOUT)
        except TimeoutError:
            log.warning("Controller: server.wait_closed() did not finish")
