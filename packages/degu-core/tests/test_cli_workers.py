"""``python -m degu.server --workers N``, run as a user runs it.

Every wait is bounded by a deadline; the machine has two shared cores, so
nothing here measures speed.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from degu._supervisor import (
    BACKOFF_FIRST,
    MAX_STARTUP_FAILURES,
    Supervisor,
    describe_status,
)

from .test_cli import CLF, Running, cli, run, www  # noqa: F401 (fixtures)

PID_APP = """
import os

def app(session, request, api):
    return (200, 'OK', {}, str(os.getpid()).encode())
"""

#: Every worker dies the moment it is forked: the supervisor must give up.
DOOMED_APP = (
    PID_APP
    + """
os.register_at_fork(after_in_child=lambda: os._exit(3))
"""
)


def get_pid(address: Any, timeout: float = 5) -> int:
    """One request on a fresh connection; the pid of the worker that answered."""
    from degu.client import Client

    with Client(address, timeout=timeout).connect() as conn:
        return int(conn.get("/", {}).body.read())


def address_of(server: Running) -> tuple[str, int]:
    host, _, port = server.url.removeprefix("http://").rstrip("/").rpartition(":")
    return host, int(port)


def pids_until(
    address: Any, want: Callable[[set[int]], bool], limit: float
) -> set[int]:
    """Ask fresh connections for their pid until *want(seen)* (bounded)."""
    seen: set[int] = set()
    deadline = time.monotonic() + limit
    while not want(seen) and time.monotonic() < deadline:
        try:
            seen.add(get_pid(address))
        except OSError:
            pass  # a connection to a worker being killed
    return seen


def alive(pid: int) -> bool:
    """Whether *pid* runs (a zombie no one has reaped yet does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def pid_app(tmp_path: Path) -> Path:
    (tmp_path / "pidapp.py").write_text(PID_APP)
    return tmp_path


def test_workers_serve_from_two_processes_and_stop_on_one_SIGINT(
    run: Any,  # noqa: F811
    pid_app: Path,
) -> None:
    server = run("--app", "pidapp:app", "--workers", "2", "0", cwd=pid_app)
    assert server.url.startswith("http://127.0.0.1:")
    seen = pids_until(address_of(server), lambda s: len(s) >= 2, 20)
    assert len(seen) == 2
    assert server.proc.pid not in seen  # the supervisor serves nothing
    code, elapsed, out = server.stop(signal.SIGINT)
    assert code == 0
    assert elapsed < 2
    assert out == "Press Ctrl-C to stop.\n"  # printed once, by the supervisor
    assert server.stderr_lines[-1] == "Stopped."
    assert sum(bool(CLF.match(line)) for line in server.stderr_lines) >= 2
    deadline = time.monotonic() + 5
    while any(map(alive, seen)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(map(alive, seen))


def test_a_killed_worker_is_restarted_and_serving_goes_on(
    run: Any,  # noqa: F811
    pid_app: Path,
) -> None:
    server = run("--app", "pidapp:app", "--workers", "2", "0", cwd=pid_app)
    address = address_of(server)
    first = pids_until(address, lambda s: len(s) >= 2, 20)
    assert len(first) == 2
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    # The survivor and the replacement answer: two pids, the victim gone.
    after = pids_until(address, lambda s: len(s - {victim}) >= 2, 20)
    assert len(after - {victim}) == 2
    assert max(first) in after
    code, elapsed, _ = server.stop(signal.SIGTERM)
    assert code == 0 and elapsed < 2
    assert any(
        line.startswith(f"WARNING: worker {victim} died")
        and "(killed by SIGKILL); restarting it" in line
        for line in server.stderr_lines
    )


def test_workers_on_a_unix_socket(
    run: Any,  # noqa: F811
    pid_app: Path,
) -> None:
    path = str(pid_app / "w.sock")
    server = run(
        "--app", "pidapp:app", "--workers", "2", "--address", path, cwd=pid_app
    )
    seen = pids_until(path, lambda s: len(s) >= 2, 20)
    assert len(seen) == 2
    # A worker stopping must not remove the socket file the others serve on.
    os.kill(min(seen), signal.SIGTERM)
    assert max(seen) in pids_until(path, lambda s: max(seen) in s, 10)
    assert os.path.exists(path)
    assert server.stop()[0] == 0
    assert not os.path.exists(path)


def test_workers_with_tls(run: Any, pid_app: Path) -> None:  # noqa: F811
    from degu._temppki import TempPKI

    pki = TempPKI()
    server_cfg = pki.server_sslconfig
    server = run(
        "--app", "pidapp:app", "--workers", "2", "0",
        "--cert", server_cfg["cert_file"], "--key", server_cfg["key_file"],
        cwd=pid_app,
    )  # fmt: skip
    assert server.url.startswith("https://127.0.0.1:")
    host, _, port = server.url.removeprefix("https://").rstrip("/").rpartition(":")
    ctx = ssl.create_default_context(cafile=pki.client_sslconfig["ca_file"])
    ctx.check_hostname = False
    seen: set[int] = set()
    deadline = time.monotonic() + 20
    while len(seen) < 2 and time.monotonic() < deadline:
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nconnection: close\r\n\r\n")
                answer = b""
                while chunk := tls.recv(4096):
                    answer += chunk
        seen.add(int(answer.rpartition(b"\r\n\r\n")[2]))
    assert len(seen) == 2
    assert server.stop()[0] == 0


def test_workers_dying_at_start_up_make_the_supervisor_give_up(
    tmp_path: Path,
) -> None:
    (tmp_path / "doomed.py").write_text(DOOMED_APP)
    start = time.monotonic()
    out = cli("--app", "doomed:app", "--workers", "1", "0", cwd=tmp_path)
    elapsed = time.monotonic() - start
    assert out.returncode == 1
    assert f"died at start-up {MAX_STARTUP_FAILURES} times in a row" in out.stderr
    assert "(last: exit status 3); giving up" in out.stderr
    assert "Stopped." not in out.stderr
    # Backed off: at least the sum of the delays, and bounded.
    backoff = sum(BACKOFF_FIRST * 2**i for i in range(MAX_STARTUP_FAILURES - 1))
    assert backoff <= elapsed < backoff + 20
    assert out.stderr.count("restarting it in") == MAX_STARTUP_FAILURES - 1


@pytest.mark.parametrize("value", ["0", "-1", "129", "two", "1.5"])
def test_bad_workers_value_exits_2(value: str) -> None:
    out = cli("--workers", value)
    assert out.returncode == 2
    assert f"argument --workers: need 1 to 128; got {value!r}" in out.stderr


def test_supervisor_refuses_a_bad_worker_count() -> None:
    with pytest.raises(ValueError) as info:
        Supervisor(lambda ready: 0, 0, 1.0)
    assert str(info.value) == "need 1 <= workers <= 128; got 0"


def test_describe_status() -> None:
    assert describe_status(0) == "exit status 0"
    assert describe_status(3 << 8) == "exit status 3"
    assert describe_status(signal.SIGKILL) == "killed by SIGKILL"


def sigint_pending(pid: int) -> bool:
    """Whether SIGINT waits in *pid*'s process-wide pending set (proc(5))."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("ShdPnd:"):
                return bool(int(line.split()[1], 16) >> (signal.SIGINT - 1) & 1)
    raise AssertionError(f"no ShdPnd in /proc/{pid}/status")


STUCK_APP = """
import sys, time

def app(session, request, api):
    print("running", flush=True, file=sys.stderr)
    time.sleep(30)
    return (200, 'OK', {}, b'late')
"""


def test_a_second_SIGINT_kills_workers_stuck_in_a_request(
    run: Any,  # noqa: F811
    tmp_path: Path,
) -> None:

    (tmp_path / "stuck.py").write_text(STUCK_APP)
    server = run("--app", "stuck:app", "--workers", "1", "0", cwd=tmp_path)
    sock = socket.create_connection(address_of(server), timeout=10)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        deadline = time.monotonic() + 10
        while "running" not in server.stderr_lines and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "running" in server.stderr_lines
        start = time.monotonic()
        server.proc.send_signal(signal.SIGINT)
        # The worker drains (0.5 s), then waits for the stuck thread; a
        # second Ctrl-C does not wait any longer.  Apart, as a person's two
        # presses are: two SIGINTs pending at once are delivered as one, so
        # the second goes once the supervisor has taken the first.
        deadline = time.monotonic() + 10
        while sigint_pending(server.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.005)
        code, _, _ = server.stop(signal.SIGINT)
        elapsed = time.monotonic() - start
    finally:
        sock.close()
    assert code == 0
    assert elapsed < 2
    assert any("still running: killing them" in line for line in server.stderr_lines)


def test_workers_stop_when_the_supervisor_is_killed(
    run: Any,  # noqa: F811
    pid_app: Path,
) -> None:
    server = run("--app", "pidapp:app", "--workers", "2", "0", cwd=pid_app)
    seen = pids_until(address_of(server), lambda s: len(s) >= 2, 20)
    assert len(seen) == 2
    server.proc.kill()  # SIGKILL: no chance to stop the workers itself
    server.proc.wait(10)
    deadline = time.monotonic() + 10
    while any(map(alive, seen)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(map(alive, seen))
