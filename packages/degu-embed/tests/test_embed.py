"""degu.EmbeddedServer, degu.start_server and friends.

Every behaviour runs under fork, spawn and forkserver (the ``start_method``
fixture).  Fates of the parent itself (SIGKILL, interpreter exit) run in a
child interpreter that picks its start method with set_start_method, the way
an application does.
"""

from __future__ import annotations

import errno
import gc
import http.client
import json
import multiprocessing
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path
from typing import Any

import embed_apps
import pytest

import degu
import degu._processes

HERE = Path(__file__).resolve().parent
START_METHODS = ("fork", "spawn", "forkserver")

pytestmark = pytest.mark.usefixtures("no_leftover_children")


def http_get(address: Any, sslctx: ssl.SSLContext | None = None) -> bytes:
    """GET / from a server on a loopback address tuple; return the body."""
    host, port = address[0], address[1]
    conn: http.client.HTTPConnection
    if sslctx is None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
    else:
        conn = http.client.HTTPSConnection(host, port, timeout=10, context=sslctx)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read()
    finally:
        conn.close()


def refuses(address: Any) -> bool:
    """True when nothing accepts connections at ``address`` any more."""
    family = socket.AF_INET6 if len(address) == 4 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(address)
        except ConnectionRefusedError:
            return True
    return False


def wait_refuses(address: Any, deadline: float = 10.0) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if refuses(address):
            return True
        time.sleep(0.05)
    return False


# --------------------------------------------------------------- it works


def test_EmbeddedServer_serves_then_terminates(start_method: str) -> None:
    server = degu.EmbeddedServer(degu.IPv4_LOOPBACK, embed_apps.build_hello, b"hi")
    try:
        assert server.build_func is embed_apps.build_hello
        assert server.build_args == (b"hi",)
        assert server.options == {}
        assert isinstance(server.process, multiprocessing.process.BaseProcess)
        assert server.process.daemon is True
        host, port = server.address
        assert host == "127.0.0.1" and port > 0
        assert repr(server) == (
            f"EmbeddedServer({server.address!r}, {embed_apps.build_hello!r})"
        )
        assert http_get(server.address) == b"hi"
    finally:
        server.terminate()
    assert server.process.exitcode == -signal.SIGTERM
    assert refuses(server.address)
    server.terminate()  # idempotent
    assert server.process.exitcode == -signal.SIGTERM


def test_process_is_a_multiprocessing_Process_started_by_the_method(
    start_method: str,
) -> None:
    # Degu 0.19 documents a multiprocessing.Process; a context's own class
    # (ForkProcess, SpawnProcess...) is not one.
    with degu.EmbeddedServer(degu.IPv4_LOOPBACK, embed_apps.build_hello, b"p") as s:
        assert isinstance(s.process, multiprocessing.Process)
        assert s.process.start_method == start_method  # type: ignore[attr-defined]
        assert http_get(s.address) == b"p"
    process, address = degu.start_server(
        degu.IPv4_LOOPBACK, embed_apps.build_hello, b"q"
    )
    try:
        assert isinstance(process, multiprocessing.Process)
        assert http_get(address) == b"q"
    finally:
        degu._processes.stop_process(process)


def test_EmbeddedServer_is_a_context_manager(start_method: str) -> None:
    with degu.EmbeddedServer(
        degu.IPv6_LOOPBACK, embed_apps.build_hello, b"six", timeout=7
    ) as server:
        assert server.options == {"timeout": 7}
        assert server.address[0] == "::1" and len(server.address) == 4
        assert http_get(server.address) == b"six"
    assert server.process.exitcode == -signal.SIGTERM
    assert refuses(server.address)


def test_start_server_returns_process_and_address(start_method: str) -> None:
    process, address = degu.start_server(
        degu.IPv4_LOOPBACK, embed_apps.build_hello, b"raw", max_connections=3
    )
    try:
        assert process.daemon is True and process.exitcode is None
        assert http_get(address) == b"raw"
    finally:
        degu._processes.stop_process(process)
    assert process.exitcode == -signal.SIGTERM


def test_start_server_passes_options_to_Server(
    start_method: str, start_timeout: float
) -> None:
    """A Server option error is raised in the parent, proving the options arrive."""
    with pytest.raises(TypeError) as info:
        degu.start_server(degu.IPv4_LOOPBACK, embed_apps.build_hello, b"x", bogus=1)
    assert str(info.value) == "unsupported Server() **options: bogus"
    assert isinstance(info.value.__cause__, degu._processes.RemoteTraceback)


