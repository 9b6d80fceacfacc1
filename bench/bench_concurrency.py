"""Many concurrent keep-alive connections: degu.server against uvicorn, with wrk.

Run: python bench/bench_concurrency.py   (bounded: about half a minute)

Both servers answer every request with the same 12-byte body.  The baseline is
uvicorn with httptools and uvloop (one process, one event loop); degu.server
runs with ``max_connections`` above the number of wrk connections, its I/O
loop's leader running the requests (docs/explanation/connections.rst).  At 128
connections the targets: p99 <= 1.5x uvicorn's, throughput >= 1.8x.  Beside
them, the server's CPU time per request (user + system, from /proc), which
other load on the machine disturbs less than throughput: as uvicorn's over
degu's, so that higher is better there too.
Each server runs in its own subprocess pinned to one CPU, wrk (``-t2
--latency``) is pinned to another when there is one; runs are interleaved
and medians reported, with the target and the spread (min-max of the
per-round ratios) beside each ratio.  Needs ``wrk``
(installed with apt-get when missing and running as root) and ``uvicorn``,
``httptools``, ``uvloop`` (``pip install uvicorn httptools uvloop``);
without them it says why and skips that part.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROUNDS = 5
DURATION = "2s"
CONNECTIONS = (32, 128)
#: wrk -c -> (lowest rate, highest p99), as ratios to uvicorn (bench/README.md).
TARGETS = {32: (0.7, 10.0), 128: (1.8, 1.5)}
#: degu's max_connections (worker threads): above every wrk -c value.
MAX_CONNECTIONS = 256
CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPU = CPUS[0]
WRK_CPU = CPUS[-1]

DEGU_SERVER = """
import logging, sys
logging.disable(logging.CRITICAL)
from degu.server import Server

def app(session, request, api):
    return (200, "OK", {}, b"hello world\\n")

address = ("127.0.0.1", int(sys.argv[1]))
Server(address, app, max_connections=MAX, max_requests=75000).serve_forever()
""".replace("MAX", str(MAX_CONNECTIONS))

UVICORN_SERVER = """
import sys
import uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"12")]})
    await send({"type": "http.response.body", "body": b"hello world\\n"})

# host/port, not fd=: uvicorn takes an inherited fd for AF_UNIX and then
# leaves Nagle on, which costs it ~40 ms per response (delayed ACKs).
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop",
            http="httptools", log_level="error", access_log=False,
            lifespan="off", backlog=1024)
