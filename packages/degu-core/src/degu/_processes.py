"""Run a Degu server in a child process: start it, hear from it, stop it.

The one implementation behind ``degu.EmbeddedServer``, ``degu.start_server()``
(degu-embed) and ``degu.misc.TempServer`` (docs/reference/degu.rst,
docs/reference/misc.rst).

What it guarantees, under every multiprocessing start method:

* the parent waits on the report pipe *and* ``process.sentinel``, so a child
  that dies before reporting is noticed at once, and a silent one after
  ``START_TIMEOUT`` seconds; the child is reaped on every failure path;
* an exception raised in the child comes back with its remote traceback
  chained as ``__cause__`` (as :mod:`concurrent.futures` does);
* stopping is bounded: SIGTERM, ``TERMINATE_TIMEOUT`` seconds, SIGKILL;
* the child holds the read end of a "lifeline" pipe whose only write end lives
  in the parent; when the parent dies (even by SIGKILL) the pipe reports EOF
  and the child exits, so no orphan keeps serving the port.

Only picklable data crosses the process boundary; the server modules are
imported in the child only.
"""

from __future__ import annotations

import atexit
import io
import multiprocessing
import multiprocessing.util  # registers its atexit hook before ours: see _stop_all
import os
import pickle
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from multiprocessing.connection import Connection, wait
from multiprocessing.context import DefaultContext
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, Any, NamedTuple, Unpack, cast

from degu._checks import type_error
from degu._lifetime import START_TIMEOUT, ServerProcessOwner

if TYPE_CHECKING:
    from degu.typehints import Address, RGIApp, ServerOptions

__all__ = [
    "START_TIMEOUT",
    "TERMINATE_TIMEOUT",
    "RemoteTraceback",
    "ServerProcess",
    "ServerRecipe",
    "TempSSLServer",
    "TempServer",
    "start_server_process",
    "stop_process",
]

#: Seconds a child gets between SIGTERM and SIGKILL (also after parent death).
TERMINATE_TIMEOUT = 5.0

# Tests force a start method here; None means the current default context,
# which is what the public API uses (docs/reference/degu.rst).
_START_METHOD: str | None = None


