"""degu._processes: TempServer, TempSSLServer and the process machinery.

docs/reference/misc.rst and docs/reference/degu.rst.  Server tests run under fork, spawn and forkserver
(the ``start_method`` fixture pins the machinery's private override); the
parent's own fates run in child interpreters that call set_start_method.
These tests need only degu-core (degu-embed's tests cover its wrappers).
"""

from __future__ import annotations

import gc
import http.client
import importlib
import json
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import pickle
import select
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from degu import _processes
from degu._processes import (
    RemoteTraceback,
    TempServer,
    TempSSLServer,
    stop_process,
)

HERE = Path(__file__).resolve().parent
# Spawn and forkserver children import the helpers by name (see the module).
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
apps = importlib.import_module("processes_apps")

START_METHODS = ("fork", "spawn", "forkserver")
LOOPBACK = ("127.0.0.1", 0)


@pytest.fixture(scope="module", autouse=True)
def helper_processes() -> None:
    """Start the long-lived multiprocessing helpers before any child count."""
    multiprocessing.resource_tracker.ensure_running()
    multiprocessing.forkserver.ensure_running()


@pytest.fixture(params=START_METHODS)
def start_method(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> str:
    method: str = request.param
    monkeypatch.setattr(_processes, "_START_METHOD", method)
    monkeypatch.setattr(_processes, "START_TIMEOUT", 20.0)
    return method


def child_pids() -> set[int]:
    """Pids of this process's children, zombies included (Linux /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rindex(b")") + 2 :].split()[1]) == os.getpid():
                found.add(int(entry))
    return found


@pytest.fixture(autouse=True)
def no_leftover_children() -> Iterator[None]:
    before = child_pids()
    yield
    left = child_pids() - before  # before any exitcode query, which reaps
    assert left == set(), f"children left behind (running or zombie): {left}"
    assert [p for p in _processes._STARTED if p.exitcode is None] == []


def http_get(address: Any, sslctx: ssl.SSLContext | None = None) -> bytes:
    conn: http.client.HTTPConnection
    if sslctx is None:
        conn = http.client.HTTPConnection(address[0], address[1], timeout=10)
    else:
        conn = http.client.HTTPSConnection(
            address[0], address[1], timeout=10, context=sslctx
        )
    try:
        conn.request("GET", "/")
        return conn.getresponse().read()
    finally:
        conn.close()


def wait_refuses(address: Any, deadline: float = 10.0) -> bool:
    """Poll until nothing accepts connections at ``address``."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            try:
                sock.connect(address)
            except ConnectionRefusedError:
                return True
        time.sleep(0.05)
    return False


# ------------------------------------------------------------- TempServer


def test_TempServer_serves_then_terminates(start_method: str) -> None:
    app = apps.Hello(b"temp")
    server = TempServer(LOOPBACK, app, max_requests=10)
    try:
        assert server.app is app
        assert server.options == {"max_requests": 10}
        assert server.process.daemon is True
        assert server.address[0] == "127.0.0.1" and server.address[1] > 0
        assert repr(server) == f"TempServer({server.address!r}, Hello(b'temp'))"
        assert http_get(server.address) == b"temp"
    finally:
        server.terminate()
    assert server.process.exitcode == -signal.SIGTERM
    assert wait_refuses(server.address, 0.5)
    server.terminate()
    assert server.process.exitcode == -signal.SIGTERM


def test_TempServer_process_is_a_multiprocessing_Process(start_method: str) -> None:
    # Degu 0.19 documents a multiprocessing.Process; the context's own class
    # (ForkProcess...) is not one, so the start alone is delegated to it.
    with TempServer(LOOPBACK, apps.Hello(b"mp")) as server:
        assert isinstance(server.process, multiprocessing.Process)
        assert type(server.process).__name__ == "ServerProcess"
        assert server.process.start_method == start_method  # type: ignore[attr-defined]
        assert http_get(server.address) == b"mp"
    assert server.process.exitcode == -signal.SIGTERM


def test_TempServer_is_a_context_manager_and_stops_on_gc(start_method: str) -> None:
    with TempServer(LOOPBACK, apps.Hello(b"cm")) as server:
        assert http_get(server.address) == b"cm"
    assert server.process.exitcode == -signal.SIGTERM
    server = TempServer(LOOPBACK, apps.Hello(b"gc"))
    process = server.process
    del server
    gc.collect()
    assert process.exitcode == -signal.SIGTERM


def test_TempServer_reports_Server_errors_with_remote_traceback(
    start_method: str,
) -> None:
    with pytest.raises(TypeError) as info:
        TempServer(LOOPBACK, apps.Hello(b"x"), bogus=1)
    assert str(info.value) == "unsupported Server() **options: bogus"
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "Traceback (most recent call last):" in str(info.value.__cause__)


def test_TempServer_rejects_an_unpicklable_app_before_starting(
    start_method: str,
) -> None:
    if start_method == "fork":
        with TempServer(LOOPBACK, lambda s, r, a: (200, "OK", {}, b"fork")) as server:
            assert http_get(server.address) == b"fork"
        return
    with pytest.raises(TypeError) as info:
        TempServer(LOOPBACK, lambda s, r, a: None)
    assert str(info.value).startswith(
        f"app: cannot be pickled for the {start_method!r} start method"
    )


def test_TempServer_terminate_is_safe_when_construction_failed() -> None:
    for cls in (TempServer, TempSSLServer):
        server = cls.__new__(cls)
        server.terminate()
        with server:
            pass
        del server
        gc.collect()


# ---------------------------------------------------------- TempSSLServer


@pytest.fixture(scope="module")
def pki() -> Any:
    from degu._temppki import TempPKI

    return TempPKI()


def test_TempSSLServer_serves_over_TLS(start_method: str, pki: Any) -> None:
    sslconfig = pki.server_sslconfig
    app = apps.Hello(b"tls")
    with TempSSLServer(sslconfig, LOOPBACK, app) as server:
        assert not isinstance(server, TempServer)
        assert server.sslconfig is sslconfig
        assert server.app is app and server.options == {}
        assert repr(server) == (
            f"TempSSLServer(<sslconfig>, {server.address!r}, Hello(b'tls'))"
        )
        client = pki.client_sslconfig
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(client["ca_file"])
        ctx.load_cert_chain(client["cert_file"], client["key_file"])
        assert http_get(server.address, ctx) == b"tls"
    assert server.process.exitcode == -signal.SIGTERM


def test_TempSSLServer_needs_an_sslconfig_dict() -> None:
    before = child_pids()
    for bad in (ssl.create_default_context(), [("cert_file", "/x")], None):
        with pytest.raises(TypeError) as info:
            TempSSLServer(bad, LOOPBACK, apps.Hello(b"x"))  # type: ignore[arg-type]
        assert str(info.value) == (
            f"sslconfig: need a {dict!r}; got a {type(bad)!r}: {bad!r}"
        )
    assert child_pids() == before


# ------------------------------------------------------- stopping, bounded


def test_stop_process_kills_a_child_that_ignores_SIGTERM(
    start_method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_processes, "TERMINATE_TIMEOUT", 0.3)
    ctx = multiprocessing.get_context(start_method)
    ready_r, ready_w = ctx.Pipe(duplex=False)
    process = ctx.Process(target=apps.ignore_sigterm, args=(ready_w,), daemon=True)
    process.start()
    ready_w.close()
    with ready_r:
        assert ready_r.poll(20) and ready_r.recv() == "ignoring"
    stop_process(process)
    assert process.exitcode == -signal.SIGKILL
    stop_process(process)  # idempotent
    assert process.exitcode == -signal.SIGKILL


def test_stop_process_ignores_unstarted_and_closed_processes() -> None:
    process = multiprocessing.get_context("spawn").Process(target=print)
    stop_process(process)
    assert process.exitcode is None
    process = multiprocessing.get_context("fork").Process(target=print, args=("",))
    process.start()
    process.join(10)
    process.close()
    stop_process(process)


def test_forked_children_close_their_copies_of_the_lifelines() -> None:
    """Any fork (not only ours) must not hold a server's lifeline open."""
    with TempServer(LOOPBACK, apps.Hello(b"x")):
        ctx = multiprocessing.get_context("fork")
        conn_r, conn_w = ctx.Pipe(duplex=False)
        probe = ctx.Process(target=apps.report_lifelines, args=(conn_w,))
        probe.start()
        conn_w.close()
        with conn_r:
            assert conn_r.poll(20)
            closed = conn_r.recv()
        probe.join(10)
    assert closed == [True]


# ------------------------------------------- failure reports, unit by unit


def test_RemoteTraceback_shows_the_formatted_traceback() -> None:
    tb = 'Traceback (most recent call last):\n  File "x.py"\nValueError: no\n'
    assert str(RemoteTraceback(tb)) == tb
    assert RemoteTraceback(tb).tb == tb


def _round_trip(exc: BaseException) -> Exception:
    """What the parent raises for ``exc`` raised in the child (and its cause)."""
    try:
        raise exc
    except BaseException as caught:
        report = pickle.dumps(_processes._describe_failure(caught))
    with pytest.raises(Exception) as info:
        _processes._read_report(report)
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "in _round_trip" in str(info.value.__cause__)
    return info.value


class _TwoArgs(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a}+{b}")


def test_failure_report_keeps_the_type_when_it_round_trips() -> None:
    exc = _round_trip(OSError(98, "Address already in use"))
    assert type(exc) is OSError and exc.errno == 98
    assert type(_round_trip(KeyError("cert_file"))) is KeyError


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (_TwoArgs("a", "b"), "_TwoArgs: a+b"),
        (SystemExit(3), "SystemExit: 3"),
        (KeyboardInterrupt(), "KeyboardInterrupt: "),
    ],
    ids=["two-arg-constructor", "SystemExit", "KeyboardInterrupt"],
)
def test_failure_report_falls_back_to_RuntimeError(
    exc: BaseException, message: str
) -> None:
    rebuilt = _round_trip(exc)
    assert type(rebuilt) is RuntimeError
    assert str(rebuilt) == message