"""

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def find_wrk() -> tuple[str | None, str]:
    """Return (path to wrk, '') or (None, why it is missing)."""
    path = shutil.which("wrk")
    if path:
        return path, ""
    if os.geteuid() != 0:
        return None, "wrk is not installed (apt-get install wrk) and we are not root"
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]):
        try:
            subprocess.run(cmd, capture_output=True, timeout=300, check=True)
        except (OSError, subprocess.SubprocessError) as e:
            return None, f"installing wrk failed: {' '.join(cmd)}: {e!r}"
    path = shutil.which("wrk")
    return (path, "") if path else (None, "apt-get installed no wrk")


def missing_uvicorn() -> str:
    """Why the uvicorn baseline cannot run, or '' when it can."""
    gone = [
        m for m in ("uvicorn", "httptools", "uvloop") if not importlib.util.find_spec(m)
    ]
    if gone:
        return f"missing {', '.join(gone)} (pip install uvicorn httptools uvloop)"
    return ""


def start(code: str) -> tuple[subprocess.Popen[bytes], int]:
    """Run *code* in a pinned subprocess listening on a free loopback port."""
    with socket.socket() as probe:  # the port is free right now; good enough
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(port)],
        preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CPU}),
    )
    deadline = time.monotonic() + 10
    while True:  # wait until requests are answered
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return proc, port
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            stop(proc)
            raise RuntimeError("server did not come up")
        time.sleep(0.05)  # bounded readiness poll


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process *pid* (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(
    wrk: str, port: int, conns: int, pid: int | None = None
) -> tuple[float, float, str, float]:
    """Return (requests/s, p99 seconds, error summary, server CPU seconds per
    request, or nan without *pid*) of one wrk run."""
    before = cpu_seconds(pid) if pid is not None else 0.0
    out = subprocess.run(
        [wrk, "-t2", f"-c{conns}", f"-d{DURATION}", "--latency",
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, timeout=60, check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {WRK_CPU}),
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    p99 = float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")
    errors = []
    if e := re.search(r"Socket errors: (.*)", out):
        errors.append(e.group(1))
    if e := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors.append(f"non-2xx {e.group(1)}")
    total = re.search(r"(\d+) requests in", out)
    cpu = float("nan")
    if pid is not None and total and int(total.group(1)):
        cpu = (cpu_seconds(pid) - before) / int(total.group(1))
    return rate, p99, "; ".join(errors), cpu


def main() -> None:
    wrk, why = find_wrk()
    if wrk is None:
        print(f"SKIPPED: {why}")
        return
    kinds = {"degu": DEGU_SERVER}
    why = missing_uvicorn()
    if why:
        print(f"uvicorn baseline SKIPPED: {why}")
    else:
        kinds["uvicorn"] = UVICORN_SERVER
    print(
        f"servers on CPU {SERVER_CPU}, wrk -t2 on CPU {WRK_CPU}; -d{DURATION} x "
        f"{ROUNDS} interleaved rounds, medians; degu max_connections={MAX_CONNECTIONS}"
    )
    procs = {name: start(code) for name, code in kinds.items()}
    results: dict[tuple[str, int], list[tuple[float, float, str, float]]] = {}
    try:
        for _ in range(ROUNDS):
            for conns in CONNECTIONS:
                for name, (proc, port) in procs.items():
                    results.setdefault((name, conns), []).append(
                        run_wrk(wrk, port, conns, proc.pid)
                    )
    finally:
        for proc, _ in procs.values():
            stop(proc)
    print(
        f"{'server':8} {'conns':>5} {'req/s':>10} {'p99':>10} {'cpu/req':>8}"
        "  vs uvicorn     target"
    )
    for conns in CONNECTIONS:
        base = results.get(("uvicorn", conns))
        for name in procs:
            runs = results[(name, conns)]
            rate = statistics.median(r[0] for r in runs)
            p99 = statistics.median(r[1] for r in runs)
            cpu = statistics.median(r[3] for r in runs)
            errors = "; ".join(sorted({r[2] for r in runs if r[2]}))
            line = (
                f"{name:8} {conns:5} {rate:10.0f} {p99 * 1000:8.2f}ms"
                f" {cpu * 1e6:6.1f}us"
            )
            if name != "uvicorn" and base:
                # Ratios to the uvicorn run of the same round: median, min-max.
                rates = [r[0] / b[0] for r, b in zip(runs, base, strict=True)]
                p99s = [r[1] / b[1] for r, b in zip(runs, base, strict=True)]
                rate_target, p99_target = TARGETS[conns]
                rate_x, p99_x = statistics.median(rates), statistics.median(p99s)
                line += (
                    f"  {rate_x:5.2f}x rate ({min(rates):.2f}-{max(rates):.2f})  "
                    f">= {rate_target}x {'ok' if rate_x >= rate_target else 'MISSED'}"
                    f"\n{'':45}{p99_x:5.2f}x p99  ({min(p99s):.2f}-{max(p99s):.2f})  "
                    f"<= {p99_target}x {'ok' if p99_x <= p99_target else 'MISSED'}"
                )
                # uvicorn's CPU per request over degu's: > 1 means cheaper.
                cpus = [b[3] / r[3] for r, b in zip(runs, base, strict=True)]
                line += (
                    f"\n{'':45}{statistics.median(cpus):5.2f}x cpu  "
                    f"({min(cpus):.2f}-{max(cpus):.2f})  (uvicorn's per request / ours)"
                )
            if errors:
                line += f"  errors: {errors}"
            print(line)


if __name__ == "__main__":
    main()
