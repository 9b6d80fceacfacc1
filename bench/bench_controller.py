"""Start/stop latency of degu.controller.Controller against baselines.

Baselines, measured in the same run:

* ``classic``: a minimal controller of the classic design, modelled
  here (thread + ``run_until_complete(create_server)`` + ready event +
  ``loop.stop()``): what most hand-written test controllers look like;
* ``bare``: the least any thread-run server costs (thread start, new loop,
  ``create_server``, then close and join), with no checks at all;
* ``aiosmtpd``: aiosmtpd's Controller, only when it is installed (it is not
  a dependency of Degu; the row is skipped otherwise).

Everything runs pinned to one CPU (the client is the main thread, the server
the loop thread), runs are interleaved, and figures are medians.
Run: ``python bench/bench_controller.py`` (bounded: well under a minute).
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from degu.controller import Controller

ROUNDS = 40  # interleaved start/stop rounds per implementation
FAIL_ROUNDS = 3  # busy-port rounds (the classic design waits its timeout)
READY_TIMEOUT = 1.0


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport


class DeguEcho(Controller):
    def factory(self) -> asyncio.BaseProtocol:
        return Echo()


class Classic:
    """The classic design, modelled: no failure report, no client tracking."""

    def __init__(self, host: str, port: int, ready_timeout: float = 1.0) -> None:
        self.host, self.port, self.ready_timeout = host, port, ready_timeout
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.Server | None = None
        self.thread: threading.Thread | None = None

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.server = self.loop.run_until_complete(
                self.loop.create_server(Echo, self.host, self.port)
            )
        except OSError:
            return  # the thread ends; start() only notices at its timeout
        self.loop.call_soon(ready.set)
        self.loop.run_forever()
        self.server.close()
        self.loop.run_until_complete(self.server.wait_closed())

    def start(self) -> None:
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        if not ready.wait(self.ready_timeout):
            self.thread.join()
            raise TimeoutError("server not ready")

    def stop(self) -> None:
        assert self.thread is not None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()

    @property
    def address(self) -> Any:
        assert self.server is not None
        return self.server.sockets[0].getsockname()


class Bare:
    """Thread + loop + create_server, with nothing else: a lower bound."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.loop = asyncio.new_event_loop()

    def start(self) -> None:
        self.server = self.loop.run_until_complete(
            self.loop.create_server(Echo, self.host, self.port)
        )
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.server.close()
        self.loop.run_until_complete(self.server.wait_closed())
        self.loop.close()

    @property
    def address(self) -> Any:
        return self.server.sockets[0].getsockname()


def make_aiosmtpd() -> Callable[[], Any] | None:
    try:
        from aiosmtpd.controller import Controller as SMTPController
    except ImportError:
        return None

    class Sink:
        pass

    return lambda: SMTPController(Sink(), hostname="127.0.0.1", port=0)


def one_round(make: Callable[[], Any]) -> tuple[float, float]:
    """Seconds to start (until a client connects) and to stop."""
    controller = make()
    began = time.perf_counter()
    controller.start()
    address = getattr(controller, "address", None) or (
        controller.hostname,
        controller.port,
    )
    socket.create_connection(address, timeout=5).close()
    started = time.perf_counter()
    controller.stop()
    return started - began, time.perf_counter() - started


def busy_port_failure(make: Callable[[int], Any]) -> float:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        controller = make(busy.getsockname()[1])
        began = time.perf_counter()
        try:
            controller.start()
        except (OSError, TimeoutError):
            pass
        else:
            raise AssertionError("a start on a busy port succeeded")
        elapsed = time.perf_counter() - began
        loop = getattr(controller, "loop", None)
        if loop is not None and not loop.is_closed() and not loop.is_running():
            loop.close()
        return elapsed


def idle_client_stop(make: Callable[[], Any]) -> tuple[float, bool]:
    """Seconds to stop with one idle client; was that client disconnected?"""
    controller = make()
    controller.start()
    with socket.create_connection(controller.address, timeout=5) as client:
        client.sendall(b"x")  # make sure the server has accepted it
        began = time.perf_counter()
        controller.stop()
        elapsed = time.perf_counter() - began
        client.settimeout(0.2)  # long enough for a FIN already on its way
        try:
            disconnected = client.recv(1) == b""
        except ConnectionResetError:
            disconnected = True
        except TimeoutError:
            disconnected = False
    return elapsed, disconnected


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.3f} ms"


def main() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    impls: dict[str, Callable[[], Any]] = {
        "degu": lambda: DeguEcho("127.0.0.1", 0),
        "classic": lambda: Classic("127.0.0.1", 0),
        "bare": lambda: Bare("127.0.0.1", 0),
    }
    smtp = make_aiosmtpd()
    if smtp is not None:
        impls["aiosmtpd"] = smtp
    starts: dict[str, list[float]] = {name: [] for name in impls}
    stops: dict[str, list[float]] = {name: [] for name in impls}
    for _ in range(ROUNDS):  # interleaved, so drift hits every row alike
        for name, make in impls.items():
            start, stop = one_round(make)
            starts[name].append(start)
            stops[name].append(stop)

    fails: dict[str, list[float]] = {"degu": [], "classic": []}
    for _ in range(FAIL_ROUNDS):
        fails["degu"].append(
            busy_port_failure(lambda p: DeguEcho("127.0.0.1", p, READY_TIMEOUT))
        )
        fails["classic"].append(
            busy_port_failure(lambda p: Classic("127.0.0.1", p, READY_TIMEOUT))
        )
    idle: dict[str, list[tuple[float, bool]]] = {"degu": [], "classic": []}
    for _ in range(ROUNDS // 4):
        idle["degu"].append(idle_client_stop(impls["degu"]))
        idle["classic"].append(idle_client_stop(impls["classic"]))

    base_start = statistics.median(starts["bare"])
    base_stop = statistics.median(stops["bare"])
    print(f"degu.controller start/stop, median of {ROUNDS} interleaved rounds,")
    print("one CPU; start = until a client connects; ratios are to 'bare'\n")
    print(f"{'impl':10} {'start':>12} {'x bare':>7} {'stop':>12} {'x bare':>7}")
    for name in impls:
        start = statistics.median(starts[name])
        stop = statistics.median(stops[name])
        print(
            f"{name:10} {ms(start)} {start / base_start:7.2f} "
            f"{ms(stop)} {stop / base_stop:7.2f}"
        )
    if smtp is None:
        print("(aiosmtpd not installed: its row is skipped)")

    degu_fail = statistics.median(fails["degu"])
    classic_fail = statistics.median(fails["classic"])
    print(f"\nbusy port, ready_timeout={READY_TIMEOUT} s, median of {FAIL_ROUNDS}:")
    print(f"  degu     {ms(degu_fail)}  target < {ms(READY_TIMEOUT / 10)}")
    print(
        f"  classic  {ms(classic_fail)}"
        f"  ratio classic/degu {classic_fail / degu_fail:.0f}x"
    )
    print(f"\nstop() with one idle client connected, median of {ROUNDS // 4}:")
    for name, runs in idle.items():
        seconds = statistics.median(t for t, _ in runs)
        dropped = sum(d for _, d in runs)
        print(
            f"  {name:8} {ms(seconds)}  target < {ms(1.0)};"
            f" clients disconnected: {dropped}/{len(runs)}"
        )


if __name__ == "__main__":
    main()