class RemoteTraceback(Exception):
    """The child's formatted traceback, chained as ``__cause__`` in the parent."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


class ServerRecipe(NamedTuple):
    """What the child needs to build its server (picklable by design)."""

    sslconfig: dict[str, Any] | None  # None for a plain Server
    address: Any
    build_func: Callable[..., Any]
    build_args: tuple[Any, ...]
    options: Mapping[str, Any]


class _Owned(NamedTuple):
    pid: int  # the process that started the child (only it may stop it)
    lifeline: Connection  # write end of the lifeline pipe, held for the child


# Children started by this process and not stopped yet (strong references, so
# that _stop_all finds them at exit even when nobody else holds them).
_STARTED: dict[BaseProcess, _Owned] = {}
_LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    # Any fork (ours, another multiprocessing.Process, os.fork) copies the
    # lifeline write ends; a copy kept open would hide the parent's death from
    # our children.  The table itself stays: its pids say "not yours to stop".
    global _LOCK
    _LOCK = threading.Lock()  # the parent may have held it while forking
    for owned in _STARTED.values():
        owned.lifeline.close()


os.register_at_fork(after_in_child=_after_fork_in_child)


def check_sslconfig(sslconfig: object) -> None:
    """Raise the usual ``TypeError`` unless ``sslconfig`` is exactly a dict."""
    if type(sslconfig) is not dict:
        type_error("sslconfig", dict, sslconfig)


def start_server_process(
    recipe: ServerRecipe,
    *,
    timeout: float | None = None,
    checked: Mapping[str, object] | None = None,
) -> tuple[BaseProcess, Any]:
    """Start a server process and return ``(process, bound_address)``.

    Args:
        recipe: what to build in the child.
        timeout: start-up bound in seconds (default ``START_TIMEOUT``).
        checked: the caller's argument names and values to check for
            picklability (default: the recipe's fields).

    Raises:
        TypeError: an argument cannot be pickled for the start method.
        RuntimeError: the child exited before reporting (names the exit code).
        TimeoutError: the child stayed silent for ``timeout`` seconds.
        Exception: whatever building the app or the server raised in the child.
    """
    ctx = _context()
    method = ctx.get_start_method()
    if method != "fork":
        _check_picklable(method, recipe._asdict() if checked is None else checked)
    bound = START_TIMEOUT if timeout is None else timeout
    with _LOCK:
        # The pipes are made under the lock too: a child that another thread
        # forks in between would otherwise inherit this lifeline's write end
        # before the at-fork hook knows to close it.
        report_r, report_w = ctx.Pipe(duplex=False)
        life_r, life_w = ctx.Pipe(duplex=False)
        process = ServerProcess(
            target=_serve,
            args=(recipe, report_w, life_r),
            name="degu-server",
            daemon=True,
        )
        process.start_method = method
        _forget_dead_children()
        # Registered before start(): a fork must see (and close) this write end.
        _STARTED[process] = _Owned(os.getpid(), life_w)
        try:
            process.start()
        except BaseException:
            del _STARTED[process]
            life_w.close()
            report_r.close()
            raise
        finally:
            # The child has its own copies now; ours would hide its death.
            report_w.close()
            life_r.close()
    try:
        with report_r:
            address = _wait_for_address(process, report_r, bound, method)
    except BaseException:
        stop_process(process)
        raise
    return process, address


def stop_process(process: BaseProcess, timeout: float | None = None) -> None:
    """Stop ``process``: SIGTERM, join, then SIGKILL and join; idempotent.

    Does nothing for a process that never started, or one that this process
    did not start (a forked copy of an owner).  Leaves ``process.exitcode`` set.
    """
    stop_processes([process], timeout)


def stop_processes(processes: Iterable[BaseProcess], timeout: float | None) -> None:
    """Stop several processes under one shared deadline (used at exit)."""
    grace = TERMINATE_TIMEOUT if timeout is None else timeout
    processes = list(processes)
    running = [p for p in processes if _is_our_live_child(p)]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + grace
    for process in running:
        process.join(max(0.0, deadline - time.monotonic()))
    stubborn = [p for p in running if p.exitcode is None]
    for process in stubborn:
        # SIGKILL cannot be ignored; the join bound only guards against a
        # process stuck in uninterruptible sleep.
        process.kill()
    for process in stubborn:
        process.join(grace)
    with _LOCK:
        for process in processes:
            _forget(process)


def _is_our_live_child(process: BaseProcess) -> bool:
    owned = _STARTED.get(process)
    if owned is not None and owned.pid != os.getpid():
        return False
    try:
        return process.pid is not None and process.exitcode is None
    except ValueError:  # the caller closed it: nothing left to stop
        return False


def _forget(process: BaseProcess) -> None:
    owned = _STARTED.get(process)
    if owned is not None and owned.pid == os.getpid():
        del _STARTED[process]
        owned.lifeline.close()


def _forget_dead_children() -> None:
    # Children stopped by their owner directly (start_server() hands out the
    # bare process) would otherwise keep their lifeline fd until exit.
    for process, owned in list(_STARTED.items()):
        if owned.pid == os.getpid() and process.exitcode is not None:
            _forget(process)


@atexit.register
def _stop_all() -> None:
    # Runs before multiprocessing's own exit hook (registered earlier, and
    # atexit is LIFO), whose join() has no timeout and would hang on a child
    # that ignores SIGTERM.
    try:
        stop_processes(list(_STARTED), None)
    except Exception:  # never turn interpreter exit into a traceback
        pass


def _context() -> DefaultContext:
    # typeshed gives get_context(str) the BaseContext type, which lacks
    # .Process; every concrete context has it.
    return cast(DefaultContext, multiprocessing.get_context(_START_METHOD))


class ServerProcess(multiprocessing.Process):
    """A ``multiprocessing.Process``, started by the method it names.

    Degu 0.19 documents the ``process`` of an embedded server as a
    ``multiprocessing.Process``; a context's own class (``ForkProcess``...)
    is not one, so this subclass delegates only the start to the context
    of ``start_method`` (docs/reference/degu.rst).
    """

    #: The multiprocessing start method; None means the current default.
    start_method: str | None = None

    @staticmethod
    def _Popen(process_obj: BaseProcess) -> Any:
        method: str | None = getattr(process_obj, "start_method", None)
        context = cast(DefaultContext, multiprocessing.get_context(method))
        return context.Process._Popen(process_obj)


class _CheckPickler(ForkingPickler):
    """A dry run of what Process.start() will pickle, without its side effects.

    Everything goes through multiprocessing's own reducers except sockets and
    connections: multiprocessing hands those over by duplicating their file
    descriptors (so a pre-bound socket works as an address), and reducing
    one here would start a resource-sharer thread just to be checked.
    """

    def persistent_id(self, obj: object) -> str | None:
        if isinstance(obj, socket.socket | Connection):
            return "handed over by multiprocessing"
        return None


def _check_picklable(method: str, values: Mapping[str, object]) -> None:
    for name, value in values.items():
        try:
            _CheckPickler(io.BytesIO()).dump(value)
        except Exception as exc:
            raise TypeError(
                f"{name}: cannot be pickled for the {method!r} start method"
                f" ({type(exc).__name__}: {exc}); pass a function defined at"
                " module level (not a lambda, closure or local class) and"
                " picklable arguments"
            ) from exc


def _wait_for_address(
    process: BaseProcess, reader: Connection, timeout: float, method: str
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                f"the Degu server process (pid {process.pid}) sent no address"
                f" within {timeout} seconds"
            )
        ready = wait([reader, process.sentinel], remaining)
        if reader in ready or (ready and reader.poll()):
            try:
                data = reader.recv_bytes()
            except EOFError:  # it closed the pipe without a word: it is dying
                break
            return _read_report(data)
        if ready:  # the sentinel alone: it exited and nothing is buffered
            break
    process.join(TERMINATE_TIMEOUT)
    raise RuntimeError(
        f"the Degu server process exited with code {process.exitcode} before"
        f" reporting its address (start method {method!r})"
    )


def _read_report(data: bytes) -> Any:
    kind, *fields = pickle.loads(data)
    if kind == "address":
        return fields[0]
    blob, type_name, message, formatted = fields
    raise _rebuild_exception(blob, type_name, message) from RemoteTraceback(formatted)


def _rebuild_exception(blob: bytes | None, type_name: str, message: str) -> Exception:
    exc: object = None
    if blob is not None:
        try:
            exc = pickle.loads(blob)
        except Exception:  # e.g. its class is not importable here
            exc = None
    if isinstance(exc, Exception):
        return exc
    # Not picklable, or a BaseException such as SystemExit that must not
    # escape into the parent as itself.
    return RuntimeError(f"{type_name}: {message}")


def _describe_failure(exc: BaseException) -> tuple[Any, ...]:
    blob: bytes | None
    try:
        blob = bytes(ForkingPickler.dumps(exc))
        pickle.loads(blob)  # e.g. a constructor with two required arguments
    except Exception:
        blob = None
    formatted = "".join(traceback.format_exception(exc))
    return ("error", blob, type(exc).__name__, str(exc), formatted)


# ---------------------------------------------------------------- the child


def _serve(recipe: ServerRecipe, report: Connection, lifeline: Connection) -> None:
    """Child target: build the app and server, report, serve until killed."""
    _leave_parent_state()
    _watch_lifeline(lifeline)
    try:
        app = recipe.build_func(*recipe.build_args)
        server = _build_server(recipe, app)
        message: tuple[Any, ...] = ("address", server.address)
    except BaseException as exc:
        _send(report, _describe_failure(exc))
        sys.exit(1)
    if not _send(report, message):
        sys.exit(1)
    server.serve_forever()


def _leave_parent_state() -> None:
    # terminate() must work even if a forked parent had a SIGTERM handler;
    # Ctrl-C in a terminal reaches the whole process group, and stopping us
    # is the parent's decision, not ours.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _watch_lifeline(lifeline: Connection) -> None:
    def watch() -> None:
        try:
            lifeline.recv_bytes()  # the parent never writes: this waits for EOF
        except (EOFError, OSError):
            pass
        # The parent is gone: end like terminate() would, then for sure.
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(TERMINATE_TIMEOUT)
        os._exit(1)

    threading.Thread(target=watch, name="degu-lifeline", daemon=True).start()


def _build_server(recipe: ServerRecipe, app: Any) -> Any:
    if recipe.sslconfig is None:
        from degu.server import Server

        return Server(recipe.address, app, **recipe.options)
    from degu.server import SSLServer

    return SSLServer(recipe.sslconfig, recipe.address, app, **recipe.options)


def _send(report: Connection, message: tuple[Any, ...]) -> bool:
    try:
        report.send_bytes(pickle.dumps(message))
        report.close()
    except OSError:  # the parent is gone; the lifeline ends us
        return False
    return True


# ------------------------------------------------- degu.misc test fixtures


def _given_app(app: object) -> object:
    """Build function for TempServer: the app itself crossed the boundary."""
    return app


class _TempBase(ServerProcessOwner):
    # Attributes only: stopping lives in degu._lifetime, shared with
    # degu-embed's EmbeddedServer.
    address: Any
    app: RGIApp
    options: ServerOptions


class TempServer(_TempBase):
    """Run ``degu.server.Server(address, app, **options)`` in a child process."""

    def __init__(
        self, address: Address, app: RGIApp, **options: Unpack[ServerOptions]
    ) -> None:
        self.app = app
        self.options = options
        recipe = ServerRecipe(None, address, _given_app, (app,), options)
        checked = {"address": address, "app": app, "options": options}
        self.process, self.address = start_server_process(recipe, checked=checked)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address!r}, {self.app!r})"


class TempSSLServer(_TempBase):
    """Run ``degu.server.SSLServer(sslconfig, address, app, **options)`` likewise."""

    def __init__(
        self,
        sslconfig: dict[str, Any],
        address: Address,
        app: RGIApp,
        **options: Unpack[ServerOptions],
    ) -> None:
        check_sslconfig(sslconfig)
        self.sslconfig = sslconfig
        self.app = app
        self.options = options
        recipe = ServerRecipe(sslconfig, address, _given_app, (app,), options)
        checked = {
            "sslconfig": sslconfig,
            "address": address,
            "app": app,
            "options": options,
        }
        self.process, self.address = start_server_process(recipe, checked=checked)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<sslconfig>, {self.address!r}, {self.app!r})"