def test_failure_report_survives_a_class_the_parent_cannot_import() -> None:
    report = ("error", b"not a pickle", "GhostError", "boo", "Traceback...\n")
    with pytest.raises(RuntimeError, match=r"^GhostError: boo$") as info:
        _processes._read_report(pickle.dumps(report))
    assert str(info.value.__cause__) == "Traceback...\n"


# ------------------------------------------------ the parent's own fate

PARENT = textwrap.dedent(
    """
    import json, multiprocessing, sys, time
    sys.path.insert(0, {here!r})
    import processes_apps
    from degu import _processes
    from degu.misc import TempServer

    KEEP = []

    if __name__ == "__main__":
        multiprocessing.set_start_method(sys.argv[1])
        KEEP.append(TempServer(("127.0.0.1", 0), processes_apps.Hello(b"p")))
        print(json.dumps(KEEP[0].address), flush=True)
        if sys.argv[2] == "linger":
            time.sleep(60)
    """
)


def _parents(tmp_path: Path, fate: str) -> list[tuple[subprocess.Popen[str], Any]]:
    script = tmp_path / "parent.py"
    script.write_text(PARENT.format(here=str(HERE)))
    started = []
    try:
        for method in START_METHODS:
            proc = subprocess.Popen(
                [sys.executable, str(script), method, fate],
                stdout=subprocess.PIPE,
                text=True,
            )
            started.append(proc)
        parents = []
        for proc in started:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready, "a parent script printed nothing within 60 s"
            parents.append((proc, tuple(json.loads(proc.stdout.readline()))))
    except BaseException:
        for proc in started:
            proc.kill()
            proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
        raise
    return parents