def test_EmbeddedServer_terminate_kills_a_server_ignoring_SIGTERM(
    start_method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(degu._processes, "TERMINATE_TIMEOUT", 0.5)
    server = degu.EmbeddedServer(
        degu.IPv4_LOOPBACK, embed_apps.build_hello_ignoring_sigterm, b"stubborn"
    )
    assert http_get(server.address) == b"stubborn"
    server.terminate()
    assert server.process.exitcode == -signal.SIGKILL
    assert refuses(server.address)


def test_EmbeddedServer_terminates_when_garbage_collected(start_method: str) -> None:
    server = degu.EmbeddedServer(degu.IPv4_LOOPBACK, embed_apps.build_hello, b"gc")
    process, address = server.process, server.address
    del server
    gc.collect()
    assert process.exitcode == -signal.SIGTERM
    assert refuses(address)


def test_terminate_is_safe_when_construction_failed() -> None:
    for cls in (degu.EmbeddedServer, degu.EmbeddedSSLServer):
        server = cls.__new__(cls)
        server.terminate()
        server.terminate()
        with server:
            pass
        del server
        gc.collect()  # __del__ must not raise (filterwarnings=error would say)


def test_fork_accepts_a_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is pickled under fork, so closures and lambdas are fine there."""
    monkeypatch.setattr(degu._processes, "_START_METHOD", "fork")
    body = b"closure"
    with degu.EmbeddedServer(
        degu.IPv4_LOOPBACK, lambda: embed_apps.build_hello(body)
    ) as s:
        assert http_get(s.address) == b"closure"


def test_start_server_takes_a_listening_socket(start_method: str) -> None:
    """A socket address is handed over as a file descriptor under every method."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(degu.IPv4_LOOPBACK)
        sock.listen(5)
        expected = sock.getsockname()
        with degu.EmbeddedServer(sock, embed_apps.build_hello, b"sock") as server:
            assert server.address == expected
            assert http_get(expected) == b"sock"
    finally:
        sock.close()


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_EmbeddedServer_serves_on_unix_sockets(
    start_method: str, kind: str, tmp_path: Path
) -> None:
    from degu.client import Client

    address: str | bytes = str(tmp_path / "degu.sock") if kind == "path" else b""
    with degu.EmbeddedServer(address, embed_apps.build_hello, b"unix") as server:
        if kind == "path":
            assert server.address == address
        else:
            assert type(server.address) is bytes and server.address.startswith(b"\0")
        with Client(server.address).connect() as conn:
            assert conn.get("/", {}).body.read() == b"unix"


# ------------------------------------------ failures reach the parent, reaped

FAILURES = [
    (embed_apps.raise_plain, ValueError, "no app for you"),
    (embed_apps.raise_two_args, RuntimeError, "TwoArgError: build failed: bad config"),
    (embed_apps.raise_unpicklable, RuntimeError, "LockedError: locked out"),
    (embed_apps.call_sys_exit, RuntimeError, "SystemExit: 3"),
]


@pytest.mark.parametrize(
    ("build_func", "exc_type", "message"),
    FAILURES,
    ids=[f[0].__name__ for f in FAILURES],
)
def test_build_func_exception_is_raised_in_parent_with_remote_traceback(
    start_method: str,
    start_timeout: float,
    build_func: Any,
    exc_type: type[Exception],
    message: str,
) -> None:
    with pytest.raises(Exception) as info:
        degu.EmbeddedServer(degu.IPv4_LOOPBACK, build_func)
    assert type(info.value) is exc_type
    assert str(info.value) == message
    cause = info.value.__cause__
    assert isinstance(cause, degu._processes.RemoteTraceback)
    assert str(cause).startswith("Traceback (most recent call last):")
    assert f"in {build_func.__name__}" in str(cause)  # the child's own frame


def test_address_in_use_is_reported_as_OSError(
    start_method: str, start_timeout: float
) -> None:
    """OSError pickles with its errno: the caller can still test it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(degu.IPv4_LOOPBACK)
        taken.listen(5)
        with pytest.raises(OSError) as info:
            degu.start_server(taken.getsockname(), embed_apps.build_hello, b"x")
    assert info.value.errno == errno.EADDRINUSE
    assert isinstance(info.value.__cause__, degu._processes.RemoteTraceback)


def test_invalid_address_is_reported_in_parent(
    start_method: str, start_timeout: float
) -> None:
    address = ("127.0.0.1", 0, 0)
    with pytest.raises(ValueError) as info:
        degu.EmbeddedServer(address, embed_apps.build_hello, b"x")
    assert str(info.value) == f"address: must have 2 or 4 items; got {address!r}"
    assert "Traceback" in str(info.value.__cause__)


def test_child_that_exits_without_reporting_gives_RuntimeError(
    start_method: str, start_timeout: float
) -> None:
    with pytest.raises(RuntimeError) as info:
        degu.start_server(degu.IPv4_LOOPBACK, embed_apps.call_os_exit)
    assert str(info.value) == (
        "the Degu server process exited with code 7 before reporting its"
        f" address (start method {start_method!r})"
    )


def test_silent_child_gives_TimeoutError(
    start_method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(degu, "START_TIMEOUT", 0.5)
    with pytest.raises(TimeoutError, match=r"sent no address within 0\.5 seconds"):
        degu.EmbeddedServer(degu.IPv4_LOOPBACK, embed_apps.stay_silent)


def test_failed_bootstrap_gives_RuntimeError(
    start_method: str, start_timeout: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """build_func pickles here but its module does not exist in the child."""
    if start_method == "fork":
        pytest.skip("nothing is unpickled under fork")
    module = types.ModuleType("embed_ghost")
    exec("def build():\n    return None\n", module.__dict__)
    monkeypatch.setitem(sys.modules, "embed_ghost", module)
    with pytest.raises(RuntimeError, match=r"exited with code 1 before reporting"):
        degu.EmbeddedServer(degu.IPv4_LOOPBACK, module.build)


# ---------------------------------------- unpicklable input fails before start


def _closure_builder() -> Any:
    def build() -> Any:
        return embed_apps.build_hello(b"x")

    return build


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((lambda: None,), "build_func"),
        ((_closure_builder(),), "build_func"),
        ((embed_apps.build_hello, lambda: None), "build_args"),
    ],
    ids=["lambda", "closure", "build_args"],
)
def test_unpicklable_input_fails_in_parent_before_start(
    start_method: str, args: tuple[Any, ...], name: str
) -> None:
    if start_method == "fork":
        pytest.skip("nothing is pickled under fork")
    before = set(multiprocessing.active_children())
    with pytest.raises(TypeError) as info:
        degu.EmbeddedServer(degu.IPv4_LOOPBACK, *args)
    message = str(info.value)
    assert message.startswith(
        f"{name}: cannot be pickled for the {start_method!r} start method"
    )
    assert "module level" in message
    assert set(multiprocessing.active_children()) == before


def test_unpicklable_options_fail_in_parent(start_method: str) -> None:
    if start_method == "fork":
        pytest.skip("nothing is pickled under fork")
    with pytest.raises(TypeError, match=r"^options: cannot be pickled"):
        degu.start_server(
            degu.IPv4_LOOPBACK, embed_apps.build_hello, b"x", timeout=lambda: 1
        )


# ------------------------------------------------------------------- TLS


def test_sslconfig_must_be_a_dict() -> None:
    ctx = ssl.create_default_context()
    expected = f"sslconfig: need a {dict!r}; got a {type(ctx)!r}: {ctx!r}"
    before = set(multiprocessing.active_children())
    with pytest.raises(TypeError) as info:
        degu.start_sslserver(ctx, degu.IPv4_LOOPBACK, embed_apps.build_hello, b"x")
    assert str(info.value) == expected
    with pytest.raises(TypeError) as info:
        degu.EmbeddedSSLServer(ctx, degu.IPv4_LOOPBACK, embed_apps.build_hello)
    assert str(info.value) == expected
    assert set(multiprocessing.active_children()) == before


@pytest.fixture(scope="module")
def pki() -> Any:
    misc = pytest.importorskip("degu.misc")
    return misc.TempPKI()


def _client_sslctx(pki: Any) -> ssl.SSLContext:
    config = pki.client_sslconfig
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(config["ca_file"])
    ctx.load_cert_chain(config["cert_file"], config["key_file"])
    return ctx


def test_EmbeddedSSLServer_serves_over_TLS(start_method: str, pki: Any) -> None:
    sslconfig = pki.server_sslconfig
    with degu.EmbeddedSSLServer(
        sslconfig, degu.IPv4_LOOPBACK, embed_apps.build_hello, b"secret"
    ) as server:
        assert not isinstance(server, degu.EmbeddedServer)
        assert isinstance(server.process, multiprocessing.Process)  # as 0.19
        assert server.sslconfig is sslconfig
        assert server.build_args == (b"secret",)
        assert repr(server) == (
            f"EmbeddedSSLServer(<sslconfig>, {server.address!r},"
            f" {embed_apps.build_hello!r})"
        )
        assert http_get(server.address, _client_sslctx(pki)) == b"secret"
    assert server.process.exitcode == -signal.SIGTERM


def test_start_sslserver_reports_a_bad_sslconfig(
    start_method: str, start_timeout: float
) -> None:
    """The dict is built into a context in the child; its errors come back."""
    with pytest.raises(KeyError) as info:
        degu.start_sslserver({}, degu.IPv4_LOOPBACK, embed_apps.build_hello, b"x")
    assert info.value.args == ("cert_file",)
    assert isinstance(info.value.__cause__, degu._processes.RemoteTraceback)


def test_start_sslserver_returns_process_and_address(
    start_method: str, pki: Any
) -> None:
    process, address = degu.start_sslserver(
        pki.server_sslconfig, degu.IPv6_LOOPBACK, embed_apps.build_hello, b"tls"
    )
    try:
        assert http_get(address, _client_sslctx(pki)) == b"tls"
    finally:
        degu._processes.stop_process(process)


# ------------------------------------------------ the parent's own fate

PARENT = textwrap.dedent(
    """
    import json, multiprocessing, sys, time
    sys.path.insert(0, {here!r})
    import degu, degu._processes, embed_apps

    KEEP = []

    def main():
        multiprocessing.set_start_method(sys.argv[1])
        degu._processes.TERMINATE_TIMEOUT = 1.0
        KEEP.append(degu.EmbeddedServer(
            degu.IPv4_LOOPBACK, embed_apps.build_hello_ignoring_sigterm, b"one"))
        process, address = degu.start_server(
            degu.IPv4_LOOPBACK, embed_apps.build_hello, b"two")
        # Forked after the servers: must not keep their lifelines open.
        sleeper = multiprocessing.Process(target=time.sleep, args=(30,), daemon=True)
        sleeper.start()
        print(json.dumps({{
            "addresses": [KEEP[0].address, address],
            "sleeper": sleeper.pid,
        }}), flush=True)
        if sys.argv[2] == "linger":
            time.sleep(60)
        sleeper.kill()
        sleeper.join()

    if __name__ == "__main__":
        main()
    """
)


def _run_parent(
    tmp_path: Path, method: str, fate: str
) -> tuple[subprocess.Popen[str], Any]:
    script = tmp_path / f"parent_{method}.py"
    script.write_text(PARENT.format(here=str(HERE)))
    proc = subprocess.Popen(
        [sys.executable, str(script), method, fate],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    if not ready:
        proc.kill()
        proc.wait()
        pytest.fail("the parent script printed nothing within 60 s")
    return proc, json.loads(proc.stdout.readline())


def test_servers_exit_when_their_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL a parent per start method; every server must let go of its port.

    The three parents run side by side: the SIGTERM-ignoring server needs the
    full grace period before it is forced out, and waiting once is enough.
    """
    parents = [_run_parent(tmp_path, m, "linger") for m in START_METHODS]
    try:
        addresses: list[tuple[str, Any]] = []
        for method, (_, info) in zip(START_METHODS, parents, strict=True):
            one, two = (tuple(a) for a in info["addresses"])
            assert http_get(one) == b"one" and http_get(two) == b"two"
            addresses += [(f"{method}: SIGTERM-ignoring server", one)]
            addresses += [(f"{method}: server", two)]
        for proc, _ in parents:
            os.kill(proc.pid, signal.SIGKILL)
        for proc, _ in parents:
            proc.wait(10)
        # Not os.kill(pid, 0): that succeeds on a zombie.  The port is the point.
        for what, address in addresses:
            assert wait_refuses(address, 20.0), f"{what} outlived its parent"
    finally:
        for proc, info in parents:
            proc.kill()
            proc.wait()
            try:
                os.kill(info["sleeper"], signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.stdout.close()  # type: ignore[union-attr]


@pytest.mark.parametrize("method", START_METHODS)
def test_interpreter_exit_stops_live_servers_promptly(
    tmp_path: Path, method: str
) -> None:
    """Even one ignoring SIGTERM, and a bare start_server() process."""
    proc, info = _run_parent(tmp_path, method, "exit")
    try:
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
    for address in info["addresses"]:
        assert wait_refuses(tuple(address))