def test_TempServer_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    parents = _parents(tmp_path, "linger")
    try:
        for _, address in parents:
            assert http_get(address) == b"p"
        for proc, _ in parents:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for method, (_, address) in zip(START_METHODS, parents, strict=True):
            assert wait_refuses(address), f"{method}: the server outlived its parent"
    finally:
        for proc, _ in parents:
            proc.kill()
            proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]


def test_interpreter_exit_stops_a_live_TempServer(tmp_path: Path) -> None:
    parents = _parents(tmp_path, "exit")
    try:
        for proc, _ in parents:
            assert proc.wait(30) == 0
        for method, (_, address) in zip(START_METHODS, parents, strict=True):
            assert wait_refuses(address), f"{method}: the server outlived exit"
    finally:
        for proc, _ in parents:
            proc.kill()
            proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]


# ------------------------------------------- fork safety of the parent

FORK_TWICE = textwrap.dedent(
    """
    import http.client, json, multiprocessing, sys, threading, warnings
    sys.path.insert(0, {here!r})
    import processes_apps
    from degu._processes import TempServer

    def get(address):
        conn = http.client.HTTPConnection(*address, timeout=10)
        try:
            conn.request("GET", "/")
            return conn.getresponse().read().decode()
        finally:
            conn.close()

    if __name__ == "__main__":
        multiprocessing.set_start_method("fork")  # not the default from 3.14
        report = {{"threads": [], "bodies": []}}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for body in (b"one", b"two"):
                server = TempServer(("127.0.0.1", 0), processes_apps.Hello(body))
                report["threads"].append(threading.active_count())
                report["bodies"].append(get(server.address))
                server.terminate()
        report["threads"].append(threading.active_count())
        report["warnings"] = [str(w.message) for w in caught]
        print(json.dumps(report), flush=True)
    """
)


def test_TempServer_under_fork_leaves_the_parent_single_threaded(
    tmp_path: Path,
) -> None:
    """Starting a server must not make the parent's next fork unsafe.

    A thread left running in the parent would make every later fork (ours or
    the user's) risk a deadlock in the child, and Python 3.12+ warns about it
    with a DeprecationWarning.  That warning is invisible to
    filterwarnings=error: os.fork() clears it, the fork having happened.  So a
    fresh, single-threaded interpreter records warnings with "always" here.
    """
    script = tmp_path / "fork_twice.py"
    script.write_text(FORK_TWICE.format(here=str(HERE)))
    done = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, "PYTHONWARNINGS": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == {
        "threads": [1, 1, 1],
        "bodies": ["one", "two"],
        "warnings": [],
    }
